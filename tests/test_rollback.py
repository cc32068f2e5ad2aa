"""A promotion's rollback decided without Octopus: which steps are added, in which order, and what they say."""

from __future__ import annotations

from workers.plans import ParentDeployment, Plan, PlanStep
from workers.promotion_steps import outcome_notes
from workers.rollback import add_rollback_steps, rollback_binding, rollback_body, rollback_summary, stop_rolling_back


def deployed(project: str, version: str, *, before: tuple[str, str, str] | None, index: int) -> PlanStep:
    """A succeeded step; `before` is (release id, version, deployment id) of what the destination ran."""
    return PlanStep(
        project=project,
        status="succeeded",
        project_id=f"Projects-{index}",
        release_id=f"Releases-{index}0",
        release_version=version,
        deployment_id=f"Deployments-{index}0",
        tenant_id="Tenants-1",
        machine_ids=["Machines-7"],
        from_release_id=before[0] if before else None,
        from_version=before[1] if before else None,
        from_deployment_id=before[2] if before else None,
    )


def promotion(*steps: PlanStep) -> Plan:
    return Plan(
        id="promotion-Deployments-9",
        kind="promotion",
        parent=ParentDeployment(
            deployment_id="Deployments-9",
            task_id="ServerTasks-9",
            project="Release Orchestration",
            release_version="2021.3.0.1",
            environment="Staging",
        ),
        orchestration="sample-app",
        space_id="Spaces-1",
        environment_id="Environments-3",
        tenant_id="Tenants-1",
        machine_ids=[],
        steps=list(steps),
    )


def test_each_succeeded_step_is_rolled_back_newest_first_to_what_it_replaced() -> None:
    database = deployed("Database", "2021.3.0.1", before=("Releases-1", "2021.1.0.1", "Deployments-3"), index=1)
    skipped = PlanStep(project="Scheduling Service", status="skipped", reason="nothing to deploy")
    web_api = deployed("Web API", "2021.3.0.2", before=("Releases-2", "2021.2.0.1", "Deployments-4"), index=2)
    web_ui = PlanStep(project="Web UI", status="failed", release_version="2021.3.0.1", deployment_id="Deployments-30")
    later = PlanStep(project="Reports")
    plan = promotion(database, skipped, web_api, web_ui, later)

    add_rollback_steps(plan, web_ui)

    assert (later.status, later.reason) == ("not_run", "stopped after Web UI failed")
    rollbacks = plan.steps[5:]
    assert [(s.project, s.rollback_of, s.status) for s in rollbacks] == [
        ("Web API", 2, "pending"),
        ("Database", 0, "pending"),
    ]
    first = rollbacks[0]
    assert (first.release_id, first.release_version, first.from_version) == ("Releases-2", "2021.2.0.1", "2021.3.0.2")
    assert (first.repeats_deployment, first.tenant_id, first.machine_ids) == (
        "Deployments-4",
        "Tenants-1",
        ["Machines-7"],
    )
    assert first.label == "Web API (rollback)"


def test_a_component_with_nothing_before_it_cannot_be_rolled_back_and_says_so() -> None:
    database = deployed("Database", "2021.3.0.1", before=None, index=1)
    same = deployed("Web API", "2021.3.0.2", before=("Releases-20", "2021.3.0.2", "Deployments-4"), index=2)
    web_ui = PlanStep(project="Web UI", status="failed")
    plan = promotion(database, same, web_ui)

    add_rollback_steps(plan, web_ui)

    assert [(s.project, s.status, s.reason) for s in plan.steps[3:]] == [
        ("Web API", "skipped", "2021.3.0.2 ran in Staging before too: nothing to roll back"),
        ("Database", "skipped", "cannot be rolled back: nothing of Database ran in Staging before 2021.3.0.1"),
    ]
    assert rollback_summary(plan.steps) == [
        "Rolled back: nothing.",
        "Not rolled back: Web API (2021.3.0.2 ran in Staging before too: nothing to roll back); Database (cannot be "
        "rolled back: nothing of Database ran in Staging before 2021.3.0.1).",
    ]


def test_a_failed_rollback_leaves_the_rest_to_people_and_the_parent_hears_all_of_it() -> None:
    database = deployed("Database", "2021.3.0.1", before=("Releases-1", "2021.1.0.1", "Deployments-3"), index=1)
    web_api = deployed("Web API", "2021.3.0.2", before=("Releases-2", "2021.2.0.1", "Deployments-4"), index=2)
    web_ui = PlanStep(project="Web UI", status="failed", reason="Deployments-30 ended Failed")
    plan = promotion(database, web_api, web_ui)
    add_rollback_steps(plan, web_ui)
    back_api, back_db = plan.steps[3:]
    back_api.deployment_id = "Deployments-31"
    back_api.finish("failed", "Deployments-31 ended Failed")

    stop_rolling_back(plan, back_api)
    notes = outcome_notes(plan.steps, canceled=False).splitlines()

    assert (back_db.status, back_db.reason) == ("not_run", "left to people: the rollback of Web API failed")
    assert notes[:4] == [
        "Web UI failed; not deployed: nothing else.",  # the rollback's failure is not the promotion's own
        "Rolled back: nothing.",
        "Rollback failed: Web API to 2021.2.0.1 (Deployments-31 ended Failed).",
        "Not rolled back: Database (left to people: the rollback of Web API failed).",
    ]
    assert "- Web API (rollback) 2021.2.0.1 as Deployments-31: failed: Deployments-31 ended Failed" in notes


def test_a_rollback_repeats_the_restored_deployment_and_is_bound_as_a_redeploy() -> None:
    web_api = deployed("Web API", "2021.3.0.2", before=("Releases-2", "2021.2.0.1", "Deployments-4"), index=2)
    web_ui = PlanStep(project="Web UI", status="failed")
    plan = promotion(web_api, web_ui)
    add_rollback_steps(plan, web_ui)
    back = plan.steps[2]
    restored = {"Id": "Deployments-4", "FormValues": {"Variables-1": "CR-1"}, "SkipActions": ["Actions-3"]}

    body = rollback_body(plan, back, restored, marker="[conductor promotion-Deployments-9/2]", guided_failure=True)
    binding = rollback_binding(plan, back, marker_name="promotion-Deployments-9/2")

    assert {key: body[key] for key in ("ReleaseId", "EnvironmentId", "TenantId", "SpecificMachineIds")} == {
        "ReleaseId": "Releases-2",
        "EnvironmentId": "Environments-3",
        "TenantId": "Tenants-1",
        "SpecificMachineIds": ["Machines-7"],
    }
    assert (body["FormValues"], body["SkipActions"], body["UseGuidedFailure"]) == (
        {"Variables-1": "CR-1"},
        ["Actions-3"],
        True,
    )
    assert body["Comments"].startswith(
        "Release Conductor [conductor promotion-Deployments-9/2]: rolling Web API back from 2021.3.0.2 to 2021.2.0.1 "
        "(as deployed in Deployments-4) after Web UI failed, for Release Orchestration 2021.3.0.1 (Deployments-9)"
    )
    assert (binding.kind, binding.release_id, binding.tenant_id, binding.parent_deployment_id) == (
        "redeploy",
        "Releases-2",
        "Tenants-1",
        None,
    )
    assert binding.covers({"ReleaseId": "Releases-2", "EnvironmentId": "Environments-3", "TenantId": "Tenants-1"})
    assert not binding.covers({"ReleaseId": "Releases-20", "EnvironmentId": "Environments-3", "TenantId": "Tenants-1"})
