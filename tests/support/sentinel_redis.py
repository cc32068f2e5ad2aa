"""A primary, its replica and three Sentinels, as real `redis-server` processes on ports of their own,
for a test that kills the primary and watches the failover."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import redis

from service.threaded_server import free_port

SERVICE = "mymaster"


class SentinelRedis:
    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed; the test script installs it")
        self.binary = binary
        self.directory = directory
        self.primary_port, self.replica_port = free_port(), free_port()
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.servers: dict[int, subprocess.Popen[bytes]] = {}
        self.sentinels: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def start(self) -> None:
        self.start_server(self.primary_port)
        self.start_server(self.replica_port, replica_of=self.primary_port)
        for port in self.sentinel_ports:
            config = self.directory / f"sentinel-{port}.conf"
            config.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.directory}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary_port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} 1000\n"
                f"sentinel failover-timeout {SERVICE} 5000\n"
                f"sentinel parallel-syncs {SERVICE} 1\n"
            )
            self.sentinels.append(subprocess.Popen([self.binary, str(config), "--sentinel"], stdout=subprocess.DEVNULL))
        self._wait("the replica to be in sync and known to every Sentinel", self._all_sentinels_see_a_replica)

    def start_server(self, port: int, *, replica_of: int | None = None) -> None:
        data = self.directory / str(port)
        data.mkdir(exist_ok=True)
        args = [self.binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data)]
        args += ["--save", "", "--appendonly", "no"]
        if replica_of is not None:
            args += ["--replicaof", "127.0.0.1", str(replica_of)]
        self.servers[port] = subprocess.Popen(args, stdout=subprocess.DEVNULL)
        self._wait(f"redis-server on {port}", lambda: _answers(port))

    def kill(self, port: int) -> None:
        process = self.servers.pop(port)
        process.kill()
        process.wait(10)

    def primary(self) -> int:
        client = redis.Redis(port=self.sentinel_ports[0], socket_timeout=1)
        address = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
        client.close()
        return int(address[1])

    def stop(self) -> None:
        for process in [*self.sentinels, *self.servers.values()]:
            process.kill()
        for process in [*self.sentinels, *self.servers.values()]:
            process.wait(10)
        self.sentinels.clear()
        self.servers.clear()

    def _all_sentinels_see_a_replica(self) -> bool:
        for port in self.sentinel_ports:
            client = redis.Redis(port=port, socket_timeout=1)
            try:
                replicas = client.sentinel_slaves(SERVICE)
            except redis.RedisError:
                return False
            finally:
                client.close()
            if not any("s_down" not in replica.get("flags", "") for replica in replicas):
                return False
        return True

    @staticmethod
    def _wait(what: str, probe: Callable[[], bool], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not probe():
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            time.sleep(0.1)


def _answers(port: int) -> bool:
    client = redis.Redis(port=port, socket_connect_timeout=0.2)
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False
    finally:
        client.close()
