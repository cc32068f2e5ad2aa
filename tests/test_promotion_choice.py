"""Which release each component of a promotion gets, against the simulator over HTTP (octopus-api.md §3)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import workers.octopus
import workers.promotion_choice
from simulator.seed import (
    CONTOSO_ID,
    DATABASE_ID,
    DEVELOPMENT_ID,
    PRODUCTION_ID,
    SCHEDULING_SERVICE_ID,
    STAGING_ID,
    TEST_ID,
)
from tests.support.promotion_octopus import PromotionOctopus, octopus, orchestration
from workers.promotion_choice import ComponentChoice
from workers.promotion_source import NotInLifecycle, source_environments
from workers.rules import RulesError, parse_rules

__all__ = ["octopus"]  # the fixture

PHASES = [(DEVELOPMENT_ID, False), (TEST_ID, False), (STAGING_ID, False), (PRODUCTION_ID, False)]


def promotion_channel(octopus: PromotionOctopus, project_id: str, *phases: tuple[str, bool]) -> str:
    lifecycle_id = octopus.lifecycle(f"Promotion {project_id}", *(phases or PHASES))
    return octopus.channel(project_id, "Promotion", lifecycle_id)


def test_promote_takes_the_newest_release_that_succeeded_in_the_phase_before(octopus: PromotionOctopus) -> None:
    channel_id = promotion_channel(octopus, DATABASE_ID)
    wanted = octopus.release(DATABASE_ID, "2030.1.0.1", channel_id)
    octopus.deployed(wanted, DEVELOPMENT_ID, TEST_ID)
    octopus.deployed(octopus.release(DATABASE_ID, "2030.1.0.2", channel_id), DEVELOPMENT_ID)  # not in Test yet
    octopus.deployed(octopus.release(DATABASE_ID, "2030.2.0.1", channel_id), DEVELOPMENT_ID, TEST_ID)  # not 2030.1
    rules = orchestration({"project": "Database", "channel": "Promotion"}, release_pattern="{parent:3}.*")

    (choice,) = octopus.choose(rules, "2030.1.0.9")

    assert (choice.action, choice.reason) == ("deploy", None)
    assert (choice.release_id, choice.release_version) == (wanted, "2030.1.0.1")
    assert choice.source_environment == "Test"
    assert choice.channel_id == channel_id
    assert choice.from_version == "2021.1.0.1"  # what Staging runs, whatever its channel
    assert (choice.project_id, choice.tenant_id) == (DATABASE_ID, None)
    assert "### Database 2030.1.0.1 (from 2021.1.0.1)" in choice.notes_markdown


def test_a_release_already_current_in_the_destination_is_skipped(octopus: PromotionOctopus) -> None:
    channel_id = promotion_channel(octopus, DATABASE_ID)
    release_id = octopus.release(DATABASE_ID, "2030.1.0.1", channel_id)
    octopus.deployed(release_id, DEVELOPMENT_ID, TEST_ID, STAGING_ID)
    rules = orchestration({"project": "Database", "channel": "Promotion", "release_pattern": "2030.1.0.*"})

    (choice,) = octopus.choose(rules, "2030.1.0.9")

    assert (choice.action, choice.reason) == ("skip", "2030.1.0.1 is already current in Staging")
    assert (choice.release_id, choice.from_version, choice.notes_markdown) == (None, "2030.1.0.1", "")


def test_an_optional_phase_adds_the_phase_before_it_to_the_sources(octopus: PromotionOctopus) -> None:
    phases = [(DEVELOPMENT_ID, False), (TEST_ID, True), (STAGING_ID, False)]
    channel_id = promotion_channel(octopus, DATABASE_ID, *phases)
    octopus.deployed(octopus.release(DATABASE_ID, "2030.1.0.1", channel_id), DEVELOPMENT_ID)
    rules = orchestration({"project": "Database", "channel": "Promotion"})

    (choice,) = octopus.choose(rules, "2030.1.0.9")

    assert (choice.action, choice.release_version, choice.source_environment) == ("deploy", "2030.1.0.1", "Development")


def test_without_an_optional_phase_only_the_phase_before_is_a_source(octopus: PromotionOctopus) -> None:
    channel_id = promotion_channel(octopus, DATABASE_ID)
    octopus.deployed(octopus.release(DATABASE_ID, "2030.1.0.1", channel_id), DEVELOPMENT_ID)
    rules = orchestration({"project": "Database", "channel": "Promotion"})

    (choice,) = octopus.choose(rules, "2030.1.0.9")

    assert (choice.action, choice.warning) == ("skip", True)
    assert choice.reason == "no release succeeded in Test may go to Staging"


def test_only_optional_phases_before_fall_back_to_the_channel_s_newest(octopus: PromotionOctopus) -> None:
    channel_id = promotion_channel(octopus, DATABASE_ID, (DEVELOPMENT_ID, True), (TEST_ID, True), (STAGING_ID, False))
    octopus.release(DATABASE_ID, "2030.1.0.1", channel_id)
    newest = octopus.release(DATABASE_ID, "2030.1.0.2", channel_id)
    rules = orchestration({"project": "Database", "channel": "Promotion"})

    (choice,) = octopus.choose(rules, "2030.1.0.9")

    assert (choice.action, choice.release_id, choice.source_environment) == ("deploy", newest, None)


def test_the_first_phase_takes_the_channel_s_newest_matching_release(octopus: PromotionOctopus) -> None:
    channel_id = promotion_channel(octopus, DATABASE_ID)
    wanted = octopus.release(DATABASE_ID, "2030.1.0.1", channel_id)
    octopus.release(DATABASE_ID, "2030.2.0.1", channel_id)
    rules = orchestration({"project": "Database", "channel": "Promotion", "release_pattern": "{parent:3}.*"})

    (choice,) = octopus.choose(rules, "2030.1.0.9", DEVELOPMENT_ID)

    assert (choice.action, choice.release_id) == ("deploy", wanted)


def test_a_named_source_environment_replaces_the_lifecycle_and_promote_to_is_checked(
    octopus: PromotionOctopus,
) -> None:
    channel_id = promotion_channel(octopus, DATABASE_ID)
    allowed = octopus.release(DATABASE_ID, "2030.1.0.1", channel_id)
    octopus.deployed(allowed, DEVELOPMENT_ID, TEST_ID)
    # Newer in Development, but its lifecycle does not let it go to Staging before Test.
    octopus.deployed(octopus.release(DATABASE_ID, "2030.1.0.2", channel_id), DEVELOPMENT_ID)
    rules = orchestration({"project": "Database", "channel": "Promotion"}, source_environment="Development")

    (choice,) = octopus.choose(rules, "2030.1.0.9")

    assert (choice.action, choice.release_id, choice.source_environment) == ("deploy", allowed, "Development")


def test_a_source_environment_equal_to_the_destination_is_skipped(octopus: PromotionOctopus) -> None:
    rules = orchestration({"project": "Database"}, source_environment="Staging")

    (choice,) = octopus.choose(rules, "2021.2.0.1")

    assert (choice.action, choice.reason) == ("skip", "cannot promote from Staging to itself")


@pytest.mark.parametrize(
    ("not_found", "action", "warning"), [("warn", "skip", True), ("skip", "skip", False), ("fail", "fail", False)]
)
def test_a_pattern_that_matches_nothing_does_what_not_found_says(
    octopus: PromotionOctopus, not_found: str, action: str, warning: bool
) -> None:
    # Web UI 2021.2.0.1 failed in Test, so no 2021.2.0.* release of it succeeded there.
    component = {"project": "Web UI", "release_pattern": "{parent:3}.*", "not_found": not_found}

    (choice,) = octopus.choose(orchestration(component), "2021.2.0.1")

    assert (choice.action, choice.warning) == (action, warning)
    assert choice.reason == "no release matching 2021.2.0.* succeeded in Test may go to Staging"
    assert choice.release_id is None


def test_redeploy_takes_what_the_destination_runs_now(octopus: PromotionOctopus) -> None:
    (choice,) = octopus.choose(orchestration({"project": "Web API", "mode": "redeploy"}), "2021.3.0.1")

    assert (choice.action, choice.release_version, choice.from_version) == ("deploy", "2021.2.0.1", "2021.2.0.1")


def test_redeploy_with_nothing_in_the_destination_is_not_found(octopus: PromotionOctopus) -> None:
    # Staging runs the scheduling service only for tenants.
    component = {"project": "Scheduling Service", "mode": "redeploy", "not_found": "fail"}

    (choice,) = octopus.choose(orchestration(component), "2021.3.0.1")

    assert (choice.action, choice.reason) == ("fail", "nothing of Scheduling Service runs in Staging to redeploy")


def test_always_latest_takes_the_channel_s_newest_release_that_may_go_there(octopus: PromotionOctopus) -> None:
    channel_id = promotion_channel(octopus, DATABASE_ID)
    deployable = octopus.release(DATABASE_ID, "2030.1.0.1", channel_id)
    octopus.deployed(deployable, DEVELOPMENT_ID, TEST_ID)
    octopus.release(DATABASE_ID, "2030.1.0.2", channel_id)  # newer, not yet allowed to Staging
    octopus.deployed(deployable, STAGING_ID)
    component = {"project": "Database", "channel": "Promotion", "mode": "always_latest"}

    (choice,) = octopus.choose(orchestration(component), "2030.1.0.9")

    # Deployed again although Staging runs it already: always_latest does not skip what is there.
    assert (choice.action, choice.release_id, choice.from_version) == ("deploy", deployable, "2030.1.0.1")


def test_tenants_are_dropped_for_untenanted_components_and_skip_where_not_connected(
    octopus: PromotionOctopus,
) -> None:
    rules = orchestration({"project": "Database"}, {"project": "Scheduling Service"}, release_pattern="2021.2.0.*")

    database, scheduling = octopus.choose(rules, "2021.2.0.1", STAGING_ID, tenant_id=CONTOSO_ID)
    assert (database.action, database.tenant_id, database.release_version) == ("deploy", None, "2021.2.0.1")
    # Contoso already runs 2021.2.0.1 of the scheduling service in Staging; untenanted, Staging runs none.
    assert (scheduling.tenant_id, scheduling.from_version, scheduling.action) == (CONTOSO_ID, "2021.2.0.1", "skip")

    _, in_test = octopus.choose(rules, "2021.2.0.1", TEST_ID, tenant_id=CONTOSO_ID)
    assert (in_test.action, in_test.reason) == ("skip", "tenant Contoso does not deploy Scheduling Service to Test")

    initech = octopus.post("tenants", {"Name": "Initech", "ProjectEnvironments": {}})
    _, unconnected = octopus.choose(rules, "2021.2.0.1", STAGING_ID, tenant_id=initech["Id"])
    assert (unconnected.action, unconnected.reason) == ("skip", "tenant Initech is not connected to Scheduling Service")


def test_a_tenant_s_own_promote_to_decides(octopus: PromotionOctopus) -> None:
    channel_id = promotion_channel(octopus, SCHEDULING_SERVICE_ID)
    release_id = octopus.release(SCHEDULING_SERVICE_ID, "2030.1.0.1", channel_id)
    octopus.deployed(release_id, DEVELOPMENT_ID, TEST_ID, STAGING_ID)  # untenanted only
    component = {"project": "Scheduling Service", "channel": "Promotion"}
    rules = orchestration(component, source_environment="Test")

    (untenanted,) = octopus.choose(rules, "2030.1.0.9", PRODUCTION_ID)
    (for_contoso,) = octopus.choose(rules, "2030.1.0.9", PRODUCTION_ID, tenant_id=CONTOSO_ID)

    assert (untenanted.action, untenanted.release_id) == ("deploy", release_id)
    # Contoso has not had it in Staging, so its PromoteTo does not hold Production yet.
    assert (for_contoso.action, for_contoso.warning, for_contoso.tenant_id) == ("skip", True, CONTOSO_ID)


def test_problems_of_one_component_fail_it_with_the_reason(octopus: PromotionOctopus) -> None:
    rules = orchestration({"project": "Billing"}, {"project": "Database", "release_pattern": "{parent:5}.*"})

    billing, database = octopus.choose(rules, "2021.2.0.1")

    assert (billing.action, billing.reason) == ("fail", "no project named 'Billing' in Spaces-1")
    assert (database.action, database.project_id) == ("fail", DATABASE_ID)
    assert database.reason == "the parent's version 2021.2.0.1 has too few parts for {parent:5}.*"


def test_source_environments_walk_back_to_the_first_required_phase() -> None:
    def phase(*environments: str, optional: bool = False) -> dict[str, object]:
        return {
            "AutomaticDeploymentTargets": [],
            "OptionalDeploymentTargets": list(environments),
            "IsOptionalPhase": optional,
        }

    phases = [phase("dev"), phase("test-a", "test-b", optional=True), phase("uat", optional=True), phase("prod")]

    walked = source_environments(phases, "prod")
    assert (walked.environment_ids, walked.channel_fallback) == (("uat", "test-a", "test-b", "dev"), False)
    assert source_environments(phases, "prod", "test-b").environment_ids == ("test-b",)
    assert source_environments(phases, "dev").environment_ids == ()
    assert source_environments(phases[1:], "prod").channel_fallback is True
    with pytest.raises(NotInLifecycle):
        source_environments(phases, "staging")


def test_the_rules_read_the_promotion_fields_and_refuse_bad_ones() -> None:
    text = """\
