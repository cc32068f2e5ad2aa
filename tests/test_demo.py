"""`conductor demo`, the main job: the story's three acts play and their checks hold, on Redis and without it;
the live view answers while the demo runs; and service/ and workers/ import nothing of the demo."""

from __future__ import annotations

import ast
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from demo import stage
from demo.run import run_demo
from service.threaded_server import free_port

REPO = Path(__file__).resolve().parent.parent
CONDUCTOR = str(Path(sys.executable).parent / "conductor")
LIVE_VIEW = re.compile(r"live view: (http://127\.0\.0\.1:\d+/) \(it asks for a read token once: (\S+), made by")
EXPECTED = [
    # act 1
    "ok  Production: Database, Web API, Web UI deployed in order, Scheduling Service skipped",
    "ok  Production: the parent's 'Plan the release' holds the plan and the release notes",
    "left to people by the conductor, approved by db.admin",
    "approved by the conductor, relaying the parent approval of qa.tester",
    "not approved by the conductor (Web UI 2021.1.0.2 was deployed by admin, not by Release Conductor",
    "ok  Web UI 2021.1.0.2 in Production, by hand: Success",
    # act 2: what Production runs after act 1
    "ok  prod-web-03 received Web API 2021.3.0.2, then Web UI 2021.1.0.2 (what Production runs now), and nothing else",
    "ok  Database and Scheduling Service were skipped, each with its reason",
    "approved by the conductor, reusing the approval of web.admin",
    # act 3
    "ok  the noon-and-evening schedule fired once, for 12:00 London time, by the scheduler's clock",
    "ok  the schedule promoted Web API 2021.3.0.3, then Web UI 2021.3.0.2 to Test",
    "ok  Octopus shows 2 new deployments to Test, exactly the promotion's",
    "ok  in order: each component's task started after the one before it had finished",
    "the story happened",
]


def lines_of(process: subprocess.Popen[str]) -> queue.Queue[str | None]:
    """The process's output, line by line, as it comes (None at its end)."""
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    return lines


def read_until(lines: queue.Queue[str | None], seen: list[str], marker: str, *, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line)
        if marker in line:
            return line
    raise AssertionError(f"no line with {marker!r} in:\n{''.join(seen)}")


def live_view_answers(url: str, token: str) -> str:
    """The page answers without a token; its status fragment only with the demo's read token."""
    page = httpx.get(url, timeout=10)
    assert page.status_code == 200
    assert "Release Conductor" in page.text
    assert httpx.get(f"{url}live/status", timeout=10).status_code == 401
    status = httpx.get(f"{url}live/status", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert status.status_code == 200
    return status.text


@pytest.mark.slow
def test_the_demo_plays_three_acts_checks_them_and_serves_the_live_view_until_ctrl_c(redis_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONDUCTOR_")}
    env["CONDUCTOR_REDIS_URL"] = redis_url
    env["CONDUCTOR_READ_TOKENS"] = "a-configured-read-token-never-shown"
    process = subprocess.Popen(
        [CONDUCTOR, "demo", "--keep-serving"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    seen: list[str] = []
    try:
        lines = lines_of(process)
        first = LIVE_VIEW.search(read_until(lines, seen, "live view: ", timeout=60))
        assert first is not None
        url, token = first.groups()
        live_view_answers(url, token)  # while the story plays
        assert "Act 1" not in "".join(seen), "the live view's URL comes before the story"
        assert (
            httpx.get(
                f"{url}live/status", headers={"Authorization": "Bearer a-configured-read-token-never-shown"}, timeout=10
            ).status_code
            == 401
        )  # the demo's intake opens only to its own token

        read_until(lines, seen, "the stage stays up", timeout=240)
        status = live_view_answers(url, token)  # after the story, until Ctrl-C
        assert "2021.3.0.3" in status  # act 3's scheduled promotion
        assert "2021.1.0.2" in status  # act 2's redeploy of the rolled-back Web UI
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0, "".join(seen)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    while (line := lines.get(timeout=10)) is not None:
        seen.append(line)
    out = "".join(seen)
    assert out.count(f"live view: {url}") == 2  # at the start and at the end
    for line in EXPECTED:
        assert line in out
    assert "FAILED" not in out
    assert "a-configured-read-token-never-shown" not in out


def test_without_a_reachable_redis_the_demo_runs_on_the_in_memory_stand_in_and_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CONDUCTOR_REDIS_URL", raising=False)
    monkeypatch.setattr(stage, "LOCAL_REDIS", f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there

    code = run_demo(timeout=90)

    out = capsys.readouterr().out
    assert "running on the embedded in-memory stand-in" in out
    assert code == 0, out
    for line in EXPECTED:
        assert line in out


def test_an_unreachable_configured_redis_is_reported_not_replaced(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CONDUCTOR_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")

    code = run_demo(timeout=5)

    assert code == 2
    assert "cannot be reached" in capsys.readouterr().out


def test_one_failed_check_or_none_at_all_fails_the_story_and_the_summary_says_which() -> None:
    import io

    from demo.narration import Narrator, Outcome

    passed, failed = Outcome(), Outcome()
    for outcome in (passed, failed):
        outcome.begin("Act 1: something")
        outcome.check(True, "this happened")
    failed.begin("Act 2: something else")
    failed.check(False, "that did not")
    out = io.StringIO()

    failed.summarise(Narrator(out))

    assert (passed.ok, failed.ok, Outcome().ok) == (True, False, False)
    said = [line.split("] ", 1)[1] for line in out.getvalue().splitlines() if line.startswith("[")]
    assert said == ["Act 1: something", "  ok  this happened", "Act 2: something else", "  FAILED that did not"]


def test_neither_service_nor_workers_imports_the_demo() -> None:
    offending = []
    for package in ("service", "workers"):
        for path in (REPO / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                offending += [f"{path.relative_to(REPO)}: {n}" for n in names if n.split(".")[0] == "demo"]
    assert offending == []
