"""The rules file: defaults, and problems reported with their line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.stack import rules_text
from workers.rules import RulesError, load_rules, parse_rules

EXAMPLE = Path(__file__).parent.parent / "examples" / "sample-rules.yaml"
MINIMAL = "orchestrations:\n  - name: a\n    approvals: {enabled: false}\n    components: [{project: X}]\n"


def problems_of(text: str) -> list[str]:
    with pytest.raises(RulesError) as raised:
        parse_rules(text, source="rules.yaml")
    return raised.value.problems


def test_example_file_loads_with_its_order_and_defaults() -> None:
    rules = load_rules(EXAMPLE)

    (orchestration,) = rules.orchestrations
    projects = [component.project for component in orchestration.components]
    assert projects == ["Database", "Web API", "Scheduling Service", "Web UI"]
    assert orchestration.redeploy.trigger_categories == ("MachineAdded", "MachineHealthy")
    assert orchestration.redeploy.stop_on_failure is True
    assert orchestration.approvals.relay_abort is False
    assert rules.trigger_categories() == {"MachineAdded", "MachineHealthy"}


def test_minimal_file_takes_the_documented_defaults() -> None:
    (orchestration,) = parse_rules(MINIMAL).orchestrations

    assert orchestration.space == "Default"
    assert orchestration.redeploy.redeploy_when_present is False
    assert orchestration.redeploy.group_window_seconds == 5.0
    assert orchestration.approvals.environment is None


def test_release_pattern_is_a_wildcard() -> None:
    text = MINIMAL.replace("{project: X}", "{project: X, release_pattern: '2021.1.0.*'}")
    component = parse_rules(text).orchestrations[0].components[0]

    assert component.matches_version("2021.1.0.7")
    assert not component.matches_version("2021.2.0.1")


def test_problems_name_the_line_and_the_field() -> None:
    text = """\
orchestrations:
  - name: sample
    parent_project: Release Orchestration
    components:
      - project: Database
      - projekt: Web API
    redeploy:
      trigger_categories: [MachineAdded, MachineCreated]
      group_window_seconds: -1
"""
    problems = problems_of(text)

    assert problems[:2] == [
        "rules.yaml:6: orchestrations[0].components[1].project: Field required",
        "rules.yaml:6: orchestrations[0].components[1].projekt: Extra inputs are not permitted; "
        "did you mean 'project'?",
    ]
    assert problems[2].startswith("rules.yaml:8: orchestrations[0].redeploy.trigger_categories[1]: ")
    assert problems[3].startswith("rules.yaml:9: orchestrations[0].redeploy.group_window_seconds: ")
    assert len(problems) == 4


def test_a_project_is_listed_once() -> None:
    (problem,) = problems_of(
        "orchestrations:\n  - name: one\n    components: [{project: Web API}, {project: web api}]\n"
    )

    assert problem.startswith("rules.yaml:3: orchestrations[0].components: ")
    assert "project 'web api' is listed twice" in problem


def test_approvals_need_a_parent_project() -> None:
    (problem,) = problems_of("orchestrations:\n  - name: one\n    components: [{project: X}]\n")

    assert problem.startswith("rules.yaml:2: orchestrations[0]: ")
    assert "approvals are enabled but parent_project is not set" in problem


def test_duplicate_orchestration_names() -> None:
    entry = "  - {name: one, approvals: {enabled: false}, components: [{project: X}]}\n"

    (problem,) = problems_of("orchestrations:\n" + entry * 2)

    assert problem == "rules.yaml:2: orchestrations: Value error, orchestration names must be unique: one"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "rules.yaml:1: the file is empty"),
        ("orchestrations: [\n", "rules.yaml:2: not valid YAML"),
        ("- just a list\n", "rules.yaml:1: (top level): Input should be a valid dictionary"),
        (
            "orchestrations: []\n",
            "rules.yaml:1: orchestrations: Value error, list at least one orchestration",
        ),
    ],
)
def test_unusable_files(text: str, expected: str) -> None:
    (problem,) = problems_of(text)
    assert problem.startswith(expected)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="cannot read"):
        load_rules(tmp_path / "absent.yaml")


def test_on_failure_is_the_orchestrations_and_stop_on_failure_its_older_alias() -> None:
    def stops(extra: str) -> bool:
        text = rules_text(window=0).replace("      stop_on_failure: true\n", extra)
        return parse_rules(text).orchestrations[0].stops_on_failure

    assert stops("") is True  # default: stop
    assert stops("      stop_on_failure: false\n") is False
    assert stops("      stop_on_failure: false\n    on_failure: stop\n") is True  # on_failure wins
    assert stops("    on_failure: continue\n") is False


def test_on_failure_rollback_stops_and_rolls_back() -> None:
    text = rules_text(window=0).replace("      stop_on_failure: true\n", "      stop_on_failure: false\n")
    rolling = parse_rules(text + "    on_failure: rollback\n").orchestrations[0]
    stopping = parse_rules(text + "    on_failure: stop\n").orchestrations[0]

    assert (rolling.stops_on_failure, rolling.rolls_back) == (True, True)
    assert (stopping.stops_on_failure, stopping.rolls_back) == (True, False)
    (problem,) = problems_of(text + "    on_failure: undo\n")
    assert problem == "rules.yaml:16: orchestrations[0].on_failure: Input should be 'stop', 'continue' or 'rollback'"


REQUIRES = """\
orchestrations:
  - name: a
    approvals: {enabled: false}
    components:
      - project: Web API
      - project: Web UI
