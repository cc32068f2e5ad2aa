"""Version requirements decided without Octopus: what counts as the destination's release, and the verdicts."""

from __future__ import annotations

import pytest

from workers.plan_steps import Skip
from workers.plans import Plan, PlanStep
from workers.rules import ComponentRule
from workers.version_requirements import RequirementUnmet, Running, check_requirements


def plan_of(*steps: PlanStep) -> Plan:
    return Plan(
        id="promotion-Deployments-9",
        kind="promotion",
        orchestration="sample-app",
        space_id="Spaces-1",
        environment_id="Environments-3",
        tenant_id=None,
        machine_ids=[],
        steps=list(steps),
    )


def component(requires: list[dict[str, str]], unmet: str = "fail") -> ComponentRule:
    return ComponentRule.model_validate({"project": "Web UI", "requires": requires, "unmet": unmet})


def staging_runs(**versions: str | None) -> dict[str, Running]:
    found = {}
    for name, version in versions.items():
        project = name.replace("_", " ")
        found[project] = (
            Running(version, "running in Staging")
            if version
            else Running(None, f"nothing of {project} runs in Staging")
        )
    return found


class Octopus:
    """What the destination runs, as Octopus would say; records what it was asked."""

    def __init__(self, running: dict[str, Running]) -> None:
        self.running = running
        self.asked: list[str] = []

    def __call__(self, project: str) -> Running:
        self.asked.append(project)
        return self.running[project]


def test_the_promotions_own_earlier_step_counts_before_what_octopus_says() -> None:
    web_api = PlanStep(project="Web API", status="succeeded", release_version="2021.3.0.2")
    web_ui = PlanStep(project="Web UI")
    octopus = Octopus(staging_runs(Web_API="2021.2.0.1"))

    check_requirements(
        component([{"project": "web api", "version": ">=2021.3.0"}]), plan_of(web_api, web_ui), web_ui, octopus
    )

    assert web_ui.requirements_met == "web api 2021.3.0.2 (deployed by this promotion) meets >=2021.3.0"
    assert octopus.asked == []


@pytest.mark.parametrize("earlier_status", ["failed", "skipped", "not_run", "pending"])
def test_an_earlier_step_that_did_not_succeed_leaves_what_the_destination_runs(earlier_status: str) -> None:
    web_api = PlanStep(project="Web API", status=earlier_status, release_version="2021.3.0.2")
    web_ui = PlanStep(project="Web UI")
    octopus = Octopus(staging_runs(Web_API="2021.2.0.1"))

    with pytest.raises(RequirementUnmet) as raised:
        check_requirements(
            component([{"project": "Web API", "version": ">=2021.3.0"}]), plan_of(web_api, web_ui), web_ui, octopus
        )

    assert str(raised.value) == (
        "requires Web API >=2021.3.0: Web API 2021.2.0.1 (running in Staging) is not in that range (unmet: fail)"
    )
    assert octopus.asked == ["Web API"]


def test_a_later_step_of_the_promotion_does_not_count() -> None:
    web_ui = PlanStep(project="Web UI")
    web_api = PlanStep(project="Web API", status="succeeded", release_version="2021.3.0.2")  # after it in order

    with pytest.raises(Skip) as raised:
        check_requirements(
            component([{"project": "Web API", "version": ">=2021.3.0"}], unmet="skip"),
            plan_of(web_ui, web_api),
            web_ui,
            Octopus(staging_runs(Web_API="2021.2.0.1")),
        )

    assert raised.value.reason.endswith("is not in that range (unmet: skip)")


def test_every_unmet_requirement_is_named_and_a_met_one_is_not() -> None:
    web_ui = PlanStep(project="Web UI")
    octopus = Octopus(staging_runs(Database="2021.3.0.1", Web_API=None, Scheduler="2021.3-hotfix-x"))
    requires = [
        {"project": "Database", "version": ">=2021.3.0"},
        {"project": "Web API", "version": ">=2021.3.0"},
        {"project": "Scheduler", "version": ">=2021.3.0"},
    ]

    with pytest.raises(Skip) as raised:
        check_requirements(component(requires, unmet="skip"), plan_of(web_ui), web_ui, octopus)

    assert raised.value.reason == (
        "requires Web API >=2021.3.0: nothing of Web API runs in Staging; requires Scheduler >=2021.3.0: "
        "Scheduler 2021.3-hotfix-x (running in Staging) cannot be checked: '2021.3-hotfix-x' is not a version "
        "that can be compared with >=2021.3.0 (unmet: skip)"
    )
    assert web_ui.requirements_met is None


@pytest.mark.parametrize(
    ("version", "met"),
    [
        ("2021.3.0.1", True),  # four parts: Year.Minor.Patch.Build
        ("2021.3.0", True),
        ("2022.1.0.5", False),
        ("2021.2.9.9", False),
        ("2021.3.0-beta.1", False),  # a pre-release comes before 2021.3.0
        ("2021.4.0-beta.1", True),  # ... and is ordered like any other version
    ],
)
def test_ranges_compare_octopus_versions(version: str, met: bool) -> None:
    web_ui = PlanStep(project="Web UI")
    octopus = Octopus(staging_runs(Web_API=version))
    rule = component([{"project": "Web API", "version": ">=2021.3.0,<2022"}], unmet="skip")

    if met:
        check_requirements(rule, plan_of(web_ui), web_ui, octopus)
        assert web_ui.requirements_met == f"Web API {version} (running in Staging) meets >=2021.3.0,<2022"
    else:
        with pytest.raises(Skip):
            check_requirements(rule, plan_of(web_ui), web_ui, octopus)


def test_a_component_without_requirements_asks_nothing() -> None:
    web_ui = PlanStep(project="Web UI")
    octopus = Octopus({})

    check_requirements(ComponentRule(project="Web UI"), plan_of(web_ui), web_ui, octopus)

    assert (octopus.asked, web_ui.requirements_met) == ([], None)
