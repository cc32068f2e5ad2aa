"""The control surface under /_simulator: what Octopus does by itself (no API key needed).

GET/PUT  /_simulator/clock                    task clock durations
POST     /_simulator/reset                    back to the seed ({"Seed": "sample"|"empty"} optional)
GET/POST/DELETE /_simulator/step-failures     make a named step fail for the next N runs
GET/POST/DELETE /_simulator/faults[/{id}]     answer errors or hang on matching /api routes
POST     /_simulator/deliver                  run a subscription delivery pass now
GET      /_simulator/deliveries               recent webhook delivery attempts
PUT      /_simulator/machines/{id}/health     set a machine's health, writing the Machine* event
POST     /_simulator/machines/{id}/health-check   queue a "Health" task for one machine
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulator.errors import bad_request, not_found
from simulator.infrastructure import schedule_health_check, set_health
from simulator.store import StepFailure
from simulator.validation import body_object, optional_str, required_str

if TYPE_CHECKING:
    from simulator.runtime import Simulator


def _sim(request: Request) -> Simulator:
    sim: Simulator = request.app.state.simulator
    return sim


async def _body(request: Request) -> dict[str, object]:
    from simulator.routes.common import body

    return body_object(await body(request))


def _clock(sim: Simulator) -> dict[str, float]:
    settings = sim.store.settings
    return {
        "QueueDelaySeconds": settings.queue_delay,
        "StepDurationSeconds": settings.step_duration,
        "HealthCheckDelaySeconds": settings.health_check_delay,
    }


async def get_clock(request: Request) -> Response:
    return JSONResponse(_clock(_sim(request)))


async def put_clock(request: Request) -> Response:
    sim = _sim(request)
    data = await _body(request)
    fields = {
        "QueueDelaySeconds": "queue_delay",
        "StepDurationSeconds": "step_duration",
        "HealthCheckDelaySeconds": "health_check_delay",
    }
    for name, attribute in fields.items():
        if name in data:
            value = data[name]
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise bad_request(f"{name} must be a non-negative number of seconds.")
            setattr(sim.store.settings, attribute, float(value))
    sim.task_wake.set()
    return JSONResponse(_clock(sim))


async def reset(request: Request) -> Response:
    sim = _sim(request)
    data = await _body(request)
    seed = optional_str(data, "Seed")
    if seed not in (None, "sample", "empty"):
        raise bad_request("Seed must be 'sample' or 'empty'.")
    sim.reset(seed)
    return JSONResponse({"Seed": sim.seed, "Clock": _clock(sim)})


def _project_id(sim: Simulator, value: str) -> str:
    store = sim.store
    if value in store.projects:
        return value
    for project in store.projects.values():
        if project["Name"].lower() == value.lower():
            return str(project["Id"])
    raise bad_request(f"The project '{value}' does not exist.")


def _environment_id(sim: Simulator, value: str | None) -> str | None:
    if value is None:
        return None
    store = sim.store
    if value in store.environments:
        return value
    for env in store.environments.values():
        if env["Name"].lower() == value.lower():
            return str(env["Id"])
    raise bad_request(f"The environment '{value}' does not exist.")


def _release_id(sim: Simulator, project_id: str, value: str | None) -> str | None:
    """A release of the project, by id or version."""
    if value is None:
        return None
    store = sim.store
    if store.releases.get(value, {}).get("ProjectId") == project_id:
        return value
    found = store.release_versions.get((project_id, value))
    if found is None:
        raise bad_request(f"The project {project_id} has no release '{value}'.")
    return found


async def list_step_failures(request: Request) -> Response:
    return JSONResponse([rule.to_json() for rule in _sim(request).store.step_failures])


async def add_step_failure(request: Request) -> Response:
    sim = _sim(request)
    data = await _body(request)
    count = data.get("Count", 1)
    if not isinstance(count, int) or count < 1:
        raise bad_request("Count must be a positive integer.")
    store = sim.store
    project_id = _project_id(sim, required_str(data, "Project"))
    rule = StepFailure(
        id=store.next_id("StepFailures"),
        project_id=project_id,
        step_name=required_str(data, "StepName"),
        environment_id=_environment_id(sim, optional_str(data, "Environment")),
        remaining=count,
        error_message=optional_str(data, "ErrorMessage") or "The step failed (injected by the simulator).",
        release_id=_release_id(sim, project_id, optional_str(data, "Release")),
    )
    store.step_failures.append(rule)
    return JSONResponse(rule.to_json(), status_code=201)


async def clear_step_failures(request: Request) -> Response:
    _sim(request).store.step_failures.clear()
    return JSONResponse([])


async def list_faults(request: Request) -> Response:
    return JSONResponse([rule.to_json() for rule in _sim(request).faults.active()])


async def add_fault(request: Request) -> Response:
    rule = _sim(request).faults.add(await _body(request))
    return JSONResponse(rule.to_json(), status_code=201)


async def clear_faults(request: Request) -> Response:
    _sim(request).faults.rules.clear()
    return JSONResponse([])


async def remove_fault(request: Request) -> Response:
    faults = _sim(request).faults
    fault_id = str(request.path_params["id"])
    before = len(faults.rules)
    faults.rules = [r for r in faults.rules if r.id != fault_id]
    if len(faults.rules) == before:
        raise not_found(fault_id)
    return JSONResponse([rule.to_json() for rule in faults.active()])


async def deliver(request: Request) -> Response:
    return JSONResponse(await _sim(request).deliver_now())


async def deliveries(request: Request) -> Response:
    return JSONResponse(list(_sim(request).delivery_log.attempts))


async def machine_health(request: Request) -> Response:
    sim = _sim(request)
    machine = sim.store.machines.get(str(request.path_params["id"]))
    if machine is None:
        raise not_found(str(request.path_params["id"]))
    status = required_str(await _body(request), "HealthStatus")
    set_health(sim.store, machine, status)
    return JSONResponse(machine)


async def health_check(request: Request) -> Response:
    sim = _sim(request)
    machine = sim.store.machines.get(str(request.path_params["id"]))
    if machine is None:
        raise not_found(str(request.path_params["id"]))
    task = schedule_health_check(sim.store, machine["SpaceId"], [machine["Id"]])
    return JSONResponse(task, status_code=201)


routes = [
    Route("/_simulator/clock", get_clock),
    Route("/_simulator/clock", put_clock, methods=["PUT"]),
    Route("/_simulator/reset", reset, methods=["POST"]),
    Route("/_simulator/step-failures", list_step_failures),
    Route("/_simulator/step-failures", add_step_failure, methods=["POST"]),
    Route("/_simulator/step-failures", clear_step_failures, methods=["DELETE"]),
    Route("/_simulator/faults", list_faults),
    Route("/_simulator/faults", add_fault, methods=["POST"]),
    Route("/_simulator/faults", clear_faults, methods=["DELETE"]),
    Route("/_simulator/faults/{id}", remove_fault, methods=["DELETE"]),
    Route("/_simulator/deliver", deliver, methods=["POST"]),
    Route("/_simulator/deliveries", deliveries),
    Route("/_simulator/machines/{id}/health", machine_health, methods=["PUT"]),
    Route("/_simulator/machines/{id}/health-check", health_check, methods=["POST"]),
]
