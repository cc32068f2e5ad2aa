"""Approvals relayed end to end: the seeded simulator delivers ManualInterventionInterruptionRaised as webhooks
to the intake, a worker process relays the answers that cover each component deployment (the Release
Orchestration deployment that ordered it, or a person's earlier approval of the release a redeploy repeats)
through the simulator's REST API, and real Redis holds the records."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from rq import Queue
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry
from rq.serializers import JSONSerializer

from simulator.seed import (
    CONDUCTOR_API_KEY,
    CONDUCTOR_USER_ID,
    DEVELOPMENT_ID,
    PRODUCTION_ID,
    QA_API_KEY,
    QA_TEAM_ID,
    SPACE_ID,
    STAGING_ID,
    TEST_ID,
    WEB_ADMIN_API_KEY,
    WEB_API_ID,
)
from tests.support.stack import CONDUCTOR, Stack, octopus, running_stack, wait_for
from tests.support.tokens import READ_AUTH
from tests.support.webhooks import post
from workers.approval_binding import ApprovalBinding, ApprovalBindings, marker
from workers.approval_records import ApprovalRelay
from workers.keys import RedisKeys

pytestmark = pytest.mark.slow

ORCHESTRATION_2021_2 = "Releases-11"
DATABASE_2021_1 = "Releases-1"
WEB_API_2021_2 = "Releases-8"
FAST_LOOKS = {"look_again_seconds": 0.5, "look_again_max_seconds": 1, "keep_looking_seconds": 60}

Doc = dict[str, Any]


@pytest.fixture
def stack(redis_url: str, keys: RedisKeys, tmp_path: Path) -> Iterator[Stack]:
    with running_stack(redis_url, keys, tmp_path, approvals=FAST_LOOKS) as running:
        yield running


def deploy(stack: Stack, release_id: str, environment_id: str = PRODUCTION_ID, **extra: Any) -> Doc:
    with stack.admin as admin:
        response = admin.post(
            f"/api/{SPACE_ID}/deployments", json={"ReleaseId": release_id, "EnvironmentId": environment_id, **extra}
        )
    assert response.status_code == 201, response.text
    deployment: Doc = response.json()
    return deployment


def ordered_deploy(stack: Stack, release_id: str, parent: Doc, **extra: Any) -> Doc:
    """A component deployment made by the conductor's service account for `parent`, with the binding recorded
    before it, as a promotion makes it."""
    name = f"promotion-{parent['Id']}/{release_id}"
    binding = ApprovalBinding(
        kind="parent",
        marker=name,
        release_id=release_id,
        environment_id=PRODUCTION_ID,
        tenant_id=None,
        parent_deployment_id=parent["Id"],
    )
    ApprovalBindings(stack.connection, stack.keys.prefix).record(binding)
    body = {"ReleaseId": release_id, "EnvironmentId": PRODUCTION_ID, "Comments": f"{marker(name)} test", **extra}
    with octopus(stack.sim_url, CONDUCTOR_API_KEY) as conductor:
        response = conductor.post(f"/api/{SPACE_ID}/deployments", json=body)
    assert response.status_code == 201, response.text
    deployment: Doc = response.json()
    return deployment


def interruptions(stack: Stack, regarding: str) -> list[Doc]:
    with stack.admin as admin:
        items: list[Doc] = admin.get(f"/api/{SPACE_ID}/interruptions", params={"regarding": regarding}).json()["Items"]
    return items


def raised_step(stack: Stack, deployment: Doc, title: str, *, pending: bool = False) -> Doc:
    """A step's interruption once raised, pending or not (the conductor may answer it before a probe sees
    it), or, with `pending`, once raised and still waiting for an answer."""
    state = "pending" if pending else "raised"

    def probe() -> Doc | None:
        steps = interruptions(stack, deployment["Id"])
        return next((i for i in steps if i["Title"] == title and (i["IsPending"] or not pending)), None)

    return wait_for(f"'{title}' {state} in {deployment['Id']}", probe, timeout=20)


def pending_step(stack: Stack, deployment: Doc, title: str) -> Doc:
    return raised_step(stack, deployment, title, pending=True)


def interruption(stack: Stack, interruption_id: str) -> Doc:
    with stack.admin as admin:
        found: Doc = admin.get(f"/api/{SPACE_ID}/interruptions/{interruption_id}").json()
    return found


def answer(stack: Stack, api_key: str, step: Doc, result: str = "Proceed") -> None:
    """A person of the seed answers an intervention in Octopus."""
    base = f"/api/{SPACE_ID}/interruptions/{step['Id']}"
    with octopus(stack.sim_url, api_key) as person:
        assert person.put(f"{base}/responsible").status_code == 200
        assert person.post(f"{base}/submit", json={"Notes": "Signed off.", "Result": result}).status_code == 200


def record(stack: Stack, interruption_id: str, *statuses: str, timeout: float = 20) -> ApprovalRelay:
    def probe() -> ApprovalRelay | None:
        found = stack.approvals.load(interruption_id)
        return found if found is not None and found.status in statuses else None

    try:
        return wait_for(f"{interruption_id} {' or '.join(statuses)}", probe, timeout=timeout)
    except AssertionError:
        log = stack.log_path.read_text()[-4000:] if stack.log_path.exists() else ""
        raise AssertionError(f"{stack.approvals.load(interruption_id)}\nworker log:\n{log}") from None


def finished_task(stack: Stack, deployment: Doc, timeout: float = 20) -> Doc:
    def probe() -> Doc | None:
        with stack.admin as admin:
            task: Doc = admin.get(f"/api/tasks/{deployment['TaskId']}").json()
        return task if task["IsCompleted"] else None

    return wait_for(f"{deployment['Id']} to finish", probe, timeout=timeout)


def submissions(stack: Stack, interruption_id: str) -> list[Doc]:
    with stack.admin as admin:
        params = {"regarding": interruption_id, "eventCategories": "InterruptionSubmitted"}
        items: list[Doc] = admin.get("/api/events", params=params).json()["Items"]
    return items


def approval_time(stack: Stack, interruption_id: str) -> str:
    """When the audit log says an interruption was submitted, as the relay's notes write it."""
    (submitted,) = submissions(stack, interruption_id)
    return datetime.fromisoformat(submitted["Occurred"]).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def approved_parent(stack: Stack, *approvers: tuple[str, str]) -> tuple[Doc, dict[str, Doc]]:
    """Release Orchestration 2021.2.0.1 to Production, answered by (api key, step title) pairs; the Business
    Owners approval stays pending, so the parent deployment is still running."""
    parent = deploy(stack, ORCHESTRATION_2021_2)
    steps = {title: pending_step(stack, parent, title) for _, title in approvers}
    for api_key, title in approvers:
        answer(stack, api_key, steps[title])
    return parent, steps


