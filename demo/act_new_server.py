"""Act 2: a new web server joins Production and receives what Production runs now, alone and in order.

Since act 1, Production runs Web API 2021.3.0.2 (the promotion) and Web UI 2021.1.0.2 (the rollback by hand).
The conductor redeploys those two to the new machine alone (`SpecificMachineIds`), Web API first; Database
and Scheduling Service do not deploy to web servers and are skipped with their reasons. The components'
approvals in Production are relayed from the approvals people gave those very releases there: the parent's
for Web API (relayed then by the conductor, naming the person), the people's own for the rollback.
"""

from __future__ import annotations

from demo.approval_checks import check_answered
from demo.narration import StoryFailed
from demo.story import Story
from workers.plans import Plan

TITLE = "Act 2: a new web server joins Production"
MACHINE = "prod-web-03"
# What Production runs after act 1, in the rules' order: the promotion's Web API, the rollback's Web UI.
RUNNING_IN_PRODUCTION = [("Web API", "2021.3.0.2"), ("Web UI", "2021.1.0.2")]


def play(story: Story) -> None:
    cast = story.cast
    with story.client(cast.admin_key) as admin:
        machine = admin.post(
            f"/api/{cast.space_id}/machines",
            json={
                "Name": MACHINE,
                "EnvironmentIds": [cast.production_id],
                "Roles": [cast.web_role],
                "Endpoint": {"CommunicationStyle": "TentaclePassive", "Uri": f"https://{MACHINE}.example:10933/"},
            },
        )
        if machine.status_code != 201:
            raise StoryFailed(f"Octopus refused the new machine: {machine.text}")
    machine_id = machine.json()["Id"]
    story.narrator.say(f"{MACHINE} ({machine_id}) registered in Production with role {cast.web_role}")
    plan = story.wait(
        f"the redeploy plan for {MACHINE}",
        lambda: _plan_for(story, machine_id),
        watch=True,
        progress=lambda: _plan_progress(story, machine_id),
    )
    _report_plan(story, plan)
    deployed = [step for step in plan.steps if step.status == "succeeded"]
    expected = ", then ".join(f"{project} {version}" for project, version in RUNNING_IN_PRODUCTION)
    story.outcome.check(
        [(step.project, step.release_version) for step in deployed] == RUNNING_IN_PRODUCTION,
        f"{MACHINE} received {expected} (what Production runs now), and nothing else",
    )
    story.outcome.check(
        {step.project for step in plan.steps if step.status == "skipped"} == {"Database", "Scheduling Service"},
        "Database and Scheduling Service were skipped, each with its reason",
    )
    with story.client(cast.admin_key) as admin:
        for step in deployed:
            deployment = admin.get(f"/api/{cast.space_id}/deployments/{step.deployment_id}").json()
            release = admin.get(f"/api/{cast.space_id}/releases/{deployment['ReleaseId']}").json()
            task = admin.get(f"/api/tasks/{deployment['TaskId']}").json()
            story.outcome.check(
                deployment["SpecificMachineIds"] == [machine_id]
                and release["Version"] == step.release_version
                and task["State"] == "Success",
                f"Octopus shows {step.project} {release['Version']} ({step.deployment_id}) deployed to {MACHINE} "
                f"alone: {task['State']}",
            )
            check_answered(story, admin, step.deployment_id or "", cover="earlier")


def _plan_for(story: Story, machine_id: str) -> Plan | None:
    for plan in story.plans.recent(20):
        if machine_id in plan.machine_ids and plan.status != "running":
            return plan
    return None


def _plan_progress(story: Story, machine_id: str) -> str:
    for plan in story.plans.recent(20):
        if machine_id in plan.machine_ids:
            steps = ", ".join(
                f"{step.project} {step.status}" + (f" ({step.deployment_id})" if step.deployment_id else "")
                for step in plan.steps
            )
            return f"{plan.id} {plan.status}: {steps}"
    return "no plan yet"


def _report_plan(story: Story, plan: Plan) -> None:
    for step in plan.steps:
        if step.status == "skipped":
            story.narrator.say(f"{step.project}: skipped ({step.reason})")
        elif step.deployment_id:
            story.narrator.say(
                f"{step.project}: {step.release_version} as {step.deployment_id} to "
                f"{', '.join(step.machine_ids)} only: {step.status}" + (f" ({step.reason})" if step.reason else "")
            )
    story.narrator.say(f"{plan.id}: {plan.status}")
