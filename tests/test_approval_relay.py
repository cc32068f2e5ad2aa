"""The approval relay called in this process against the real simulator over HTTP, with real Redis: what
it submits, what it refuses and why, and that a second event, a retried job or a job that died half way
never submits twice. Looks again are read from RQ's scheduled registry; no worker runs here.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import redis
from rq import Queue
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from rq.serializers import JSONSerializer

from service.threaded_server import serve_in_thread
from simulator.app import create_app as create_simulator
from simulator.seed import (
    ADMIN_API_KEY,
    CONDUCTOR_API_KEY,
    CONDUCTOR_USER_ID,
    PRODUCTION_ID,
    QA_API_KEY,
    SPACE_ID,
)
from tests.support.stack import rules_text, wait_for
from workers import approval_relay, jobs, runtime
from workers.approval_records import ApprovalRelay, ApprovalStore
from workers.event_queue import JobPolicy
from workers.events import OctopusEvent
from workers.keys import RedisKeys
from workers.octopus import OctopusClient, OctopusUnavailable
from workers.rules import RulesError, parse_rules
from workers.runner import worker_context
from workers.runtime import WorkerContext

ORCHESTRATION_2021_2 = "Releases-11"
WEB_API_2021_2 = "Releases-8"
DATABASE_2021_1 = "Releases-1"
APPROVALS = {"keep_looking_seconds": 60, "look_again_seconds": 2, "look_again_max_seconds": 5}


class Octopus:
    """The simulator, acted on by the people of the seed through its REST API."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.admin = httpx.Client(base_url=url, headers={"X-Octopus-ApiKey": ADMIN_API_KEY}, timeout=10)

    def as_user(self, api_key: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-Octopus-ApiKey": api_key}, timeout=10)

    def deploy(self, release_id: str, environment_id: str = PRODUCTION_ID) -> dict[str, Any]:
        response = self.admin.post(
            f"/api/{SPACE_ID}/deployments", json={"ReleaseId": release_id, "EnvironmentId": environment_id}
        )
        assert response.status_code == 201, response.text
        deployment: dict[str, Any] = response.json()
        return deployment

    def interruptions(self, regarding: str, *, pending: bool = False) -> list[dict[str, Any]]:
        params = {"regarding": regarding, **({"pendingOnly": "true"} if pending else {})}
        items: list[dict[str, Any]] = self.admin.get(f"/api/{SPACE_ID}/interruptions", params=params).json()["Items"]
        return items

    def pending_step(self, deployment: dict[str, Any], title: str) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            return next((i for i in self.interruptions(deployment["Id"], pending=True) if i["Title"] == title), None)

        return wait_for(f"'{title}' pending in {deployment['Id']}", probe, timeout=10, interval=0.02)

    def interruption(self, interruption_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.admin.get(f"/api/{SPACE_ID}/interruptions/{interruption_id}").json()
        return found

    def answer(self, api_key: str, interruption: dict[str, Any], result: str = "Proceed") -> None:
        base = f"/api/{SPACE_ID}/interruptions/{interruption['Id']}"
        with self.as_user(api_key) as person:
            assert person.put(f"{base}/responsible").status_code == 200
            assert person.post(f"{base}/submit", json={"Notes": "Signed off.", "Result": result}).status_code == 200

    def raised_event(self, interruption: dict[str, Any]) -> OctopusEvent:
        params = {"regarding": interruption["Id"], "eventCategories": approval_relay.CATEGORY}
        (event,) = self.admin.get("/api/events", params=params).json()["Items"]
        return OctopusEvent.model_validate(event)

    def submissions(self, interruption_id: str) -> list[dict[str, Any]]:
        params = {"regarding": interruption_id, "eventCategories": "InterruptionSubmitted"}
        items: list[dict[str, Any]] = self.admin.get("/api/events", params=params).json()["Items"]
        return items


@pytest.fixture
def octopus() -> Iterator[Octopus]:
    app = create_simulator(seed="sample", delivery_interval=3600, queue_delay=0, step_duration=0, health_check_delay=0)
    with serve_in_thread(app) as url:
        yield Octopus(url)


@pytest.fixture
def client(octopus: Octopus) -> Iterator[OctopusClient]:
    with OctopusClient(base_url=octopus.url, api_key=CONDUCTOR_API_KEY) as conductor:
        yield conductor


def context_for(connection: redis.Redis, keys: RedisKeys, client: OctopusClient, **approvals: Any) -> WorkerContext:
    rules = parse_rules(rules_text(window=0, approvals={**APPROVALS, **approvals}))
    policy = JobPolicy(retry_intervals=(1,))
    return worker_context(connection=connection, keys=keys, policy=policy, rules=rules, octopus=client)


@pytest.fixture
def context(connection: redis.Redis, keys: RedisKeys, client: OctopusClient) -> WorkerContext:
    return context_for(connection, keys, client)


def record_of(context: WorkerContext, interruption_id: str) -> ApprovalRelay:
    record = ApprovalStore(context.redis, context.keys.prefix).load(interruption_id)
    assert record is not None
    return record


def scheduled_looks(context: WorkerContext) -> list[tuple[Job, float]]:
    """The looks again waiting in RQ, with how far ahead each is due (seconds)."""
    queue = Queue(context.keys.queue_name, connection=context.redis, serializer=JSONSerializer)
    registry = ScheduledJobRegistry(queue=queue)
    jobs = []
    for job_id in registry.get_job_ids():
        job = Job.fetch(job_id, connection=context.redis, serializer=JSONSerializer)
        due = registry.get_scheduled_time(job_id).timestamp() - time.time()
        jobs.append((job, due))
    return jobs


def run_look(look: Job, context: WorkerContext) -> dict[str, Any]:
    """Run a scheduled look now, through its job entry point, instead of after its delay."""
    look.cancel()
    runtime.install(context)
    outcome: dict[str, Any] = jobs.look_again_for_approval(*look.args)
    return outcome


def qa_approved_parent(octopus: Octopus) -> dict[str, Any]:
    """Release Orchestration 2021.2.0.1 in Production, with QA's Proceed; the others still pending."""
    parent = octopus.deploy(ORCHESTRATION_2021_2)
    octopus.answer(QA_API_KEY, octopus.pending_step(parent, "QA approval"))
    return parent


def approval_time(octopus: Octopus, interruption_id: str) -> str:
    """When Octopus's audit log says a parent interruption was submitted, as the notes write it."""
    (submitted,) = octopus.submissions(interruption_id)
    return datetime.fromisoformat(submitted["Occurred"]).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def test_qa_approval_in_the_parent_is_relayed_with_notes_that_name_it(octopus: Octopus, context: WorkerContext) -> None:
    parent = qa_approved_parent(octopus)
    parent_qa = next(i for i in octopus.interruptions(parent["Id"]) if i["Title"] == "QA approval")
    child = octopus.deploy(WEB_API_2021_2)
    step = octopus.pending_step(child, "QA approval")

    outcome = approval_relay.on_intervention_raised(octopus.raised_event(step), context)

    after = octopus.interruption(step["Id"])
    assert outcome["relays"] == [{"interruption": step["Id"], "status": "relayed", "result": "Proceed", "reason": None}]
    assert after["IsPending"] is False
    assert after["Form"]["Values"]["Result"] == "Proceed"
    assert after["ResponsibleUserId"] == CONDUCTOR_USER_ID
    notes = after["Form"]["Values"]["Notes"]
    for part in (
        "Approved in the parent project Release Orchestration",
        "QA Tester (qa.tester)",
        "'QA approval' of release 2021.2.0.1 to Production",
        approval_time(octopus, parent_qa["Id"]),
        "is in QA, a team responsible for this step",
        f"{octopus.url}/app#/{SPACE_ID}/tasks/{parent['TaskId']}",
    ):
        assert part in notes
    record = record_of(context, step["Id"])
    assert record.status == "relayed"
    assert record.notes == notes
    assert record.parent is not None
    assert (record.parent.deployment_id, record.parent.interruption_id) == (parent["Id"], parent_qa["Id"])
    assert record.parent.approver.username == "qa.tester"
    assert scheduled_looks(context) == []


def test_an_approval_given_before_the_release_existed_is_not_relayed(octopus: Octopus, context: WorkerContext) -> None:
    # The seed's Release Orchestration 2021.1.0.1 went to Production with QA's approval, before the 2021.2.0.1
    # releases were created: it covers a Database 2021.1.0.1 deployment, not a Web API 2021.2.0.1 one.
    newer = octopus.pending_step(octopus.deploy(WEB_API_2021_2), "QA approval")
    older = octopus.pending_step(octopus.deploy(DATABASE_2021_1), "QA approval")

    approval_relay.on_intervention_raised(octopus.raised_event(newer), context)
    approval_relay.on_intervention_raised(octopus.raised_event(older), context)

    assert octopus.interruption(newer["Id"])["IsPending"] is True
    waiting = record_of(context, newer["Id"])
    assert waiting.status == "looking"
    assert waiting.reason == (
        "no deployment of Release Orchestration to Production that is running or has succeeded since "
        "Web API 2021.2.0.1 was created"
    )
    relayed = record_of(context, older["Id"])
    assert relayed.status == "relayed"
    assert relayed.parent is not None
    assert (relayed.parent.release_version, relayed.parent.approver.username) == ("2021.1.0.1", "qa.tester")
    assert octopus.interruption(older["Id"])["Form"]["Values"]["Result"] == "Proceed"


def test_a_missing_approval_is_looked_for_again_with_backoff_until_it_comes(
    octopus: Octopus, context: WorkerContext
) -> None:
    parent = octopus.deploy(ORCHESTRATION_2021_2)
    step = octopus.pending_step(octopus.deploy(WEB_API_2021_2), "QA approval")
    event = octopus.raised_event(step)

    approval_relay.on_intervention_raised(event, context)
    approval_relay.on_intervention_raised(event, context)  # a second delivery while looking: still one look

    delays = []
    for _ in range(3):
        ((look, due),) = scheduled_looks(context)
        record = record_of(context, step["Id"])
        assert record.next_check_at is not None
        delays.append((record.next_check_at - record.updated_at).total_seconds())
        assert abs(due - delays[-1]) < 1.1  # RQ keeps whole seconds
        assert look.func_name == approval_relay.LOOK_AGAIN_JOB
        assert record.reason == f"no approval yet in Release Orchestration to Production ({parent['Id']})"
        run_look(look, context)
    assert [round(delay) for delay in delays] == [2, 4, 5]  # doubling from 2 s, at most 5 s apart

    octopus.answer(QA_API_KEY, octopus.pending_step(parent, "QA approval"))
    ((look, _),) = scheduled_looks(context)
    run_look(look, context)

    record = record_of(context, step["Id"])
    assert record.status == "relayed"
    assert (record.checks, record.looks_scheduled) == (6, 4)  # two events and four looks again
    assert octopus.interruption(step["Id"])["Form"]["Values"]["Result"] == "Proceed"
    assert scheduled_looks(context) == []


def test_looking_stops_when_the_configured_time_has_passed(
    octopus: Octopus, connection: redis.Redis, keys: RedisKeys, client: OctopusClient
) -> None:
    context = context_for(connection, keys, client, keep_looking_seconds=1, look_again_seconds=0.5)
    octopus.deploy(ORCHESTRATION_2021_2)
    step = octopus.pending_step(octopus.deploy(WEB_API_2021_2), "QA approval")
    approval_relay.on_intervention_raised(octopus.raised_event(step), context)
    ((look, _),) = scheduled_looks(context)
    time.sleep(1.0)

    run_look(look, context)

    record = record_of(context, step["Id"])
    assert record.status == "refused"
    assert record.reason is not None
    assert record.reason.startswith("nothing to relay after looking for 1 s: no approval yet in Release Orchestration")
    assert scheduled_looks(context) == []
    assert octopus.interruption(step["Id"])["IsPending"] is True


def test_a_second_event_or_look_submits_nothing_more(
    octopus: Octopus, context: WorkerContext, client: OctopusClient
) -> None:
    qa_approved_parent(octopus)
    step = octopus.pending_step(octopus.deploy(WEB_API_2021_2), "QA approval")
    event = octopus.raised_event(step)
    approval_relay.on_intervention_raised(event, context)
    writes = {call: count for call, count in client.calls.items() if not call.startswith("GET")}

    again = approval_relay.on_intervention_raised(event, context)
    approval_relay.look_again(SPACE_ID, step["Id"], context)

    assert again["relays"][0]["status"] == "relayed"
    assert {call: count for call, count in client.calls.items() if not call.startswith("GET")} == writes
    assert len(octopus.submissions(step["Id"])) == 1


def test_a_job_that_died_after_taking_responsibility_submits_once_when_retried(
    octopus: Octopus, context: WorkerContext, client: OctopusClient
) -> None:
    qa_approved_parent(octopus)
    step = octopus.pending_step(octopus.deploy(WEB_API_2021_2), "QA approval")
    event = octopus.raised_event(step)
    fault = {"Method": "POST", "PathPattern": "/api/*/interruptions/*/submit", "Status": 503, "Count": 10}
    assert octopus.admin.post("/_simulator/faults", json=fault).status_code == 201

    with pytest.raises(OctopusUnavailable):
        approval_relay.on_intervention_raised(event, context)
    half_way = record_of(context, step["Id"])
    held = octopus.interruption(step["Id"])
    octopus.admin.delete("/_simulator/faults")
    approval_relay.on_intervention_raised(event, context)  # the job's retry

    assert half_way.status == "relaying"
    assert (held["IsPending"], held["ResponsibleUserId"]) == (True, CONDUCTOR_USER_ID)
    after = octopus.interruption(step["Id"])
    assert after["Form"]["Values"]["Notes"] == half_way.notes
    assert record_of(context, step["Id"]).status == "relayed"
    assert len(octopus.submissions(step["Id"])) == 1
    assert client.calls["PUT /api/{space}/interruptions/{id}/responsible"] == 1


def test_octopus_400_for_an_answer_already_submitted_counts_as_done(
    octopus: Octopus, context: WorkerContext, client: OctopusClient
) -> None:
    qa_approved_parent(octopus)
    step = octopus.pending_step(octopus.deploy(WEB_API_2021_2), "QA approval")
    approval_relay.on_intervention_raised(octopus.raised_event(step), context)
    # As if the worker died after Octopus took the answer and before the record said so.
    store = ApprovalStore(context.redis, context.keys.prefix)
    record = record_of(context, step["Id"])
    record.status = "relaying"
    store.save(record)

    outcome = approval_relay.look_again(SPACE_ID, step["Id"], context)

    assert outcome["status"] == "relayed"
    assert client.calls["POST /api/{space}/interruptions/{id}/submit"] == 2  # the second one answered 400
    assert len(octopus.submissions(step["Id"])) == 1
    assert record_of(context, step["Id"]).status == "relayed"


def test_a_service_account_refused_by_octopus_is_reported_as_a_set_up_problem_once(
    octopus: Octopus, context: WorkerContext, client: OctopusClient
) -> None:
    qa_approved_parent(octopus)
    step = octopus.pending_step(octopus.deploy(WEB_API_2021_2), "QA approval")
    # Octopus says no even though the step lists the service account's team: a permission changed meanwhile.
    fault = {"Method": "PUT", "PathPattern": "/api/*/interruptions/*/responsible", "Status": 403}
    assert octopus.admin.post("/_simulator/faults", json=fault).status_code == 201

    outcome = approval_relay.on_intervention_raised(octopus.raised_event(step), context)
    approval_relay.look_again(SPACE_ID, step["Id"], context)

    assert outcome["relays"][0]["status"] == "refused"
    assert record_of(context, step["Id"]).reason == (
        "set-up problem: the service account may not take responsibility for 'QA approval' in Web API. "
        "Fix: add the service account's team (Release Management) to the responsible teams of that step"
    )
    assert client.calls["PUT /api/{space}/interruptions/{id}/responsible"] == 1
    assert octopus.interruption(step["Id"])["IsPending"] is True
    assert scheduled_looks(context) == []


def test_rules_refuse_a_longest_wait_below_the_first() -> None:
    text = rules_text(window=0, approvals={"look_again_seconds": 10, "look_again_max_seconds": 5})

    with pytest.raises(RulesError) as refused:
        parse_rules(text, source="rules.yaml")

    (problem,) = refused.value.problems
    line = next(number for number, row in enumerate(text.splitlines(), 1) if row.strip().startswith("approvals:"))
    assert problem.startswith(f"rules.yaml:{line}: orchestrations[0].approvals: ")
    assert "look_again_max_seconds must not be below look_again_seconds" in problem
