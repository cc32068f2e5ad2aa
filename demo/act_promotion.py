"""Act 1: Release Orchestration 2021.3.0.1 promotes every component, to Staging and then to Production.

At "Plan the release" the conductor chooses each component's release and submits the plan with the release
notes into the parent; in Production QA, the web admins and the business owners approve once, in the parent;
at "Deploy the components" the conductor deploys Database, Web API and Web UI in order (Scheduling Service has
no 2021.3.0 release), relaying the parent's approvals into them, and leaves the DBAs' step to people. Then a
person rolls Web UI back to 2021.1.0.2 by hand: no approval covers that deployment, so the conductor leaves its
interventions to people, and says why.
"""

from __future__ import annotations

from typing import Any

import httpx

from demo.approval_checks import check_answered, check_left_to_people
from demo.story import Story

TITLE = "Act 1: Release Orchestration 2021.3.0.1 promotes every component, to Staging, then to Production"
Doc = dict[str, Any]
VERSION = "2021.3.0.1"
IN_ORDER = ["Database", "Web API", "Web UI"]
ROLLBACK = "2021.1.0.2"


def play(story: Story) -> None:
    _promote_to(story, story.cast.staging_id, "Staging")
    _promote_to(story, story.cast.production_id, "Production")
    _roll_back_by_hand(story)


def _promote_to(story: Story, environment_id: str, environment: str) -> None:
    with story.client(story.cast.admin_key) as admin:
        release = story.release(admin, story.cast.orchestration_project_id, VERSION)
        parent = story.deploy(admin, release["Id"], environment_id)
        story.narrator.say(f"Release Orchestration {VERSION} to {environment}: {parent['Id']}")
        planned = story.wait(
            "the conductor to plan the release", lambda: _answered(story, admin, parent, "Plan the release")
        )
        notes = str(planned["Form"]["Values"].get("Notes") or "")
        story.narrator.say("the conductor planned it, in the parent's 'Plan the release':")
        for line in notes.splitlines()[:9]:
            story.narrator.say(f"    {line}")
        if environment == "Production":
            _approve_the_parent(story, admin, parent)
        task = story.wait(
            f"Release Orchestration {VERSION} in {environment} to finish",
            lambda: story.finished_task(admin, parent["Id"]),
            watch=True,
        )
    _report(story, parent, environment, task, notes)


def _answered(story: Story, admin: httpx.Client, parent: Doc, title: str) -> Doc | None:
    found = admin.get(f"/api/{story.cast.space_id}/interruptions", params={"regarding": parent["Id"]}).json()
    return next((i for i in found["Items"] if i["Title"] == title and not i["IsPending"]), None)


def _approve_the_parent(story: Story, admin: httpx.Client, parent: Doc) -> None:
    """QA, the web admins and the business owners approve once, in the parent, having read the notes."""
    cast = story.cast
    pending = story.wait("the people's approvals in the parent", lambda: story.pending(admin, parent["Id"], count=3))
    people = (
        (cast.qa_key, cast.qa_username),
        (cast.web_admin_key, cast.web_admin_username),
        (cast.business_owner_key, cast.business_owner_username),
    )
    for key, username in people:
        with story.client(key) as person:
            for interruption in pending:
                if story.submit(person, interruption, f"Approved by {username} for {VERSION}, notes read."):
                    story.narrator.say(f"{username} approved '{interruption['Title']}' in Release Orchestration")


def _report(story: Story, parent: Doc, environment: str, task: Doc, notes: str) -> None:
    plan = story.plans.load(f"promotion-{parent['Id']}")
    if plan is None:
        story.outcome.check(False, f"no promotion plan for {parent['Id']}")
        return
    for step in plan.steps:
        what = f"{step.release_version} as {step.deployment_id}" if step.deployment_id else ""
        story.narrator.say(f"{step.project}: {step.status} {what}" + (f" ({step.reason})" if step.reason else ""))
    deployed = [step.project for step in plan.steps if step.status == "succeeded"]
    skipped = {step.project for step in plan.steps if step.status == "skipped"}
    story.outcome.check(
        deployed == IN_ORDER and skipped == {"Scheduling Service"},
        f"{environment}: {', '.join(deployed) or 'nothing'} deployed in order, Scheduling Service skipped "
        "(no 2021.3.0.* release)",
    )
    story.outcome.check(
        all(part in notes for part in ("Database", "Web API", "Web UI", "2021.3.0")),
        f"{environment}: the parent's 'Plan the release' holds the plan and the release notes",
    )
    story.outcome.check(
        task["State"] == "Success", f"Release Orchestration {VERSION} in {environment}: {task['State']}"
    )
    if environment == "Production":
        with story.client(story.cast.admin_key) as admin:
            for step in plan.steps:
                if step.deployment_id:
                    check_answered(story, admin, step.deployment_id, cover="parent")


def _roll_back_by_hand(story: Story) -> None:
    cast = story.cast
    with story.client(cast.admin_key) as admin:
        release = story.release(admin, cast.web_ui_id, ROLLBACK)
        child_id = story.deploy(admin, release["Id"], cast.production_id)["Id"]
        story.narrator.say(
            f"admin rolls Web UI back to {ROLLBACK} in Production ({child_id}) by hand: Release Orchestration "
            f"{VERSION}'s approvals do not cover it"
        )
        task = story.wait(
            f"people to answer Web UI {ROLLBACK}'s interventions, and the deployment to finish",
            lambda: story.finished_task(admin, child_id),
            watch=True,
        )
        check_left_to_people(story, admin, child_id)
        story.outcome.check(task["State"] == "Success", f"Web UI {ROLLBACK} in Production, by hand: {task['State']}")