QA_AND_WEB_ADMINS = ((QA_API_KEY, "QA approval"), (WEB_ADMIN_API_KEY, "Web Admins approval"))


def test_qa_and_web_admins_approvals_are_relayed_into_the_matching_interventions(stack: Stack) -> None:
    parent, parent_steps = approved_parent(stack, *QA_AND_WEB_ADMINS)
    child = ordered_deploy(stack, WEB_API_2021_2, parent)

    task = finished_task(stack, child)

    assert task["State"] == "Success"
    relayed = {step["Title"]: step for step in interruptions(stack, child["Id"])}
    assert set(relayed) == {"QA approval", "Web Admins approval"}
    for title, person, team in (
        ("QA approval", "QA Tester (qa.tester)", "QA"),
        ("Web Admins approval", "Web Admin (web.admin)", "Web Admins"),
    ):
        step = relayed[title]
        assert (step["IsPending"], step["ResponsibleUserId"]) == (False, CONDUCTOR_USER_ID)
        assert step["Form"]["Values"]["Result"] == "Proceed"
        notes = step["Form"]["Values"]["Notes"]
        assert notes.startswith(
            f"Approved in the parent project Release Orchestration: {person} chose Proceed at '{title}' of "
            f"Release Orchestration 2021.2.0.1 to Production, on {approval_time(stack, parent_steps[title]['Id'])}."
        )
        assert "That parent deployment ordered this deployment" in notes
        assert f"is in {team}, a team responsible for this step" in notes
        assert notes.endswith(f"Parent deployment: {stack.sim_url}/app#/{SPACE_ID}/tasks/{parent['TaskId']}")
        saved = stack.approvals.load(step["Id"])
        assert saved is not None
        assert (saved.status, saved.result, saved.notes) == ("relayed", "Proceed", notes)

    listed = httpx.get(f"{stack.intake_url}/approvals", params={"limit": 10}, headers=READ_AUTH).json()["approvals"]
    status = subprocess.run([CONDUCTOR, "status"], env=stack.worker_env, capture_output=True, text=True, timeout=60)

    assert [item["interruption_id"] for item in listed] == [
        relayed["Web Admins approval"]["Id"],
        relayed["QA approval"]["Id"],
    ]
    assert listed[1]["covered_by"]["approver"]["username"] == "qa.tester"
    qa_step = relayed["QA approval"]["Id"]
    assert (
        f"  {qa_step}  {'relayed':<17} Web API 2021.2.0.1 Production  'QA approval'  {child['Id']} {child['TaskId']}"
        in status.stdout
    )
    assert (
        "      Proceed from QA Tester (qa.tester), by the parent deployment that ordered it: Release Orchestration "
        f"2021.2.0.1 Production {parent['Id']} {parent['TaskId']}" in status.stdout
    )


