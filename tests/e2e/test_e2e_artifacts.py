"""Artifacts pass from one task to the next through a real repository: the NATS Object Store, and a folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aether_es.adapters.nats.server import EmbeddedNatsServer
from aether_es.ports.wire import TaskAssignment, TaskResult, WireParameter
from aether_es.runtime.stack import StackOptions, open_stack


class Writer:
    """Writes a report file into its workdir and returns it as the output artifact `report`."""

    async def execute(self, assignment: TaskAssignment) -> TaskResult:
        text = next(str(p.value) for p in assignment.inputs if p.name == "text")
        (Path(assignment.workdir) / "report.txt").write_text(text)
        return TaskResult(artifacts=[{"name": "report", "path": "report.txt"}])


class Reader:
    """Reads its downloaded input artifact `report` and returns the text as the parameter `seen`."""

    async def execute(self, assignment: TaskAssignment) -> TaskResult:
        report = next(a for a in assignment.artifacts if a.name == "report")
        return TaskResult(parameters=[WireParameter(name="seen", value=Path(report.path).read_text())])


def workflow(source: dict[str, Any] | None) -> dict[str, Any]:
    output: dict[str, Any] = {"name": "report"}
    if source is not None:
        output["source"] = source
    return {
        "apiVersion": "aether/v1",
        "kind": "Workflow",
        "metadata": {"name": "artifact-relay"},
        "spec": {
            "entrypoint": "main",
            "templates": [
                {
                    "dag": {
                        "name": "main",
                        "tasks": [
                            {"name": "write", "template": "writer"},
                            {
                                "name": "read",
                                "template": "reader",
                                "dependencies": ["write"],
                                "arguments": {
                                    "artifacts": [{"name": "report", "from": "tasks.write.outputs.artifacts.report"}]
                                },
                            },
                        ],
                    }
                },
                {
                    "task": {
                        "name": "writer",
                        "inputs": {"parameters": [{"name": "text", "value": "quarterly numbers"}]},
                        "executor": {"type": "writer"},
                        "outputs": {"artifacts": [output]},
                    }
                },
                {
                    "task": {
                        "name": "reader",
                        "inputs": {"artifacts": [{"name": "report"}]},
                        "executor": {"type": "reader"},
                    }
                },
            ],
        },
    }


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        (None, "nats"),  # undeclared source: the default repository, the NATS Object Store
        ({"type": "nats", "config": {"key": "reports/q3.txt"}}, "nats"),
        ({"type": "local", "config": {"path": "reports/q3.txt"}}, "local"),
    ],
)
async def test_an_artifact_flows_downstream(
    nats_server: EmbeddedNatsServer, tmp_path: Path, source: dict[str, Any] | None, kind: str
) -> None:
    stack = await open_stack(
        StackOptions(nats_url=nats_server.url, state_dir=tmp_path, executors={"writer": Writer(), "reader": Reader()})
    )
    try:
        run_id = await stack.engine.submit(workflow(source))
        view = await stack.engine.wait(run_id, timeout=20)
    finally:
        await stack.close()
    assert view["status"] == "Succeeded", view
    tasks = {t["taskName"]: t for t in view["tasks"]}
    stored = tasks["write"]["outputs"]["artifacts"][0]
    assert stored["name"] == "report" and stored["source"]["type"] == kind
    assert tasks["read"]["inputs"]["artifacts"][0]["source"] == stored["source"]
    assert {p["name"]: p["value"] for p in tasks["read"]["outputs"]["parameters"]}["seen"] == "quarterly numbers"
    if kind == "local":
        assert (tmp_path / "artifacts" / "reports" / "q3.txt").read_text() == "quarterly numbers"


async def test_a_missing_input_artifact_errors_the_task(nats_server: EmbeddedNatsServer, tmp_path: Path) -> None:
    document = workflow({"type": "nats", "config": {"key": "x"}})
    document["spec"]["templates"][0]["dag"]["tasks"][1]["arguments"]["artifacts"][0]["from"] = (
        "tasks.nope.outputs.artifacts.report"
    )
    stack = await open_stack(
        StackOptions(nats_url=nats_server.url, state_dir=tmp_path, executors={"writer": Writer(), "reader": Reader()})
    )
    try:
        view = await stack.engine.wait(await stack.engine.submit(document), timeout=20)
    finally:
        await stack.close()
    read = next(t for t in view["tasks"] if t["taskName"] == "read")
    assert read["status"] == "Error" and read["message"] == "input artifact 'report' has no source"
