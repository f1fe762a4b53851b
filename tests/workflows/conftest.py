"""Helpers for the settlement integration tests: the real worker wiring in-process (or as a
process), the database from async tests, a TCP proxy to cut the chain RPC, and histories."""

from __future__ import annotations

import json
import os
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer

from tests.async_db import ClosingExecutor
from workers.temporal import WORKFLOWS, build_worker, ensure_workflows
from workflows.chain import types as chain_types
from workflows.settlement import types as settlement_types

HISTORIES = Path(__file__).parent / "histories"


@asynccontextmanager
async def running_worker(client: Client, queue: str) -> AsyncIterator[None]:
    """workers.temporal's worker, in-process, plus its scheduler and chain watcher."""
    executor = ClosingExecutor(max_workers=8, thread_name_prefix="activity")
    try:
        async with build_worker(client, executor, task_queue=queue):
            await ensure_workflows(client, task_queue=queue)
            yield
    finally:
        executor.shutdown(wait=True)


async def stop_singletons(client: Client, prefix: str) -> None:
    for workflow_id in (settlement_types.SCHEDULER_ID, chain_types.WATCHER_ID):
        with suppress(Exception):  # already gone
            await client.get_workflow_handle(prefix + workflow_id).terminate()


async def check_histories(
    client: Client, workflow_ids: list[str], record_as: str = "", record_first: int = 4
) -> int:
    """Replay each workflow's latest run with the current code (raises on non-determinism);
    with CLEARWAY_RECORD_HISTORIES=1, also save the first ``record_first`` under histories/
    (as ``<record_as>-<id without the test's prefix>.json``) for test_replay."""
    histories: list[WorkflowHistory] = []
    for workflow_id in workflow_ids:
        histories.append(await client.get_workflow_handle(workflow_id).fetch_history())
    replayer = Replayer(workflows=list(WORKFLOWS))
    for history in histories:
        await replayer.replay_workflow(history)
    if record_as and os.environ.get("CLEARWAY_RECORD_HISTORIES"):
        HISTORIES.mkdir(exist_ok=True)
        for history, workflow_id in list(zip(histories, workflow_ids, strict=True))[:record_first]:
            kind = workflow_id.split("-", 1)[1]  # drop the test's prefix
            path = HISTORIES / f"{record_as}-{kind}.json"
            path.write_text(json.dumps(json.loads(history.to_json()), indent=1) + "\n")
    return len(histories)


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


@pytest.fixture
def rpc_proxy(anvil) -> Iterator[Proxy]:  # type: ignore[no-untyped-def]
    proxy = Proxy(anvil.port)
    yield proxy
    proxy.close()


@pytest.fixture
def names() -> tuple[str, str]:
    """(task queue, workflow id prefix), unique to the test."""
    tag = uuid.uuid4().hex[:10]
    return f"custody-{tag}", f"t{tag}-"
