"""`conductor demo`, the main job: the whole story plays and its summary holds, on Redis and without it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from service import demo
from service.threaded_server import free_port

pytestmark = pytest.mark.slow
CONDUCTOR = str(Path(sys.executable).parent / "conductor")
EXPECTED = [
    "ok  prod-web-03 received Web API, then Web UI, and nothing else",
    "ok  Database and Scheduling Service were skipped, each with its reason",
    "ok  the conductor reused the approvals people gave those very releases in Production, naming them",
    "not approved by the conductor (Web UI 2021.1.0.2 was deployed by admin, not by Release Conductor",
    "ok  Web UI 2021.1.0.2 in Production: Success",
    "the story happened",
]


def test_the_demo_plays_the_whole_story_and_checks_it_against_octopus(redis_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONDUCTOR_")}
    env["CONDUCTOR_REDIS_URL"] = redis_url

    result = subprocess.run([CONDUCTOR, "demo"], env=env, capture_output=True, text=True, timeout=300)

    assert result.returncode == 0, result.stdout + result.stderr
    for line in EXPECTED:
        assert line in result.stdout
    assert "FAILED" not in result.stdout
    assert "approved by the conductor, reusing the approval of qa.tester" in result.stdout
    assert "approved by the conductor, reusing the approval of web.admin" in result.stdout


def test_without_a_reachable_redis_the_demo_runs_on_the_in_memory_stand_in_and_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CONDUCTOR_REDIS_URL", raising=False)
    monkeypatch.setattr(demo, "LOCAL_REDIS", f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there

    code = demo.run_demo(timeout=90)

    out = capsys.readouterr().out
    assert "running on the embedded in-memory stand-in" in out
    assert code == 0, out
    for line in EXPECTED:
        assert line in out


def test_an_unreachable_configured_redis_is_reported_not_replaced(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CONDUCTOR_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")

    code = demo.run_demo(timeout=5)

    assert code == 2
    assert "cannot be reached" in capsys.readouterr().out
