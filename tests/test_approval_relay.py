"""The approval relay called in this process against the real simulator over HTTP, with real Redis: what it
submits and with which notes, how it looks again, and that a second event, a retried job or a job that died half
way never submits twice, nor over a person. Looks again are read from RQ's scheduled registry; no worker runs
here. Which answers cover which deployment is in tests/test_approval_cover.py.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
import redis

from simulator.seed import CONDUCTOR_API_KEY, CONDUCTOR_USER_ID, QA_API_KEY, QA_USER_ID, SPACE_ID
from tests.support.approvals import (
    Octopus,
    client,
    conductor_deploys,
    context,
    context_for,
    octopus,
    record_of,
    relay,
    run_look,
    scheduled_looks,
)
from tests.support.stack import rules_text
from workers import approval_relay
from workers.approval_records import ApprovalStore
from workers.keys import RedisKeys
from workers.octopus import OctopusClient, OctopusUnavailable
from workers.rules import RulesError, parse_rules
from workers.runtime import WorkerContext

__all__ = ["client", "context", "octopus"]  # fixtures

ORCHESTRATION_2021_2 = "Releases-11"
WEB_API_2021_2 = "Releases-8"


def ordered_web_api(octopus: Octopus, context: WorkerContext, parent: dict[str, Any]) -> dict[str, Any]:
    """Web API 2021.2.0.1 to Production, made by the conductor for `parent`, as a promotion does."""
    return conductor_deploys(octopus, context, WEB_API_2021_2, kind="parent", name="promotion-1/1", parent=parent)


def qa_approved_parent(octopus: Octopus) -> dict[str, Any]:
    """Release Orchestration 2021.2.0.1 in Production, with QA's Proceed; the others still pending."""
    parent = octopus.deploy_parent(ORCHESTRATION_2021_2)
    octopus.answer(QA_API_KEY, octopus.pending_step(parent, "QA approval"))
    return parent


def test_qa_approval_in_the_parent_is_relayed_with_notes_that_name_it(octopus: Octopus, context: WorkerContext) -> None:
    parent = qa_approved_parent(octopus)
    parent_qa = next(i for i in octopus.interruptions(parent["Id"]) if i["Title"] == "QA approval")
    step = octopus.pending_step(ordered_web_api(octopus, context, parent), "QA approval")

    outcome = approval_relay.on_intervention_raised(octopus.raised_event(step), context)

    after = octopus.interruption(step["Id"])
    assert outcome["relays"] == [{"interruption": step["Id"], "status": "relayed", "result": "Proceed", "reason": None}]
    assert after["IsPending"] is False
    assert after["Form"]["Values"]["Result"] == "Proceed"
    assert after["ResponsibleUserId"] == CONDUCTOR_USER_ID
    notes = after["Form"]["Values"]["Notes"]
    for part in (
        "Approved in the parent project Release Orchestration",
        "QA Tester (qa.tester) chose Proceed at 'QA approval' of Release Orchestration 2021.2.0.1 to Production",
        octopus.submitted_at(parent_qa["Id"]),
        "That parent deployment ordered this deployment",
        "is in QA, a team responsible for this step",
        f"{octopus.url}/app#/{SPACE_ID}/tasks/{parent['TaskId']}",
    ):
        assert part in notes
    record = record_of(context, step["Id"])
    assert record.status == "relayed"
    assert record.notes == notes
    assert record.covered_by is not None
    assert record.covered_by.kind == "ordered_by_parent"
    assert (record.covered_by.deployment_id, record.covered_by.interruption_id) == (parent["Id"], parent_qa["Id"])
    assert record.covered_by.approver.username == "qa.tester"
    assert scheduled_looks(context) == []


def test_a_missing_approval_is_looked_for_again_with_backoff_until_it_comes(
    octopus: Octopus, context: WorkerContext
) -> None:
    parent = octopus.deploy_parent(ORCHESTRATION_2021_2)
    step = octopus.pending_step(ordered_web_api(octopus, context, parent), "QA approval")
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
    parent = octopus.deploy_parent(ORCHESTRATION_2021_2)
    step = octopus.pending_step(ordered_web_api(octopus, context, parent), "QA approval")
    relay(octopus, context, step)
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
    step = octopus.pending_step(ordered_web_api(octopus, context, qa_approved_parent(octopus)), "QA approval")
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
    step = octopus.pending_step(ordered_web_api(octopus, context, qa_approved_parent(octopus)), "QA approval")
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


