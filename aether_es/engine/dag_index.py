"""What a DAG's shape tells the scheduler without scanning it: nodes by name, document order, the nodes
its entrypoints reach, and, per DAG container, which nodes still wait and on what.

A waiting node is parked under the first dependency that held it back; a completion re-examines only the
nodes parked under dependencies that have a record, so a 1,000-node chain or fan-in costs linear time, not
a scan of every node per completion. All of it is derived from the document and the recorded state, kept in
the run's index (`run_index.py`), and rebuilt on demand after a reload.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from aether_es.model.documents import Dag, Task


@dataclass(frozen=True, slots=True)
class DagIndex:
    nodes: dict[str, Task]
    position: dict[str, int]
    allowed: frozenset[str] | None
    """Nodes reachable downstream from `entrypoints`; None when every node is."""

    @staticmethod
    def of(dag: Dag) -> DagIndex:
        return DagIndex(
            {node.name: node for node in dag.tasks},
            {node.name: i for i, node in enumerate(dag.tasks)},
            _reachable(dag),
        )


def _reachable(dag: Dag) -> frozenset[str] | None:
    if not dag.entrypoints:
        return None
    dependents: dict[str, list[str]] = {}
    for node in dag.tasks:
        for dep in node.dependencies:
            dependents.setdefault(dep, []).append(node.name)
    seen = set(dag.entrypoints)
    queue = deque(dag.entrypoints)
    while queue:
        for nxt in dependents.get(queue.popleft(), ()):
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return frozenset(seen)


@dataclass(slots=True)
class Waiting:
    """One DAG container's nodes that have no record yet."""

    fresh: list[Task]
    """Not examined since they were (re)queued."""
    on_recorded: dict[str, list[Task]] = field(default_factory=dict)
    """Parked under a dependency that has a record (it may be satisfied by now)."""
    on_unrecorded: dict[str, list[Task]] = field(default_factory=dict)
    """Parked under a dependency with no record yet (it cannot be satisfied)."""
    held: deque[Task] = field(default_factory=deque)
    """Ready, in document order, but over the room the container had (`Limits.active_per_scope`) or the
    decision's budget: taken first, without examining them again."""

    @staticmethod
    def of(dag: Dag, index: DagIndex, recorded: dict[str, str]) -> Waiting:
        allowed = index.allowed
        return Waiting(
            [node for node in dag.tasks if (allowed is None or node.name in allowed) and node.name not in recorded]
        )

    def ready(
        self, index: DagIndex, recorded: dict[str, str], satisfied: Callable[[str], bool], room: int
    ) -> list[Task]:
        """Take up to `room` nodes whose dependencies are all satisfied, in document order (nodes held back
        for want of room first); park the ones not ready, hold the ones over `room`."""
        examine, self.fresh = self.fresh, []
        for dep in [dep for dep in self.on_recorded if satisfied(dep)]:
            examine.extend(self.on_recorded.pop(dep))
        ready: list[Task] = []
        for node in examine:
            if node.name in recorded:
                continue
            blocker = next((dep for dep in node.dependencies if not satisfied(dep)), None)
            if blocker is None:
                ready.append(node)
            else:
                parked = self.on_recorded if blocker in recorded else self.on_unrecorded
                parked.setdefault(blocker, []).append(node)
        ready.sort(key=lambda node: index.position[node.name])
        if not self.held and len(ready) <= room:
            return ready
        self.held.extend(ready)
        taken: list[Task] = []
        while self.held and len(taken) < room:
            node = self.held.popleft()
            if node.name not in recorded:
                taken.append(node)
        return taken

    def recorded(self, name: str) -> None:
        """`name` got its record: what waited on it may be satisfied once it finishes."""
        moved = self.on_unrecorded.pop(name, None)
        if moved:
            self.on_recorded.setdefault(name, []).extend(moved)

    def requeue(self, nodes: list[Task]) -> None:
        """Ready nodes a decision could not create within its budget: the next decision takes them first."""
        self.held.extendleft(reversed(nodes))
