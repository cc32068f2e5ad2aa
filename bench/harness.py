"""What every benchmark shares: servers in subprocesses with identical options, a private Redis prefix that
is deleted afterwards, the rules file, the machine's description, percentiles and the printed figures.

Every server listens on 127.0.0.1 only, every process started here is stopped here (by its own pid), and
every Redis key written under the run's prefix is deleted at the end; nothing is flushed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import redis
import structlog
from rq import Queue
from rq.registry import (
    CanceledJobRegistry,
    DeferredJobRegistry,
    FailedJobRegistry,
    FinishedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)
from rq.serializers import JSONSerializer

from simulator.seed import ADMIN_API_KEY, SPACE_ID, STAGING_ID, WEB_ROLE
from workers.keys import RedisKeys
from workers.redis_client import as_text

REPO = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent
PYTHON = sys.executable
CONDUCTOR = str(Path(sys.executable).parent / "conductor")
DEFAULT_REDIS_URL = os.environ.get("CONDUCTOR_BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
HOST = "127.0.0.1"
HEADER = "X-Conductor-Token"
SECRET = "bench-webhook-secret-not-a-real-one"  # noqa: S105 - a loopback-only benchmark value
PAYLOAD = BENCH_DIR.parent / "tests" / "fixtures" / "webhooks" / "deployment_failed_2023.json"
PAYLOAD_EVENT_ID = "Events-1158436"

RULES = """\
orchestrations:
  - name: sample-app
    space: Default
    parent_project: Release Orchestration
    components:
      - project: Database
      - project: Web API
      - project: Scheduling Service
      - project: Web UI
    redeploy:
      trigger_categories: [{triggers}]
      group_window_seconds: {window}
      task_check_seconds: {task_check}
      stop_on_failure: true
    approvals:
      enabled: false
"""


def write_rules(
    path: Path, *, window: float, task_check: float = 30, triggers: Sequence[str] = ("MachineAdded",)
) -> Path:
    path.write_text(RULES.format(window=window, task_check=task_check, triggers=", ".join(triggers)))
    return path


# ---------------------------------------------------------------------------------------------- machine


def machine_info() -> dict[str, Any]:
    """What the figures were measured on."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def event_loop_and_http(env: Mapping[str, str], *, loop: str = "auto", http: str = "auto") -> dict[str, str]:
    """What uvicorn will run with these options in a server started with `env` ("auto" takes uvloop and
    httptools when they can be imported)."""
    probe = (
        "import importlib.util as u, sys; "
        "print(('uvloop' if u.find_spec('uvloop') else 'asyncio') if sys.argv[1] == 'auto' else sys.argv[1], "
        "('httptools' if u.find_spec('httptools') else 'h11') if sys.argv[2] == 'auto' else sys.argv[2])"
    )
    done = subprocess.run(
        [PYTHON, "-c", probe, loop, http], env=dict(env), capture_output=True, text=True, check=True, timeout=30
    )
    picked_loop, picked_http = done.stdout.split()
    return {"loop": picked_loop, "http": picked_http}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------------------------- figures


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (0 < fraction <= 1) of unsorted values; nan for none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5 - 1e-9)))
    return ordered[rank - 1]


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median, min and max of repeated measurements."""
    if not values:
        return {"median": float("nan"), "min": float("nan"), "max": float("nan")}
    ordered = sorted(values)
    middle = len(ordered) // 2
    median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    return {"median": median, "min": ordered[0], "max": ordered[-1]}


def emit(bench: str, figures: Mapping[str, Any]) -> None:
    """The last line a benchmark prints: its figures as one JSON object."""
    print(json.dumps({"bench": bench, "machine": machine_info(), **figures}, default=str), flush=True)


def quiet_logs() -> None:
    """The conductor's code run inside a benchmark process logs only warnings, to stderr."""
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
    )


