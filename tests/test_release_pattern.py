"""Release patterns derived from the parent release's version, and the rules that name them."""

from __future__ import annotations

import pytest

from tests.support.stack import rules_text
from workers.release_pattern import PatternError, check_template, derive_pattern, version_matches
from workers.rules import RulesError, parse_rules


@pytest.mark.parametrize(
    ("template", "parent", "derived"),
    [
        ("{parent:3}.*", "2021.3.0.1", "2021.3.0.*"),
        ("{parent}", "2021.3.0.1", "2021.3.0.1"),
        ("{parent:1}.*-hotfix", "2021.3.0.1", "2021.*-hotfix"),
        ("{parent:5}.*", "2021.3.0.1", None),  # the parent's version has only four parts
    ],
)
def test_a_template_takes_the_first_parts_of_the_parents_version(template: str, parent: str, derived: str) -> None:
    check_template(template)
    assert derive_pattern(template, parent) == derived


def test_a_derived_pattern_matches_the_releases_of_that_parent_only() -> None:
    pattern = derive_pattern("{parent:3}.*", "2021.2.0.1")
    assert version_matches("2021.2.0.7", pattern)
    assert not version_matches("2021.1.0.2", pattern)
    assert not version_matches("2021.2.1.1", pattern)


@pytest.mark.parametrize("template", ["{release:3}.*", "{parent:0}.*", "{parent:x}", "{}.*", "{parent:3.*"])
def test_a_template_with_an_unknown_placeholder_is_refused(template: str) -> None:
    with pytest.raises(PatternError):
        check_template(template)


def test_rules_refuse_a_bind_others_pattern_that_names_no_parent_version() -> None:
    text = rules_text(window=0, approvals={"bind_others": {"release_pattern": "2021.2.0.*"}})

    with pytest.raises(RulesError) as refused:
        parse_rules(text, source="rules.yaml")

    (problem,) = refused.value.problems
    assert "orchestrations[0].approvals.bind_others.release_pattern" in problem
    assert "name the parent release's version in it, e.g. '{parent:3}.*'" in problem


def test_rules_accept_bind_others_and_leave_to_people() -> None:
    text = rules_text(
        window=0,
        approvals={"bind_others": {"release_pattern": "{parent:3}.*"}, "redeploy_approvals": "leave_to_people"},
    )

    approvals = parse_rules(text).orchestrations[0].approvals

    assert approvals.bind_others is not None
    assert approvals.bind_others.release_pattern == "{parent:3}.*"
    assert approvals.redeploy_approvals == "leave_to_people"
