"""How many Octopus API calls one machine event costs, and that the figure does not grow with the space.

The plan runs in this process (a burst worker on the main thread) so that the Octopus client's own call
counter can be read; the simulator is real, over real HTTP.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer

from service.threaded_server import serve_in_thread
from simulator.app import create_app as create_simulator
from simulator.seed import ADMIN_API_KEY, CONDUCTOR_API_KEY, SPACE_ID, STAGING_ID, WEB_ROLE
from tests.support.stack import RULES
from workers import plan_advance, redeploy, runtime
from workers.event_queue import JobPolicy
from workers.events import OctopusEvent
from workers.keys import RedisKeys
from workers.octopus import OctopusClient
from workers.plans import Plan, PlanStep, PlanStore
from workers.redeploy_decision import RedeploySteps
from workers.rules import parse_rules
from workers.runner import worker_context
from workers.runtime import WorkerContext

POLLING = "GET /api/tasks/{id}"


@pytest.fixture
def sim_url() -> Iterator[str]:
    app = create_simulator(seed="sample", delivery_interval=60, queue_delay=0.05, step_duration=0.05)
    with serve_in_thread(app) as url:
        yield url


def machine_added(admin: httpx.Client, name: str) -> OctopusEvent:
    machine = admin.post(
        f"/api/{SPACE_ID}/machines",
        json={
            "Name": name,
            "EnvironmentIds": [STAGING_ID],
            "Roles": [WEB_ROLE],
            "Endpoint": {"CommunicationStyle": "None"},
        },
    ).json()
    events = admin.get("/api/events", params={"regarding": machine["Id"], "eventCategories": "MachineAdded"}).json()
    return OctopusEvent.model_validate(events["Items"][0])


def in_process_context(connection: redis.Redis, keys: RedisKeys, client: OctopusClient) -> WorkerContext:
    rules = parse_rules(RULES.format(window=0))
    policy = JobPolicy(retry_intervals=(1,))
    return worker_context(connection=connection, keys=keys, policy=policy, rules=rules, octopus=client)


def calls_for_one_machine_event(sim_url: str, connection: redis.Redis, keys: RedisKeys, name: str) -> Counter[str]:
    client = OctopusClient(base_url=sim_url, api_key=CONDUCTOR_API_KEY)
    context = in_process_context(connection, keys, client)
    runtime.install(context)
    with httpx.Client(base_url=sim_url, headers={"X-Octopus-ApiKey": ADMIN_API_KEY}) as admin:
        event = machine_added(admin, name)
    redeploy.on_machine_event(event, context)
    queue = Queue(keys.queue_name, connection=connection, serializer=JSONSerializer)
    worker = SimpleWorker([queue], connection=connection, serializer=JSONSerializer, name=f"{keys.prefix}-{name}")
    deadline = time.monotonic() + 60
    while any(plan.status == "running" for plan in PlanStore(connection, keys.prefix).recent()):
        assert time.monotonic() < deadline, "the plan did not finish"
        worker.work(burst=True, with_scheduler=True, logging_level="WARNING")
        time.sleep(0.2)
    client.close()
    return client.calls


def test_calls_per_machine_event_grow_with_applicable_components_not_with_the_space(
    sim_url: str, connection: redis.Redis, keys: RedisKeys, tmp_path: Path
) -> None:
    before = calls_for_one_machine_event(sim_url, connection, keys, "stg-web-calls-1")
    with httpx.Client(base_url=sim_url, headers={"X-Octopus-ApiKey": ADMIN_API_KEY}) as admin:
        for n in range(40):
            created = admin.post(
                f"/api/{SPACE_ID}/projects",
                json={"Name": f"Unrelated {n}", "ProjectGroupId": "ProjectGroups-1", "LifecycleId": "Lifecycles-1"},
            )
            assert created.status_code == 201, created.text
    after = calls_for_one_machine_event(sim_url, connection, keys, "stg-web-calls-2")

    deciding_before = {route: n for route, n in before.items() if route != POLLING}
    deciding_after = {route: n for route, n in after.items() if route != POLLING}
    print(
        f"\nOctopus API calls for one MachineAdded (2 of 4 components apply): {sum(deciding_before.values())} "
        f"to decide and deploy, plus {before[POLLING]} task reads while waiting; by route: {dict(before)}"
    )
    assert deciding_after == deciding_before
    assert before["POST /api/{space}/deployments"] == 2
    # What Staging runs: one read for Database (skipped) and Web API, one for Scheduling Service and Web UI.
    assert before["GET /api/{space}/deployments"] == 2
    # Each of the four components costs a bounded number of reads; none of them scales with the space.
    assert sum(deciding_before.values()) <= 4 * 5 + 4


def test_a_step_interrupted_after_its_post_adopts_the_deployment_instead_of_creating_another(
    sim_url: str, connection: redis.Redis, keys: RedisKeys
) -> None:
    client = OctopusClient(base_url=sim_url, api_key=CONDUCTOR_API_KEY)
    context = in_process_context(connection, keys, client)
    with httpx.Client(base_url=sim_url, headers={"X-Octopus-ApiKey": ADMIN_API_KEY}) as admin:
        event = machine_added(admin, "stg-web-crash-1")
    redeploy.on_machine_event(event, context)
    store = PlanStore(connection, keys.prefix)
    (plan,) = store.recent()
    web_api = next(step for step in plan.steps if step.project == "Web API")
    created = web_api.deployment_id
    assert web_api.status == "deploying"
    assert created is not None
    # As if the worker died after Octopus accepted the POST but before the plan recorded the deployment.
    web_api.status, web_api.deployment_id, web_api.task_id = "creating", None, None
    store.save(plan)
    posts_before = client.calls["POST /api/{space}/deployments"]

    plan_advance.advance_plan(plan.id, context)

    resumed = store.load(plan.id)
    assert resumed is not None
    step = next(step for step in resumed.steps if step.project == "Web API")
    assert step.deployment_id == created
    assert step.status in ("deploying", "succeeded")
    assert client.calls["POST /api/{space}/deployments"] == posts_before
    client.close()


def test_a_pass_reads_what_runs_once_for_its_steps_but_not_for_one_whose_lock_another_plan_holds(
    sim_url: str, connection: redis.Redis, keys: RedisKeys
) -> None:
    with OctopusClient(base_url=sim_url, api_key=CONDUCTOR_API_KEY) as client:
        context = in_process_context(connection, keys, client)
        components = ["Database", "Web API", "Scheduling Service", "Web UI"]
        plan = Plan(
            id="redeploy-lock-test",
            orchestration="sample-app",
            space_id=SPACE_ID,
            environment_id=STAGING_ID,
            tenant_id=None,
            machine_ids=["Machines-1"],
            steps=[PlanStep(project=name) for name in components],
        )
        database, web_api, _scheduling, web_ui = plan.steps
        assert context.locks.acquire(plan.lock_name(web_ui), "another-plan", ttl_seconds=60)
        steps = RedeploySteps(plan, context)
        ids = {name: steps.directory.project(SPACE_ID, name)["Id"] for name in components}

        first = steps._history_for(database)
        assert first is not None
        assert first is steps._history_for(web_api)
        assert first.project_ids == {ids["Database"], ids["Web API"], ids["Scheduling Service"]}
        context.locks.release(plan.lock_name(web_ui), "another-plan")
        own = steps._history_for(web_ui)  # read again, now that the other plan's deployment is over
        assert own is not None
        assert own is not first
        assert ids["Web UI"] in own.project_ids