def wait_for(what: str, probe: Any, timeout: float = 120.0) -> Any:
    """`probe()` once it answers something true, looking every 50 ms; RuntimeError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def say(text: str) -> None:
    print(text, flush=True)


def py_spy() -> str | None:
    """py-spy from this virtualenv, or from PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def heaviest_frames(folded: Path, top: int = 14, *, keep: str = "", within: str = "") -> list[tuple[float, str]]:
    """Inclusive share of the samples per frame (file and function) from py-spy's raw output, counting only
    stacks that contain `within` (e.g. the event loop's thread) and listing only frames matching `keep`."""
    inclusive: Counter[str] = Counter()
    total = 0
    for line in folded.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit() or within not in stack:
            continue
        samples = int(count)
        total += samples
        for frame in {re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")}:
            inclusive[frame] += samples
    chosen = [
        (samples, frame)
        for frame, samples in inclusive.most_common()
        if not re.search(r"runpy|threading\.py|<module>|\(conductor\)|cli\.py|_bootstrap", frame)
        and re.search(keep, frame)
    ]
    return [(round(100 * samples / total, 1), frame) for samples, frame in chosen[:top]] if total else []


# ---------------------------------------------------------------------------------------------- Redis


def new_keys(tag: str = "bench") -> RedisKeys:
    return RedisKeys(f"{tag}{uuid.uuid4().hex[:10]}")


def remove_keys(connection: redis.Redis, keys: RedisKeys) -> int:
    """Delete every key this run wrote: the conductor's keys under the prefix, the RQ queue, its registries
    and every job they name (follow-up jobs have random ids), and the workers named after the prefix."""
    removed = 0
    queue = Queue(keys.queue_name, connection=connection, serializer=JSONSerializer)
    job_ids = set(queue.get_job_ids())
    for registry_class in (
        FinishedJobRegistry,
        FailedJobRegistry,
        StartedJobRegistry,
        ScheduledJobRegistry,
        DeferredJobRegistry,
        CanceledJobRegistry,
    ):
        job_ids.update(registry_class(queue=queue).get_job_ids())
    doomed = [key for job_id in job_ids for key in (f"rq:job:{job_id}", f"rq:results:{job_id}")]
    for pattern in (f"{keys.prefix}:*", f"rq:*{keys.prefix}*"):
        doomed.extend(as_text(key) for key in connection.scan_iter(match=pattern, count=1000))
    for start in range(0, len(doomed), 1000):
        removed += int(connection.delete(*doomed[start : start + 1000]))
    connection.srem("rq:queues", f"rq:queue:{keys.queue_name}")
    for worker_key in connection.smembers("rq:workers"):
        if keys.prefix in as_text(worker_key):
            connection.srem("rq:workers", worker_key)
    return removed


@contextmanager
def redis_space(url: str = DEFAULT_REDIS_URL, tag: str = "bench") -> Iterator[tuple[redis.Redis, RedisKeys]]:
    connection = redis.Redis.from_url(url)
    connection.ping()
    keys = new_keys(tag)
    try:
        yield connection, keys
    finally:
        remove_keys(connection, keys)
        connection.close()


# ---------------------------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def python_env(extra: Mapping[str, str] | None = None, *, path: Sequence[str] = ()) -> dict[str, str]:
    """This environment without CONDUCTOR_* settings, with the repository importable (for `bench.*`) and
    `path` before it."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CONDUCTOR_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [*path, str(REPO), env.get("PYTHONPATH")]))
    env.update(extra or {})
    return env


def conductor_env(
    *,
    redis_url: str,
    keys: RedisKeys,
    rules: Path | None = None,
    octopus_url: str | None = None,
    octopus_api_key: str | None = None,
    extra: Mapping[str, str] | None = None,
    path: Sequence[str] = (),
) -> dict[str, str]:
    values = {
        "CONDUCTOR_REDIS_URL": redis_url,
        "CONDUCTOR_REDIS_PREFIX": keys.prefix,
        "CONDUCTOR_WEBHOOK_HEADER": HEADER,
        "CONDUCTOR_WEBHOOK_SECRET": SECRET,
        "CONDUCTOR_LOG_FORMAT": "json",
        "CONDUCTOR_LOG_LEVEL": "INFO",
    }
    if rules is not None:
        values["CONDUCTOR_RULES"] = str(rules)
    if octopus_url is not None and octopus_api_key is not None:
        values["CONDUCTOR_OCTOPUS_URL"] = octopus_url
        values["CONDUCTOR_OCTOPUS_API_KEY"] = octopus_api_key
    values.update(extra or {})
    return python_env(values, path=path)


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])


def stop(process: subprocess.Popen[bytes], *, grace: float = 10.0) -> None:
    """Stop one process this harness started, by its own pid."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def wait_ready(url: str, process: subprocess.Popen[bytes], *, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {process.returncode} before it answered")
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer within {timeout} s")
        time.sleep(0.05)