def test_an_intervention_owned_by_a_team_no_approver_is_in_stays_pending(
    redis_url: str, keys: RedisKeys, tmp_path: Path
) -> None:
    looks = {**FAST_LOOKS, "keep_looking_seconds": 2}
    with running_stack(redis_url, keys, tmp_path, approvals=looks) as stack:
        parent, _ = approved_parent(stack, *QA_AND_WEB_ADMINS)
        child = ordered_deploy(stack, DATABASE_2021_1, parent)
        qa_step = raised_step(stack, child, "QA approval")  # relayed at once: the parent is approved
        dba_step = pending_step(stack, child, "DBA approval")  # raised once QA's approval was relayed

        looking = record(stack, dba_step["Id"], "looking")
        given_up = record(stack, dba_step["Id"], "refused")

        assert interruption(stack, qa_step["Id"])["Form"]["Values"]["Result"] == "Proceed"
        still = interruption(stack, dba_step["Id"])
        assert (still["IsPending"], still["ResponsibleUserId"]) == (True, None)
        reason = (
            f"no approver in Release Orchestration to Production ({parent['Id']}) is in a team responsible for this "
            "step (DBAs); approved by qa.tester (QA), web.admin (Web Admins)"
        )
        assert looking.reason == reason
        assert given_up.reason == f"nothing to relay after looking for 2 s: {reason}"
        assert given_up.checks > 1


def test_an_approval_given_after_the_components_intervention_is_relayed(stack: Stack) -> None:
    parent = deploy(stack, ORCHESTRATION_2021_2)
    child = ordered_deploy(stack, WEB_API_2021_2, parent)
    qa_step = pending_step(stack, child, "QA approval")
    waiting = record(stack, qa_step["Id"], "looking")

    answer(stack, QA_API_KEY, pending_step(stack, parent, "QA approval"))
    relayed = record(stack, qa_step["Id"], "relayed")

    assert waiting.reason == f"no approval yet in Release Orchestration to Production ({parent['Id']})"
    assert relayed.checks > 1
    after = interruption(stack, qa_step["Id"])
    assert (after["IsPending"], after["ResponsibleUserId"]) == (False, CONDUCTOR_USER_ID)
    assert "QA Tester (qa.tester) chose Proceed at 'QA approval'" in after["Form"]["Values"]["Notes"]
    # The Web Admins step waits in turn, until its approval comes too.
    web_admins_step = pending_step(stack, child, "Web Admins approval")
    record(stack, web_admins_step["Id"], "looking")
    answer(stack, WEB_ADMIN_API_KEY, pending_step(stack, parent, "Web Admins approval"))
    assert finished_task(stack, child)["State"] == "Success"


