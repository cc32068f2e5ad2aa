"""Act 3: the build server puts new releases into Development, and the noon schedule promotes them to Test.

The build server does what the story's script does, through the REST API: `POST /api/{space}/releases`, then a
deployment to Development, for Web API and Web UI. Then the rules' noon schedule (Development → Test at 12:00
and 19:00 Europe/London) fires at once: the scheduler's clock is set to noon in London and the scheduler ticks,
as `conductor scheduler` does every second. The workers promote exactly those two components to Test, Web API
first; the others are already current there and are skipped. Nobody approved a scheduled promotion as a whole,
so nothing would be approved on anyone's behalf (Test has no manual interventions).
"""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from demo.narration import StoryFailed
from demo.story import Story
from workers.plans import Plan

TITLE = "Act 3: the build server's new releases reach Test at noon"
Doc = dict[str, Any]
SCHEDULE = "noon-and-evening"
LONDON = ZoneInfo("Europe/London")
BUILDS = [
    ("Web API", "2021.3.0.3", "Orders: export to CSV."),
    ("Web UI", "2021.3.0.2", "Orders page: the export button."),
]


def play(story: Story) -> None:
    cast = story.cast
    projects = {"Web API": cast.web_api_id, "Web UI": cast.web_ui_id}
    with story.client(cast.build_server_key) as build_server:
        for project, version, notes in BUILDS:
            _build(story, build_server, projects[project], project, version, notes)
    with story.client(cast.admin_key) as admin:
        before = _test_deployment_ids(story, admin)
        noon = datetime.now(LONDON).replace(hour=12, minute=0, second=5, microsecond=0)
        story.clock.set(noon)
        runs = story.scheduler.tick()
        story.narrator.say(f"the scheduler's clock reads {noon:%H:%M:%S %Z} in London; it ticks once:")
        for run in runs:
            story.narrator.say(f"    {run.orchestration}/{run.schedule}, due {run.due.isoformat()}: {run.outcome}")
        story.outcome.check(
            [(run.schedule, run.due, run.outcome) for run in runs] == [(SCHEDULE, _due(noon), "queued")],
            f"the {SCHEDULE} schedule fired once, for 12:00 London time, by the scheduler's clock",
        )
        story.narrator.say(
            "a scheduled promotion: nobody approved it as a whole, so the conductor approves nothing on anyone's "
            "behalf (Test has no manual interventions)"
        )
        plan = story.wait("the scheduled promotion to finish", lambda: _finished_promotion(story))
        for step in plan.steps:
            what = f"{step.release_version} as {step.deployment_id}" if step.deployment_id else ""
            story.narrator.say(f"{step.project}: {step.status} {what}" + (f" ({step.reason})" if step.reason else ""))
        _check(story, admin, plan, before)


def _build(story: Story, client: httpx.Client, project_id: str, project: str, version: str, notes: str) -> None:
    """What a CI server does after a build: a release, deployed to Development."""
    created = client.post(
        f"/api/{story.cast.space_id}/releases",
        json={"ProjectId": project_id, "Version": version, "ReleaseNotes": notes},
    )
    if created.status_code != 201:
        raise StoryFailed(f"Octopus refused the build server's release {project} {version}: {created.text}")
    deployment = story.deploy(client, created.json()["Id"], story.cast.development_id)
    task = story.wait(f"{project} {version} in Development", lambda: story.finished_task(client, deployment["Id"]))
    story.narrator.say(f"build server: {project} {version} created and deployed to Development: {task['State']}")
    if task["State"] != "Success":
        raise StoryFailed(f"{project} {version} did not deploy to Development: {task['State']}")


def _due(noon: datetime) -> datetime:
    return noon.replace(second=0).astimezone(UTC)


def _test_deployment_ids(story: Story, client: httpx.Client) -> set[str]:
    found = client.get(
        f"/api/{story.cast.space_id}/deployments", params={"environments": story.cast.test_id, "take": 1000}
    ).json()
    return {item["Id"] for item in found["Items"]}


def _finished_promotion(story: Story) -> Plan | None:
    for plan in story.plans.recent(10, promotions_only=True):
        if (plan.requested_by or "").startswith(f"schedule {SCHEDULE},") and plan.status not in ("planned", "running"):
            return plan
    return None


def _check(story: Story, client: httpx.Client, plan: Plan, before: set[str]) -> None:
    deployed = [step for step in plan.steps if step.status == "succeeded"]
    expected = [(project, version) for project, version, _ in BUILDS]
    story.outcome.check(
        [(step.project, step.release_version) for step in deployed] == expected
        and all(
            step.status == "skipped" and "already current" in (step.reason or "")
            for step in plan.steps
            if step not in deployed
        )
        and plan.environment_id == story.cast.test_id,
        f"the schedule promoted {', then '.join(f'{p} {v}' for p, v in expected)} to Test; the other components "
        "were already current there",
    )
    new = _test_deployment_ids(story, client) - before
    story.outcome.check(
        new == {step.deployment_id for step in deployed},
        f"Octopus shows {len(new)} new deployments to Test, exactly the promotion's: {', '.join(sorted(new))}",
    )
    tasks = []
    for step in deployed:
        deployment = client.get(f"/api/{story.cast.space_id}/deployments/{step.deployment_id}").json()
        release = client.get(f"/api/{story.cast.space_id}/releases/{deployment['ReleaseId']}").json()
        task = client.get(f"/api/tasks/{deployment['TaskId']}").json()
        tasks.append(task)
        story.outcome.check(
            release["Version"] == step.release_version and task["State"] == "Success",
            f"Octopus shows {step.project} {release['Version']} ({step.deployment_id}) in Test: {task['State']}",
        )
    in_order = all(
        bool(earlier["CompletedTime"] and later["StartTime"])
        and datetime.fromisoformat(later["StartTime"]) >= datetime.fromisoformat(earlier["CompletedTime"])
        for earlier, later in pairwise(tasks)
    )
    story.outcome.check(
        in_order and len(tasks) == len(expected),
        "in order: each component's task started after the one before it had finished",
    )
