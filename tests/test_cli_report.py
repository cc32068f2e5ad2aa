"""`conductor report`'s options: defaults, choices, and a help text that says what `--since` takes."""

from __future__ import annotations

import pytest

from service.cli_options import build_parser


def test_the_defaults_are_the_last_day_in_markdown() -> None:
    args = build_parser().parse_args(["report"])
    assert (args.command, args.since, args.format) == ("report", "24h", "markdown")


def test_a_format_outside_the_three_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as refused:
        build_parser().parse_args(["report", "--format", "xml"])
    assert refused.value.code == 2
    assert "argument --format: invalid choice: 'xml'" in capsys.readouterr().err


def test_the_help_says_what_since_takes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["report", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "a duration such as 90m, 24h or 7d, or an ISO 8601 time such as 2026-12-01T08:00:00Z (default 24h)" in text
    assert "CONDUCTOR_OCTOPUS_URL" in text
