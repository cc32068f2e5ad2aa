"""A small HTTP/1.1 load generator on asyncio streams (keep-alive connections, no pipelining).

Two modes:

- `open_loop`: requests are *due* at a fixed rate, whether or not earlier answers came back; a request's
  latency runs from the moment it was due, so a server that falls behind is charged for the queueing it
  causes (no coordinated omission). This is the fixed-offered-load measurement that wrk2 would give.
- `closed_loop`: `connections` clients each send the next request as soon as the last one is answered,
  until `count` requests are done (the wrk model, used where every answer must be checked).

Both keep every request's number, status and latency, so a caller can check each 2xx against Redis.
Only loopback addresses are accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

MakeBody = Callable[[int], bytes]


@dataclass
class Answer:
    number: int
    status: int
    latency: float  # seconds
    body: bytes = b""


@dataclass
class LoadResult:
    answers: list[Answer] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def ok(self) -> list[Answer]:
        return [answer for answer in self.answers if 200 <= answer.status < 300]

    @property
    def throughput(self) -> float:
        return len(self.answers) / self.elapsed if self.elapsed else 0.0


def _check_loopback(host: str) -> None:
    if host == "localhost":
        return
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"{host} is not a loopback address: the benchmarks send traffic only to this machine")


class _Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, head: bytes, body: bytes, *, keep_body: bool) -> tuple[int, bytes]:
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(head + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        await self.writer.drain()
        header = await self.reader.readuntil(b"\r\n\r\n")
        status = int(header[9:12])
        length = 0
        close = False
        for line in header.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            lowered = name.strip().lower()
            if lowered == b"content-length":
                length = int(value.strip())
            elif lowered == b"connection" and value.strip().lower() == b"close":
                close = True
        payload = await self.reader.readexactly(length) if length else b""
        if close:
            await self.close()
        return status, payload if keep_body else b""

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


def _head(host: str, port: int, path: str, headers: Mapping[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n").encode()


async def _serve_numbers(
    numbers: asyncio.Queue[tuple[int, float] | None],
    connection: _Connection,
    head: bytes,
    make_body: MakeBody,
    result: LoadResult,
    keep_body: bool,
) -> None:
    while True:
        item = await numbers.get()
        if item is None:
            await connection.close()
            return
        number, due = item
        body = make_body(number)
        try:
            status, payload = await connection.request(head, body, keep_body=keep_body)
        except (OSError, asyncio.IncompleteReadError, ValueError) as error:
            result.errors.append(f"{number}: {type(error).__name__}: {error}")
            await connection.close()
            continue
        result.answers.append(Answer(number, status, time.perf_counter() - due, payload))


async def open_loop(
    *,
    host: str,
    port: int,
    path: str,
    headers: Mapping[str, str],
    make_body: MakeBody,
    rate: float,
    count: int,
    connections: int = 64,
    first_number: int = 1,
    keep_body: bool = False,
) -> LoadResult:
    """`count` requests due at `rate` per second, served by up to `connections` keep-alive connections."""
    _check_loopback(host)
    result = LoadResult()
    numbers: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
    head = _head(host, port, path, headers)
    clients = [
        asyncio.create_task(_serve_numbers(numbers, _Connection(host, port), head, make_body, result, keep_body))
        for _ in range(connections)
    ]
    started = time.perf_counter()
    for index in range(count):
        due = started + index / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        numbers.put_nowait((first_number + index, due))
    for _ in clients:
        numbers.put_nowait(None)
    await asyncio.gather(*clients)
    result.elapsed = time.perf_counter() - started
    return result


async def closed_loop(
    *,
    host: str,
    port: int,
    path: str,
    headers: Mapping[str, str],
    make_body: MakeBody,
    count: int,
    connections: int = 32,
    first_number: int = 1,
    keep_body: bool = False,
) -> LoadResult:
    """`count` requests sent back to back by `connections` clients; latency from each request's send."""
    _check_loopback(host)
    result = LoadResult()
    head = _head(host, port, path, headers)
    next_number = first_number
    last_number = first_number + count

    async def client() -> None:
        nonlocal next_number
        connection = _Connection(host, port)
        while next_number < last_number:
            number = next_number
            next_number += 1
            sent = time.perf_counter()
            try:
                status, payload = await connection.request(head, make_body(number), keep_body=keep_body)
            except (OSError, asyncio.IncompleteReadError, ValueError) as error:
                result.errors.append(f"{number}: {type(error).__name__}: {error}")
                await connection.close()
                continue
            result.answers.append(Answer(number, status, time.perf_counter() - sent, payload))
        await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(connections)))
    result.elapsed = time.perf_counter() - started
    return result