orchestrations:
  - name: a
    approvals: {enabled: false}
    release_pattern: "{parent:3}.*"
    source_environment: Test
    components:
      - {project: X, mode: redeploy, not_found: fail, form_values: {Colour: blue}, release_pattern: '{parent:3}.*'}
      - {project: Y}
"""
    (rules,) = parse_rules(text).orchestrations
    x, y = rules.components
    assert (x.mode, x.not_found, x.form_values) == ("redeploy", "fail", {"Colour": "blue"})
    assert (y.mode, y.not_found, y.form_values, y.channel) == ("promote", "warn", {}, None)
    assert (rules.source_environment, rules.release_pattern_for(y)) == ("Test", "{parent:3}.*")
    assert x.matches_version("2021.3.0.2", "2021.3.0.1")
    assert not x.matches_version("2021.4.0.1", "2021.3.0.1")
    assert x.matches_version("2021.4.0.1")  # no parent (a redeploy): the template limits nothing

    bad = text.replace("mode: redeploy", "mode: rollback").replace('"{parent:3}.*"', '"{version}.*"', 1)
    with pytest.raises(RulesError) as raised:
        parse_rules(bad)
    problems = "\n".join(raised.value.problems)
    assert "orchestrations[0].components[0].mode" in problems
    assert "orchestrations[0].release_pattern" in problems
    assert "unknown placeholder {version}" in problems


def test_one_list_of_successful_deployments_answers_every_component_as_its_own_queries_would(
    octopus: PromotionOctopus, monkeypatch: pytest.MonkeyPatch
) -> None:
    components = [{"project": name} for name in ("Database", "Web API", "Scheduling Service", "Web UI")]
    rules = orchestration(*components, release_pattern="{parent:3}.*")

    def deployment_reads(choose: Callable[[], list[ComponentChoice]]) -> tuple[list[ComponentChoice], int]:
        before = octopus.client.calls["GET /api/{space}/deployments"]
        choices = choose()
        return choices, octopus.client.calls["GET /api/{space}/deployments"] - before

    monkeypatch.setattr(workers.promotion_choice, "_history", lambda context: None)
    own, own_reads = deployment_reads(lambda: octopus.choose(rules, "2021.3.0.1"))
    monkeypatch.undo()
    shared, one_list = deployment_reads(lambda: octopus.choose(rules, "2021.3.0.1"))
    monkeypatch.setattr(workers.octopus, "PAGE_SIZE", 2)  # many pages: each read only as far as needed
    paged, _reads = deployment_reads(lambda: octopus.choose(rules, "2021.3.0.1"))

    assert [choice.action for choice in own] == ["deploy", "deploy", "skip", "deploy"]
    assert shared == paged == own
    assert (one_list, own_reads) == (1, 8)  # what each destination runs, what succeeded in its sources
