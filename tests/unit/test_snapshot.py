"""A run rehydrated from a snapshot plus the tail is the run folded from its whole history."""

from __future__ import annotations

from typing import Any

import orjson
from support.driver import Driver

from aether_es.projections import snapshot
from aether_es.projections.run_state import apply, fold

DOCUMENT: dict[str, Any] = {
    "apiVersion": "aether/v1",
    "kind": "Workflow",
    "metadata": {"name": "snap"},
    "spec": {
        "entrypoint": "main",
        "templates": [
            {
                "dag": {
                    "name": "main",
                    "tasks": [
                        {"name": "a", "template": "echo", "arguments": {"parameters": [{"name": "x", "value": 1}]}},
                        {
                            "name": "b",
                            "template": "erroring",
                            "dependencies": ["a"],
                            "arguments": {"parameters": [{"name": "fail-count", "value": 1}]},
                            "retry": {"limit": 2},
                        },
                        {"name": "fan", "template": "fan", "dependencies": ["a"]},
                        {
                            "name": "ask",
                            "template": "echo",
                            "dependencies": ["b"],
                            "arguments": {"parameters": [{"name": "suspend", "value": True}]},
                        },
                    ],
                }
            },
            {
                "loop": {
                    "name": "fan",
                    "items": [1, 2, 3],
                    "body": "echo",
                    "arguments": {"parameters": [{"name": "item", "value": "{{iterator.item}}"}]},
                }
            },
            {"task": {"name": "echo", "executor": {"type": "echo"}}},
            {"task": {"name": "erroring", "executor": {"type": "echo"}, "phaseConditions": {"error": "code == 2"}}},
        ],
    },
}


def _history() -> Driver:
    driver = Driver()
    driver.submit(DOCUMENT)
    driver.run()
    suspended = driver.suspended()
    assert suspended
    driver.resume(suspended[0], {"__resumed": True, "note": "ok"})
    driver.run()
    assert driver.view().phase == "Succeeded"
    return driver


def test_snapshot_plus_tail_equals_the_whole_fold_at_every_point() -> None:
    history = _history().history
    whole = fold(history)
    for cut in range(1, len(history) + 1):
        state = fold(history[:cut])
        restored = snapshot.decode_snapshot(snapshot.encode_snapshot(state))
        assert restored is not None
        assert restored == state  # the decider's derived index is not compared
        for env in history[cut:]:
            apply(restored, env)
        assert restored.to_dict() == whole.to_dict()
        assert restored == whole


def test_a_snapshot_of_another_shape_is_not_read() -> None:
    state = fold(_history().history)
    data = orjson.loads(snapshot.encode_snapshot(state))
    data["shape"] = "0000"
    assert snapshot.decode_snapshot(orjson.dumps(data)) is None