@pytest.mark.parametrize("relay_abort", [False, True])
def test_an_abort_in_the_parent_is_relayed_only_when_configured(
    redis_url: str, keys: RedisKeys, tmp_path: Path, relay_abort: bool
) -> None:
    with running_stack(redis_url, keys, tmp_path, approvals={**FAST_LOOKS, "relay_abort": relay_abort}) as stack:
        parent = deploy(stack, ORCHESTRATION_2021_2)
        answer(stack, QA_API_KEY, pending_step(stack, parent, "QA approval"), result="Abort")
        assert finished_task(stack, parent)["State"] == "Failed"
        child = ordered_deploy(stack, WEB_API_2021_2, parent)
        qa_step = raised_step(stack, child, "QA approval")

        done = record(stack, qa_step["Id"], "relayed", "refused")

        after = interruption(stack, qa_step["Id"])
        if relay_abort:
            assert (done.status, done.result) == ("relayed", "Abort")
            assert after["Form"]["Values"]["Result"] == "Abort"
            assert after["Form"]["Values"]["Notes"].startswith(
                "Aborted in the parent project Release Orchestration: QA Tester (qa.tester) chose Abort at "
                "'QA approval'"
            )
            assert finished_task(stack, child)["State"] == "Failed"
        else:
            assert done.status == "refused"
            assert done.reason == (
                f"Release Orchestration to Production ({parent['Id']}) was aborted by qa.tester at 'QA approval'; "
                "relay_abort is off, so this step is left to people"
            )
            assert (after["IsPending"], after["ResponsibleUserId"]) == (True, None)


def test_a_guided_failure_is_left_alone(stack: Stack) -> None:
    with stack.admin as admin:
        failure = {"Project": "Web API", "StepName": "Deploy Web API", "Environment": "Production", "Count": 1}
        assert admin.post("/_simulator/step-failures", json=failure).status_code == 201
    parent, _ = approved_parent(stack, *QA_AND_WEB_ADMINS)
    child = ordered_deploy(stack, WEB_API_2021_2, parent, UseGuidedFailure=True)
    guided = wait_for(
        "the guided failure",
        lambda: next(
            (i for i in interruptions(stack, child["Id"]) if i["Type"] == "GuidedFailure" and i["IsPending"]), None
        ),
    )
    # Octopus is not documented to name the interruption in ManualInterventionInterruptionRaised: an event that
    # does not makes the relay look at every pending interruption of the deployment, the guided failure too.
    with stack.admin as admin:
        params = {"regarding": child["Id"], "eventCategories": "ManualInterventionInterruptionRaised"}
        raised = admin.get("/api/events", params=params).json()["Items"][0]
    raised.update(
        Id="Events-900001",
        RelatedDocumentIds=[d for d in raised["RelatedDocumentIds"] if not d.startswith("Interruptions-")],
    )
    assert post(stack.intake_url, {"EventType": "SubscriptionPayload", "Payload": {"Event": raised}}).status_code == 202

    left = record(stack, guided["Id"], "refused")

    assert left.reason == "a guided failure: failure guidance is left to people"
    after = interruption(stack, guided["Id"])
    assert (after["IsPending"], after["ResponsibleUserId"], after["Form"]["Values"]["Guidance"]) == (True, None, None)


