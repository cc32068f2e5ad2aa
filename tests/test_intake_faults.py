"""The intake under faults: Redis killed and restarted, SIGTERM in the middle of a request, hostile input."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import redis
import rq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rq import Queue
from rq.serializers import JSONSerializer

from service import cli
from service.app import create_app
from service.threaded_server import free_port, serve_in_thread
from tests.conftest import make_settings
from tests.support.private_redis import PrivateRedis
from tests.support.redis_space import redis_space
from tests.support.tcp_proxy import reply_holding_proxy
from tests.support.webhooks import AUTH, HEADER, SECRET, load_webhook, post
from workers.event_queue import EventQueue, RQFormatChanged
from workers.keys import RedisKeys

CONDUCTOR = str(Path(sys.executable).parent / "conductor")


def event(number: int) -> dict[str, Any]:
    body = load_webhook("deployment_failed_2023")
    body["Payload"]["Event"]["Id"] = f"Events-{number}"
    return body


def test_no_acknowledged_event_is_lost_when_redis_is_killed_and_restarted(tmp_path: Path, keys: RedisKeys) -> None:
    private = PrivateRedis(tmp_path, appendonly=True)
    private.start()
    acknowledged: list[str] = []
    try:
        with serve_in_thread(create_app(make_settings(private.url, keys))) as url:

            def deliver(start: int) -> None:
                for number in range(start, start + 25):
                    if post(url, event(number)).status_code == 202:
                        acknowledged.append(keys.job_id(f"Events-{number}"))

            threads = [threading.Thread(target=deliver, args=(1000 + 25 * n,)) for n in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert private.process is not None
            private.process.send_signal(signal.SIGKILL)  # no chance to flush anything on the way down
            private.process.wait(10)
            private.process = None
            private.start()
            queue = Queue(keys.queue_name, connection=redis.Redis.from_url(private.url), serializer=JSONSerializer)
            stored = set(queue.job_ids)
    finally:
        private.stop()

    assert len(acknowledged) == 100
    assert stored == set(acknowledged)


def test_sigterm_lets_the_request_in_hand_finish(redis_url: str, keys: RedisKeys) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONDUCTOR_")}
    env.update(
        CONDUCTOR_REDIS_URL=redis_url,
        CONDUCTOR_REDIS_PREFIX=keys.prefix,
        CONDUCTOR_WEBHOOK_HEADER=HEADER,
        CONDUCTOR_WEBHOOK_SECRET=SECRET,
    )
    process = subprocess.Popen(
        [CONDUCTOR, "serve", "--host", "127.0.0.1", "--port", str(port)], env=env, stderr=subprocess.DEVNULL
    )
    try:
        _wait_until_listening(port)
        body = json.dumps(event(77)).encode()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            head = (
                f"POST /webhooks/octopus HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"{HEADER}: {SECRET}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            connection.sendall(head.encode() + body[:100])
            time.sleep(0.3)
            process.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            connection.sendall(body[100:])
            answer = connection.recv(65536).decode()
        code = process.wait(15)
    finally:
        if process.poll() is None:
            process.kill()

    assert answer.startswith("HTTP/1.1 202"), answer
    # uvicorn finishes what it has in hand, then ends by the signal it was sent.
    assert code in (0, -signal.SIGTERM)
    queue = Queue(keys.queue_name, connection=redis.Redis.from_url(redis_url), serializer=JSONSerializer)
    assert queue.job_ids == [keys.job_id("Events-77")]


def _wait_until_listening(port: int) -> None:
    deadline = time.monotonic() + 15
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


# --- fuzzing -----------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=20), children, max_size=5),
    max_leaves=30,
)


MANGLED_FIELDS = [
    "",
    "Payload",
    "Payload.Event",
    "Payload.Event.Id",
    "Payload.Event.Category",
    "Payload.Event.RelatedDocumentIds",
    "Payload.Event.Occurred",
    "Payload.Event.SpaceId",
    "Payload.TotalEventsInBatch",
]


@st.composite
def mangled_payloads(draw: st.DrawFn) -> bytes:
    """A real payload with one part replaced by something else: the shapes a broken or hostile sender makes."""
    body = load_webhook(draw(st.sampled_from(["deployment_failed_2023", "machine_added", "deployment_started_2019"])))
    target = draw(st.sampled_from(MANGLED_FIELDS))
    replacement = draw(json_values)
    if target == "":
        return json.dumps(replacement).encode()
    *path, last = target.split(".")
    node: Any = body
    for part in path:
        node = node[part]
    if draw(st.booleans()):
        node.pop(last, None)
    else:
        node[last] = replacement
    return json.dumps(body).encode()


bodies = st.one_of(st.binary(max_size=2000), json_values.map(lambda v: json.dumps(v).encode()), mangled_payloads())
# Printable ASCII without surrounding whitespace: what an HTTP client can put on the wire at all.
header_values = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80).map(str.strip)
content_types = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "text/plain",
        "",
        "application/x-www-form-urlencoded",
        "application/vnd.octopus+json",
        "multipart/form-data; boundary=x",
    ]
)


@pytest.fixture(scope="module")
def fuzz_target(redis_url: str) -> Iterator[tuple[str, redis.Redis, RedisKeys]]:
    with (
        redis_space(redis_url) as (connection, keys),
        serve_in_thread(create_app(make_settings(redis_url, keys, max_body_bytes=4096))) as url,
    ):
        yield url, connection, keys


@pytest.fixture(scope="module")
def redis_url() -> str:
    from tests.support.redis_space import test_redis_url

    return test_redis_url()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies, secret=st.one_of(st.just(SECRET), header_values), content_type=content_types)
def test_hostile_requests_get_a_clear_4xx_and_change_nothing(
    fuzz_target: tuple[str, redis.Redis, RedisKeys], body: bytes, secret: str, content_type: str
) -> None:
    url, connection, keys = fuzz_target
    before = _state(connection, keys)
    headers = {HEADER: secret, "Content-Type": content_type}

    response = httpx.post(f"{url}/webhooks/octopus", content=body, headers=headers, timeout=10)

    assert response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/json")
    if response.status_code >= 400:
        assert response.json()["message"]
        assert _state(connection, keys) == before


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=st.integers(min_value=4097, max_value=200_000))
def test_oversized_bodies_are_refused_whatever_their_size(
    fuzz_target: tuple[str, redis.Redis, RedisKeys], size: int
) -> None:
    url, connection, keys = fuzz_target
    before = _state(connection, keys)

    response = httpx.post(f"{url}/webhooks/octopus", content=b"{" + b" " * size + b"}", headers=AUTH, timeout=10)

    assert response.status_code == 413
    assert _state(connection, keys) == before


def _state(connection: redis.Redis, keys: RedisKeys) -> tuple[int, int]:
    queue = Queue(keys.queue_name, connection=connection, serializer=JSONSerializer)
    return queue.count, len(list(connection.scan_iter(match=f"{keys.prefix}:seen:*")))


# --- answers Redis could not confirm -----------------------------------------------------------------


def test_a_503_can_follow_an_event_redis_stored_and_its_next_delivery_is_a_duplicate(
    redis_url: str, keys: RedisKeys
) -> None:
    parts = urlsplit(redis_url)
    connection = redis.Redis.from_url(redis_url)
    with reply_holding_proxy(parts.hostname or "127.0.0.1", parts.port or 6379) as proxy:
        proxied = f"redis://127.0.0.1:{proxy.port}{parts.path}"
        with serve_in_thread(create_app(make_settings(proxied, keys, redis_timeout_seconds=0.5))) as url:
            assert post(url, event(8800)).status_code == 202  # connection and script in place
            proxy.holding.set()  # Redis runs the script; its answer is lost on the way back
            first = post(url, event(8801))
            stored_meanwhile = bool(connection.exists(keys.dedupe("Events-8801")))
            proxy.holding.clear()
            again = post(url, event(8801))

    assert first.status_code == 503
    assert "may or may not have been" in first.json()["message"]
    assert stored_meanwhile
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    queue = Queue(keys.queue_name, connection=connection, serializer=JSONSerializer)
    assert queue.job_ids == [keys.job_id("Events-8800"), keys.job_id("Events-8801")]


def test_without_the_replicas_it_requires_the_intake_is_not_ready_and_answers_503(
    redis_url: str, keys: RedisKeys
) -> None:
    # The test Redis has no replica: WAIT 1 never confirms.
    settings = make_settings(redis_url, keys, redis_replica_acks=1, redis_timeout_seconds=0.4)
    with serve_in_thread(create_app(settings)) as url:
        ready = httpx.get(f"{url}/readyz", timeout=10)
        answer = post(url, event(8900))

    assert ready.status_code == 503
    assert answer.status_code == 503
    assert answer.json()["error"] == "unavailable"
    assert "may or may not have been" in answer.json()["message"]


def test_serve_refuses_to_start_on_an_rq_whose_job_format_it_cannot_follow(
    redis_url: str, keys: RedisKeys, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def changed(self: EventQueue) -> None:
        raise RQFormatChanged("RQ's enqueue writes per-event values the template does not explain")

    monkeypatch.setattr(EventQueue, "_learn_template", changed)
    for name, value in {
        "CONDUCTOR_REDIS_URL": "redis://127.0.0.1:1/0",  # not even Redis is needed to refuse
        "CONDUCTOR_REDIS_PREFIX": keys.prefix,
        "CONDUCTOR_WEBHOOK_HEADER": HEADER,
        "CONDUCTOR_WEBHOOK_SECRET": SECRET,
    }.items():
        monkeypatch.setenv(name, value)

    code = cli.main(["serve", "--port", str(free_port())])

    assert code == 2
    message = capsys.readouterr().err
    assert f"RQ {rq.__version__} writes jobs in a format the conductor cannot follow" in message
    assert "install rq>=3.0,<4" in message