def test_an_answer_already_in_when_a_retry_resumes_counts_as_done_without_sending_it_again(
    octopus: Octopus, context: WorkerContext, client: OctopusClient
) -> None:
    step = octopus.pending_step(ordered_web_api(octopus, context, qa_approved_parent(octopus)), "QA approval")
    relay(octopus, context, step)
    # As if the worker died after Octopus took the answer and before the record said so.
    store = ApprovalStore(context.redis, context.keys.prefix)
    record = record_of(context, step["Id"])
    record.status = "relaying"
    store.save(record)
    record_before = client.calls["POST /api/{space}/interruptions/{id}/submit"]

    outcome = approval_relay.look_again(SPACE_ID, step["Id"], context)

    assert outcome["status"] == "relayed"
    assert client.calls["POST /api/{space}/interruptions/{id}/submit"] == record_before  # nothing sent again
    assert len(octopus.submissions(step["Id"])) == 1
    assert record_of(context, step["Id"]).status == "relayed"


class _PersonTakesItFirst(httpx.HTTPTransport):
    """Octopus as the relay sees it when a person takes the step between the relay's decision and its re-read:
    just before the relay's second read of the interruption, QA takes responsibility."""

    def __init__(self, octopus: Octopus, interruption_id: str) -> None:
        super().__init__()
        self.octopus = octopus
        self.path = f"/api/{SPACE_ID}/interruptions/{interruption_id}"
        self.reads = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path == self.path:
            self.reads += 1
            if self.reads == 2:
                with self.octopus.as_user(QA_API_KEY) as person:
                    assert person.put(f"{self.path}/responsible").status_code == 200
        return super().handle_request(request)


def test_a_person_who_takes_the_step_while_the_relay_decides_keeps_it(
    octopus: Octopus, connection: redis.Redis, keys: RedisKeys
) -> None:
    with OctopusClient(base_url=octopus.url, api_key=CONDUCTOR_API_KEY) as plain:
        context = context_for(connection, keys, plain)
        step = octopus.pending_step(ordered_web_api(octopus, context, qa_approved_parent(octopus)), "QA approval")
    transport = _PersonTakesItFirst(octopus, step["Id"])
    with OctopusClient(base_url=octopus.url, api_key=CONDUCTOR_API_KEY, transport=transport) as watched:
        context = context_for(connection, keys, watched)
        record = relay(octopus, context, step)

        assert transport.reads >= 2
        assert watched.calls["PUT /api/{space}/interruptions/{id}/responsible"] == 0
    assert record.status == "answered_by_person"
    assert record.reason == "QA Tester (qa.tester) took responsibility for it first: left to them"
    after = octopus.interruption(step["Id"])
    assert (after["IsPending"], after["ResponsibleUserId"]) == (True, QA_USER_ID)


def test_a_step_a_person_answered_first_is_not_shown_as_refused(octopus: Octopus, context: WorkerContext) -> None:
    step = octopus.pending_step(ordered_web_api(octopus, context, qa_approved_parent(octopus)), "QA approval")
    octopus.answer(QA_API_KEY, step)

    record = relay(octopus, context, step)

    assert record.status == "answered_by_person"
    assert record.reason == "QA Tester (qa.tester) answered Proceed first"
    assert len(octopus.submissions(step["Id"])) == 1


def test_a_service_account_refused_by_octopus_is_reported_as_a_set_up_problem_once(
    octopus: Octopus, context: WorkerContext, client: OctopusClient
) -> None:
    step = octopus.pending_step(ordered_web_api(octopus, context, qa_approved_parent(octopus)), "QA approval")
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


def test_octopus_400_on_submit_for_a_step_still_pending_is_reported_with_its_message(
    octopus: Octopus, context: WorkerContext
) -> None:
    step = octopus.pending_step(ordered_web_api(octopus, context, qa_approved_parent(octopus)), "QA approval")
    fault = {"Method": "POST", "PathPattern": "/api/*/interruptions/*/submit", "Status": 400, "Count": 1}
    assert octopus.admin.post("/_simulator/faults", json=fault).status_code == 201

    record = relay(octopus, context, step)

    assert record.status == "refused"
    assert record.reason == "Octopus refused the Proceed: Error (injected by the simulator)"
    assert octopus.interruption(step["Id"])["IsPending"] is True


def test_rules_refuse_a_longest_wait_below_the_first() -> None:
    text = rules_text(window=0, approvals={"look_again_seconds": 10, "look_again_max_seconds": 5})

    with pytest.raises(RulesError) as refused:
        parse_rules(text, source="rules.yaml")

    (problem,) = refused.value.problems
    line = next(number for number, row in enumerate(text.splitlines(), 1) if row.strip().startswith("approvals:"))
    assert problem.startswith(f"rules.yaml:{line}: orchestrations[0].approvals: ")
    assert "look_again_max_seconds must not be below look_again_seconds" in problem