def test_a_duplicate_event_or_a_retried_job_never_submits_twice(stack: Stack) -> None:
    parent, _ = approved_parent(stack, *QA_AND_WEB_ADMINS)
    with stack.admin as admin:
        # Octopus fails the first submission once: the job is retried after taking responsibility.
        fault = {"Method": "POST", "PathPattern": "/api/*/interruptions/*/submit", "Status": 503, "Count": 1}
        assert admin.post("/_simulator/faults", json=fault).status_code == 201
    child = ordered_deploy(stack, WEB_API_2021_2, parent)
    qa_step = raised_step(stack, child, "QA approval")
    record(stack, qa_step["Id"], "relayed")
    with stack.admin as admin:
        params = {"regarding": qa_step["Id"], "eventCategories": "ManualInterventionInterruptionRaised"}
        (raised,) = admin.get("/api/events", params=params).json()["Items"]
    envelope = {"EventType": "SubscriptionPayload", "Payload": {"Event": raised}}
    job = Job.fetch(stack.keys.job_id(raised["Id"]), connection=stack.connection, serializer=JSONSerializer)
    first_delivery = (job.retries_left, len(job.retry_intervals or []))

    duplicate = post(stack.intake_url, envelope)
    stack.connection.delete(stack.keys.dedupe(raised["Id"]))  # as once the dedupe window has passed
    again = post(stack.intake_url, envelope)
    wait_for("the second delivery's job", lambda: job.get_status(refresh=True) == JobStatus.FINISHED and again)

    assert duplicate.json()["status"] == "duplicate"
    assert again.json()["status"] == "queued"
    assert first_delivery[0] == first_delivery[1] - 1  # its first attempt failed, and its retry relayed
    assert job.return_value(refresh=True) == {
        "deployment": child["Id"],
        "relays": [{"interruption": qa_step["Id"], "status": "relayed", "result": "Proceed", "reason": None}],
    }
    assert len(submissions(stack, qa_step["Id"])) == 1
    after = interruption(stack, qa_step["Id"])
    assert (after["Form"]["Values"]["Result"], after["ResponsibleUserId"]) == ("Proceed", CONDUCTOR_USER_ID)
    queue = Queue(stack.keys.queue_name, connection=stack.connection, serializer=JSONSerializer)
    assert FailedJobRegistry(queue=queue).count == 0


def test_a_service_account_without_permission_gets_a_clear_report_not_a_loop_of_failures(stack: Stack) -> None:
    with stack.admin as admin:
        process = admin.get(f"/api/{SPACE_ID}/deploymentprocesses/deploymentprocess-{WEB_API_ID}").json()
        qa_action = process["Steps"][0]["Actions"][0]
        assert qa_action["Name"] == "QA approval"
        qa_action["Properties"]["Octopus.Action.Manual.ResponsibleTeamIds"] = QA_TEAM_ID  # no Release Management
        assert admin.put(f"/api/{SPACE_ID}/deploymentprocesses/{process['Id']}", json=process).status_code == 200
        release = admin.post(
            f"/api/{SPACE_ID}/releases", json={"ProjectId": WEB_API_ID, "Version": "2021.2.0.2"}
        ).json()
    for environment_id in (DEVELOPMENT_ID, TEST_ID, STAGING_ID):
        assert finished_task(stack, deploy(stack, release["Id"], environment_id))["State"] == "Success"
    parent, _ = approved_parent(stack, *QA_AND_WEB_ADMINS)
    child = ordered_deploy(stack, release["Id"], parent)
    qa_step = pending_step(stack, child, "QA approval")

    refused = record(stack, qa_step["Id"], "refused")

    assert refused.reason == (
        "set-up problem: the service account may not take responsibility for 'QA approval' in Web API. "
        "Fix: add the service account's team (Release Management) to the responsible teams of that step"
    )
    assert interruption(stack, qa_step["Id"])["IsPending"] is True
    queue = Queue(stack.keys.queue_name, connection=stack.connection, serializer=JSONSerializer)
    assert FailedJobRegistry(queue=queue).count == 0
    assert queue.scheduled_job_registry.count == 0


def test_a_new_machines_redeploys_reuse_the_approvals_people_gave_those_releases(stack: Stack) -> None:
    machine = stack.add_machine("prod-web-09", PRODUCTION_ID, ["web-server"])

    (plan,) = stack.finished_plans(1, timeout=60)

    assert plan.status == "succeeded"
    deployed = [step for step in plan.steps if step.status == "succeeded"]
    assert [(step.project, step.release_version) for step in deployed] == [
        ("Web API", "2021.1.0.1"),
        ("Web UI", "2021.1.0.2"),
    ]
    for step in deployed:
        assert step.machine_ids == [machine["Id"]]
        for relayed in interruptions(stack, step.deployment_id or ""):
            saved = record(stack, relayed["Id"], "relayed")
            assert saved.covered_by is not None
            assert saved.covered_by.kind == "earlier_approval"
            assert saved.covered_by.release_version == step.release_version
            assert saved.covered_by.environment == "Production"
            assert saved.covered_by.approver.username in ("qa.tester", "web.admin")
            assert relayed["Form"]["Values"]["Notes"].startswith("Approved earlier for this very release: ")
