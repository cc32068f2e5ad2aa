"""Which person's answer covers a component deployment: the parent deployment that ordered it, an earlier
approval of this very release, environment and tenant, or a parent bound by the rules; and nothing else.
Against the real simulator over HTTP, with real Redis; the relay runs in this process.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import redis

from simulator.seed import (
    BUSINESS_OWNER_API_KEY,
    BUSINESS_OWNER_USER_ID,
    CONDUCTOR_API_KEY,
    CONDUCTOR_USER_ID,
    DEVELOPMENT_ID,
    PRODUCTION_ID,
    QA_API_KEY,
    RELEASE_MANAGEMENT_TEAM_ID,
    SPACE_ID,
    STAGING_ID,
    TEST_ID,
    WEB_ADMIN_API_KEY,
    WEB_API_ID,
    WEB_UI_ID,
)
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
from tests.support.stack import wait_for
from workers.approval_binding import ApprovalBinding, ApprovalBindings
from workers.keys import RedisKeys
from workers.octopus import OctopusClient
from workers.runtime import WorkerContext

__all__ = ["client", "context", "octopus"]  # fixtures

ORCHESTRATION_2021_2 = "Releases-11"
WEB_API_2021_2 = "Releases-8"
BY_VERSION = {"bind_others": {"release_pattern": "{parent:3}.*"}}


def approved_parent(octopus: Octopus, *people: str) -> dict[str, Any]:
    """Release Orchestration 2021.2.0.1 in Production, approved by QA and the web admins; business owners pending."""
    parent = octopus.deploy_parent(ORCHESTRATION_2021_2)
    for key, title in ((QA_API_KEY, "QA approval"), (WEB_ADMIN_API_KEY, "Web Admins approval")):
        if key in people:
            octopus.answer(key, octopus.pending_step(parent, title))
    return parent


def steps_of(octopus: Octopus, deployment: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Web API's and Web UI's two steps in Production, each once it is raised: the second after the first is
    answered."""
    for title in ("QA approval", "Web Admins approval"):
        yield octopus.pending_step(deployment, title)


def earlier_production_deployment(octopus: Octopus, release_id: str) -> dict[str, Any]:
    found = octopus.admin.get(f"/api/{SPACE_ID}/releases/{release_id}/deployments").json()["Items"]
    (earlier,) = [item for item in found if item["EnvironmentId"] == PRODUCTION_ID]
    return dict(earlier)


def test_the_parents_approvals_never_cover_a_release_deployed_by_a_person(
    octopus: Octopus, context: WorkerContext
) -> None:
    # Seen: QA and Web Admins approved Release Orchestration 2021.2.0.1 in Production, then a person deployed
    # Web UI 2021.1.0.2, a release that parent does not include, and the conductor approved it.
    approved_parent(octopus, QA_API_KEY, WEB_ADMIN_API_KEY)
    child = octopus.deploy(octopus.release(WEB_UI_ID, "2021.1.0.2"))

    for step in steps_of(octopus, child):
        record = relay(octopus, context, step)

        assert record.status == "refused"
        assert record.reason == (
            "Web UI 2021.1.0.2 was deployed by admin, not by Release Conductor, and the rules bind no such "
            "deployment to a parent (approvals.bind_others)"
        )
        assert octopus.interruption(step["Id"])["IsPending"] is True
        octopus.answer(QA_API_KEY if step["Title"] == "QA approval" else WEB_ADMIN_API_KEY, step)  # people do it
    assert scheduled_looks(context) == []


def test_a_marker_copied_into_a_persons_deployment_binds_nothing(octopus: Octopus, context: WorkerContext) -> None:
    parent = approved_parent(octopus, QA_API_KEY)
    bindings = ApprovalBindings(context.redis, context.keys.prefix)
    bindings.record(
        ApprovalBinding(
            kind="parent",
            marker="promotion-7/1",
            release_id=WEB_API_2021_2,
            environment_id=PRODUCTION_ID,
            tenant_id=None,
            parent_deployment_id=parent["Id"],
        )
    )
    child = octopus.deploy(WEB_API_2021_2, Comments="as Release Conductor would [conductor promotion-7/1]")

    record = relay(octopus, context, octopus.pending_step(child, "QA approval"))

    assert record.status == "refused"
    assert record.reason is not None
    assert record.reason.startswith("Web API 2021.2.0.1 was deployed by admin, not by Release Conductor")