"""


def test_requires_takes_one_requirement_or_a_list_and_unmet_defaults_to_fail() -> None:
    one = parse_rules(REQUIRES + "        requires: {project: Web API, version: '>=2021.3.0'}\n")
    listed = parse_rules(
        REQUIRES
        + "        requires:\n"
        + "          - {project: Web API, version: '>=2021.3.0,<2022'}\n"
        + "          - {project: Database, version: '==2021.3.*'}\n"
        + "        unmet: skip\n"
    )

    web_ui = one.orchestrations[0].components[1]
    assert [(item.project, item.version) for item in web_ui.requires] == [("Web API", ">=2021.3.0")]
    assert web_ui.unmet == "fail"
    assert one.orchestrations[0].components[0].requires == ()
    listed_ui = listed.orchestrations[0].components[1]
    assert [item.project for item in listed_ui.requires] == ["Web API", "Database"]
    assert listed_ui.unmet == "skip"


@pytest.mark.parametrize(
    ("requires", "expected"),
    [
        (
            "{project: Web API, version: '2021.3.0'}",
            "rules.yaml:7: orchestrations[0].components[1].requires[0].version: Value error, '2021.3.0' is not a "
            "version range; write for example '>=2021.3.0'",
        ),
        (
            "{project: Web API, version: '>= twenty-one'}",
            "rules.yaml:7: orchestrations[0].components[1].requires[0].version: Value error, '>= twenty-one' is not "
            "a version range; write for example '>=2021.3.0' or '>=2021.3.0,<2022'",
        ),
        (
            "{project: Web API}",
            "rules.yaml:7: orchestrations[0].components[1].requires[0].version: Field required",
        ),
        (
            "{project: Web API, version: '>=1', channel: Default}",
            "rules.yaml:7: orchestrations[0].components[1].requires[0].channel: Extra inputs are not permitted",
        ),
        (
            "{project: web ui, version: '>=1'}",
            "rules.yaml:6: orchestrations[0].components[1]: Value error, Web UI cannot require a version of itself",
        ),
        (
            "[{project: Web API, version: '>=1'}, {project: web api, version: '<2'}]",
            "rules.yaml:6: orchestrations[0].components[1]: Value error, requires names Web API, web api twice: put "
            "both bounds in one range",
        ),
        ("nothing", "rules.yaml:7: orchestrations[0].components[1].requires: Input should be a valid tuple"),
    ],
)
def test_a_requirement_that_cannot_be_checked_is_refused_with_its_place(requires: str, expected: str) -> None:
    (problem,) = problems_of(REQUIRES + f"        requires: {requires}\n")

    assert problem.startswith(expected), problem


def test_unmet_is_skip_or_fail() -> None:
    (problem,) = problems_of(REQUIRES + "        requires: {project: Web API, version: '>=1'}\n        unmet: warn\n")

    assert problem.startswith("rules.yaml:8: orchestrations[0].components[1].unmet: Input should be 'skip' or 'fail'")


def test_a_component_lives_in_the_orchestrations_space_unless_it_names_its_own() -> None:
    text = MINIMAL.replace("components: [{project: X}]", "components: [{project: X}, {project: Y, space: Payments}]")
    (orchestration,) = parse_rules(text).orchestrations

    x, y = orchestration.components
    assert (x.space, orchestration.space_of(x)) == (None, "Default")
    assert (y.space, orchestration.space_of(y)) == ("Payments", "Payments")
    assert orchestration.spaces() == ["Default", "Payments"]
    assert problems_of(text.replace("space: Payments", "space: ''")) == [
        "rules.yaml:4: orchestrations[0].components[1].space: String should have at least 1 character"
    ]
