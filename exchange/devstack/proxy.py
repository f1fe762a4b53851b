"""A TCP proxy in front of the chain RPC that can refuse everything (an RPC outage) and come
back: the settlement tests and the chaos soak (bench/chaos.py) cut the chain with it."""

from __future__ import annotations

import socket
import threading
from contextlib import suppress


class Proxy:
    """A TCP proxy to the chain RPC that can refuse everything (an RPC outage) and come back."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.blocked = False
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def block(self) -> None:
        with self._lock:
            self.blocked = True
            for sock in self._sockets:
                self._shut(sock)
            self._sockets.clear()

    def unblock(self) -> None:
        self.blocked = False

    def close(self) -> None:
        self._closed = True
        self.block()
        self.server.close()

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        with suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if self.blocked:
                self._shut(client)
                continue
            try:
                upstream = socket.create_connection(self.upstream)
            except OSError:
                self._shut(client)
                continue
            with self._lock:
                self._sockets |= {client, upstream}
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._sockets.discard(src)
                self._sockets.discard(dst)
            self._shut(src)
            self._shut(dst)