def test_bound_by_version_a_running_parent_neither_counts_nor_hides_an_older_approval(
    octopus: Octopus, connection: redis.Redis, keys: RedisKeys, client: OctopusClient
) -> None:
    context = context_for(connection, keys, client, **BY_VERSION)
    parent = approved_parent(octopus, QA_API_KEY, WEB_ADMIN_API_KEY)  # 2021.2.0.1, still running
    old_ui = octopus.deploy(octopus.release(WEB_UI_ID, "2021.1.0.2"))
    new_api = octopus.deploy(WEB_API_2021_2)

    old_qa = relay(octopus, context, octopus.pending_step(old_ui, "QA approval"))
    new_qa = relay(octopus, context, octopus.pending_step(new_api, "QA approval"))

    # Web UI 2021.1.0.2 matches 2021.1.0.*, which the seed's Release Orchestration 2021.1.0.1 gives: that parent
    # succeeded in Production with QA's approval. The newer 2021.2.0.1 is still running: it hides nothing.
    assert old_qa.status == "relayed"
    assert old_qa.covered_by is not None
    assert (old_qa.covered_by.kind, old_qa.covered_by.release_version) == ("bound_by_rule", "2021.1.0.1")
    assert old_qa.covered_by.pattern == "2021.1.0.*"
    assert "This release matches 2021.1.0.*, the pattern the rules derive from that parent release" in (
        old_qa.notes or ""
    )
    # Web API 2021.2.0.1 only matches the running parent: not an approval until that parent has succeeded.
    assert new_qa.status == "looking"
    assert new_qa.reason is not None
    assert new_qa.reason.startswith("no deployment of Release Orchestration to Production that succeeded")

    octopus.answer(BUSINESS_OWNER_API_KEY, octopus.pending_step(parent, "Business Owners approval"))
    octopus.answer(CONDUCTOR_API_KEY, octopus.pending_step(parent, "Deploy the components"))
    finished(octopus, parent)
    ((look, _),) = scheduled_looks(context)
    run_look(look, context)

    after = record_of(context, new_qa.interruption_id)
    assert after.status == "relayed"
    assert after.covered_by is not None
    assert (after.covered_by.deployment_id, after.covered_by.pattern) == (parent["Id"], "2021.2.0.*")


def test_a_redeploy_reuses_a_persons_earlier_approval_of_that_very_release_and_names_it(
    octopus: Octopus, context: WorkerContext
) -> None:
    release_id = octopus.release(WEB_API_ID, "2021.1.0.1")
    earlier = earlier_production_deployment(octopus, release_id)
    answered = {item["Title"]: item for item in octopus.interruptions(earlier["Id"])}
    redeploy = conductor_deploys(octopus, context, release_id, kind="redeploy", name="plan-1/1")

    for step, person in zip(
        steps_of(octopus, redeploy), ("QA Tester (qa.tester)", "Web Admin (web.admin)"), strict=True
    ):
        record = relay(octopus, context, step)

        assert record.status == "relayed"
        assert record.covered_by is not None
        assert (record.covered_by.kind, record.covered_by.deployment_id) == ("earlier_approval", earlier["Id"])
        assert record.covered_by.interruption_id == answered[step["Title"]]["Id"]
        assert record.covered_by.relayed_by_conductor is False
        notes = octopus.interruption(step["Id"])["Form"]["Values"]["Notes"]
        assert notes.startswith(f"Approved earlier for this very release: {person}")
        for part in (
            f"chose Proceed at '{step['Title']}' of Web API 2021.1.0.1 to Production",
            octopus.submitted_at(answered[step["Title"]]["Id"]),
            f"in {earlier['Id']}.",
            "Release Conductor redeployed that same release to new targets",
        ):
            assert part in notes


def test_with_leave_to_people_a_redeploy_is_left_to_people(
    octopus: Octopus, connection: redis.Redis, keys: RedisKeys, client: OctopusClient
) -> None:
    context = context_for(connection, keys, client, redeploy_approvals="leave_to_people")
    redeploy = conductor_deploys(
        octopus, context, octopus.release(WEB_API_ID, "2021.1.0.1"), kind="redeploy", name="plan-1/1"
    )

    record = relay(octopus, context, octopus.pending_step(redeploy, "QA approval"))

    assert record.status == "refused"
    assert record.reason == "a redeploy by Release Conductor, and the rules say redeploy_approvals: leave_to_people"


def finished(octopus: Octopus, deployment: dict[str, Any]) -> None:
    wait_for(f"{deployment['Id']} to succeed", lambda: octopus.task_state(deployment) == "Success", timeout=20)