@contextmanager
def server(
    app: str,
    *,
    env: Mapping[str, str],
    log: Path,
    options: Sequence[str] = (),
    ready_path: str = "/healthz",
    module: str = "bench.serve_app",
) -> Iterator[Server]:
    """`python -m bench.serve_app APP`: one uvicorn process, one worker, on a free loopback port."""
    port = free_port()
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [PYTHON, "-m", module, app, "--port", str(port), *options],
            env=dict(env),
            cwd=REPO,
            stdout=sink,
            stderr=sink,
        )
    url = f"http://{HOST}:{port}"
    try:
        wait_ready(url + ready_path, process)
        yield Server(app, url, process)
    finally:
        stop(process)


@contextmanager
def worker(env: Mapping[str, str], log: Path, *, burst: bool = False) -> Iterator[subprocess.Popen[bytes]]:
    """One `conductor worker` process, exactly as deployed."""
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [CONDUCTOR, "worker", *(["--burst"] if burst else [])], env=dict(env), cwd=REPO, stdout=sink, stderr=sink
        )
    try:
        yield process
    finally:
        stop(process)


def tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


# ---------------------------------------------------------------------------------------------- payloads


def payload_parts() -> list[bytes]:
    """The realistic ~3 KB webhook body split around the digits of its Event.Id (named twice: `Id` and
    `Links.Self`), so that every request can carry an id of its own: `event_body(parts, n)`."""
    body = PAYLOAD.read_bytes()
    marker = PAYLOAD_EVENT_ID.encode()
    if marker not in body:
        raise RuntimeError(f"{PAYLOAD} does not name {PAYLOAD_EVENT_ID}")
    return body.split(marker)


def event_body(parts: Sequence[bytes], number: int) -> bytes:
    """The payload with Event.Id `Events-<number>`."""
    return f"Events-{number}".encode().join(parts)


def command_parser(module: str, doc: str | None) -> argparse.ArgumentParser:
    """A benchmark's parser: its docstring's first paragraph as description, the rest as epilog."""
    paragraphs = (doc or "").split("\n\n")
    return argparse.ArgumentParser(
        prog=f"python -m {module}",
        description=paragraphs[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(paragraphs[1:]),
    )


def admin(url: str) -> httpx.Client:
    """The simulator's API as its administrator."""
    return httpx.Client(base_url=url, headers={"X-Octopus-ApiKey": ADMIN_API_KEY}, timeout=30)


MACHINES_PATH = f"/api/{SPACE_ID}/machines"


def new_web_server(name: str, environment_id: str = STAGING_ID) -> dict[str, Any]:
    """The body that adds a web server (the role every sample component targets) to `environment_id`."""
    return {
        "Name": name,
        "EnvironmentIds": [environment_id],
        "Roles": [WEB_ROLE],
        "Endpoint": {"CommunicationStyle": "None"},
        "SkipInitialHealthCheck": True,
    }
