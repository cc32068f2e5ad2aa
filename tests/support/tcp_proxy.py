"""A TCP proxy in front of Redis that can hold back Redis's replies: a command reaches Redis and runs, but
its answer never comes back, as when a network or a busy Redis delays it past the client's timeout."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress


class ReplyHoldingProxy:
    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.holding = threading.Event()
        self._closed = threading.Event()
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    def close(self) -> None:
        self._closed.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._target)
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, replies: bool) -> None:
        try:
            while data := source.recv(65536):
                if replies and self.holding.is_set():
                    continue  # the answer is lost on the way back
                sink.sendall(data)
        except OSError:
            return
        finally:
            for end in (source, sink):
                with suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)


@contextmanager
def reply_holding_proxy(host: str, port: int) -> Iterator[ReplyHoldingProxy]:
    proxy = ReplyHoldingProxy(host, port)
    try:
        yield proxy
    finally:
        proxy.close()
