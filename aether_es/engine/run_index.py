"""What the decider derives from a run's document and history and keeps to save recomputing it.

None of it is folded from events or written to a snapshot: a run loaded afresh starts with an empty index,
and each part is rebuilt from the document and the recorded state the first time it is needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aether_es.engine.dag_index import DagIndex, Waiting
from aether_es.projections.run_state import RunState


@dataclass(slots=True)
class RunIndex:
    dags: dict[str, DagIndex] = field(default_factory=dict)
    """Per DAG template name: its nodes by name, their order and what its entrypoints reach."""
    waiting: dict[str, Waiting] = field(default_factory=dict)
    """Per DAG container id: its nodes with no record yet, parked under what holds them back."""
    loop_items: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Per loop container id: each iteration's parameters, expanded once however often the loop refills."""
    workflow_args: dict[str, object] | None = None
    """`workflow.parameters.<name>` of the run's arguments."""

    def forget_waiting(self, container_id: str) -> None:
        """A node of this DAG container lost its record (a retry supersedes it): rebuild what waits there."""
        self.waiting.pop(container_id, None)


def run_index(state: RunState) -> RunIndex:
    """The run's index, made on first use."""
    index = state.derived
    if not isinstance(index, RunIndex):
        index = state.derived = RunIndex()
    return index