def new_web_api_release_in_staging(octopus: Octopus, version: str) -> str:
    """A Web API release that went to Development, Test and Staging, where nobody approves anything."""
    created = octopus.admin.post(f"/api/{SPACE_ID}/releases", json={"ProjectId": WEB_API_ID, "Version": version})
    assert created.status_code == 201, created.text
    release_id = str(created.json()["Id"])
    for environment_id in (DEVELOPMENT_ID, TEST_ID, STAGING_ID):
        finished(octopus, octopus.deploy(release_id, environment_id))
    return release_id


def test_an_earlier_answer_by_the_service_account_with_no_person_on_record_is_no_approval(
    octopus: Octopus, context: WorkerContext
) -> None:
    release_id = new_web_api_release_in_staging(octopus, "2021.4.0.1")
    earlier = octopus.deploy(release_id, api_key=CONDUCTOR_API_KEY)
    for step in steps_of(octopus, earlier):
        octopus.answer(CONDUCTOR_API_KEY, step)  # the service account, answering for nobody
    redeploy = conductor_deploys(octopus, context, release_id, kind="redeploy", name="plan-1/1")

    record = relay(octopus, context, octopus.pending_step(redeploy, "QA approval"))

    assert record.status == "refused"
    assert record.reason == (
        "no person in a team responsible for 'QA approval' approved Web API 2021.4.0.1 to Production before, "
        "so this redeploy is left to people"
    )


def test_an_earlier_answer_the_conductor_relayed_counts_as_the_persons_behind_it(
    octopus: Octopus, context: WorkerContext
) -> None:
    parent = approved_parent(octopus, QA_API_KEY)
    ordered = conductor_deploys(octopus, context, WEB_API_2021_2, kind="parent", name="promotion-1/1", parent=parent)
    first = relay(octopus, context, octopus.pending_step(ordered, "QA approval"))
    assert first.status == "relayed"
    octopus.answer(WEB_ADMIN_API_KEY, octopus.pending_step(ordered, "Web Admins approval"))
    finished(octopus, ordered)
    redeploy = conductor_deploys(octopus, context, WEB_API_2021_2, kind="redeploy", name="plan-2/1")

    record = relay(octopus, context, octopus.pending_step(redeploy, "QA approval"))

    assert record.status == "relayed"
    assert record.covered_by is not None
    assert (record.covered_by.kind, record.covered_by.deployment_id) == ("earlier_approval", ordered["Id"])
    assert record.covered_by.relayed_by_conductor is True
    assert record.covered_by.approver.username == "qa.tester"
    assert "(relayed then by Release Conductor)" in (record.notes or "")


def test_a_person_only_in_the_service_accounts_team_approves_nothing(octopus: Octopus, context: WorkerContext) -> None:
    team = octopus.admin.get(f"/api/teams/{RELEASE_MANAGEMENT_TEAM_ID}").json()
    team["MemberUserIds"] = [CONDUCTOR_USER_ID, BUSINESS_OWNER_USER_ID]
    assert octopus.admin.put(f"/api/teams/{RELEASE_MANAGEMENT_TEAM_ID}", json=team).status_code == 200
    parent = approved_parent(octopus)
    octopus.answer(BUSINESS_OWNER_API_KEY, octopus.pending_step(parent, "Business Owners approval"))
    ordered = conductor_deploys(octopus, context, WEB_API_2021_2, kind="parent", name="promotion-1/1", parent=parent)

    record = relay(octopus, context, octopus.pending_step(ordered, "QA approval"))

    assert record.status == "looking"
    assert record.reason == (
        f"no approver in Release Orchestration to Production ({parent['Id']}) is in a team responsible for this "
        "step (QA); approved by business.owner (Business Owners, Release Management)"
    )
    assert octopus.interruption(record.interruption_id)["IsPending"] is True


def test_the_ordering_parents_approvals_count_only_while_it_runs(octopus: Octopus, context: WorkerContext) -> None:
    parent = approved_parent(octopus, QA_API_KEY)
    assert octopus.admin.post(f"/api/tasks/{parent['TaskId']}/cancel").status_code == 200
    wait_for("the parent to be canceled", lambda: octopus.task_state(parent) == "Canceled", timeout=20)
    ordered = conductor_deploys(octopus, context, WEB_API_2021_2, kind="parent", name="promotion-1/1", parent=parent)

    record = relay(octopus, context, octopus.pending_step(ordered, "QA approval"))

    assert record.status == "refused"
    assert record.reason == (
        f"the parent deployment that ordered it, Release Orchestration to Production ({parent['Id']}), is "
        "Canceled: its approvals count only while it runs"
    )
