"""`aether-es cron ...` against a running system, as an operator uses it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from support.cli import ROOT, aether

from aether_es.adapters.cron_croniter import ManualCronScheduler
from aether_es.adapters.nats.server import EmbeddedNatsServer
from aether_es.api.service import start_api
from aether_es.runtime.stack import StackOptions, open_stack


def document(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "aether/v1",
        "kind": "CronWorkflow",
        "metadata": {"name": "hourly-report"},
        "spec": {
            "schedule": "@hourly",
            **spec,
            "workflowSpec": {
                "entrypoint": "main",
                "templates": [{"task": {"name": "main", "executor": {"type": "echo"}}}],
            },
        },
    }


async def test_cron_commands(nats_server: EmbeddedNatsServer, tmp_path: Path) -> None:
    url = nats_server.url
    stack = await open_stack(StackOptions(nats_url=url, state_dir=tmp_path, cron_scheduler=ManualCronScheduler()))
    api = await start_api(stack)  # the commands are requests to the serving engine's API

    async def cron(*args: str) -> subprocess.CompletedProcess[str]:
        """The command in a thread, so this process's engine answers it meanwhile."""
        return await asyncio.to_thread(aether, "cron", *args, "--nats", url)

    try:
        spec = tmp_path / "cron.json"
        spec.write_text(json.dumps(document()))
        submitted = await cron("submit", str(spec), "--json")
        assert submitted.returncode == 0, submitted.stderr
        cron_id = json.loads(submitted.stdout)["cronWorkflowID"]

        listed = await cron("list")
        assert listed.returncode == 0 and cron_id in listed.stdout and "@hourly" in listed.stdout

        await stack.engine.cron().fire(cron_id, datetime(2026, 1, 1, 9, tzinfo=UTC))
        shown = await cron("get", cron_id, "--json")
        assert shown.returncode == 0
        view = json.loads(shown.stdout)
        assert view["status"]["lastScheduleTime"] == "2026-01-01T09:00:00.000Z" and len(view["runs"]) == 1

        spec.write_text(json.dumps(document(suspend=True)))
        assert (await cron("update", cron_id, str(spec))).returncode == 0
        changed = document()
        changed["spec"]["workflowSpec"]["entrypoint"] = "other"
        changed["spec"]["workflowSpec"]["templates"][0]["task"]["name"] = "other"
        spec.write_text(json.dumps(changed))
        refused = await cron("update", cron_id, str(spec))
        assert refused.returncode == 2 and "WorkflowSpec is immutable" in refused.stderr

        assert (await cron("delete", cron_id)).returncode == 0
        gone = await cron("get", cron_id)
        assert gone.returncode == 3 and f'cron workflow "{cron_id}" not found' in gone.stderr
        assert (await cron("list")).stdout.strip() == "no cron workflows"
    finally:
        await api.stop()
        await stack.close()


def test_cron_needs_a_url_and_a_valid_document(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(document(schedule="sometimes")))
    invalid = aether("cron", "submit", str(bad), "--nats", "nats://127.0.0.1:1")
    assert invalid.returncode == 2 and "must be a 5-field cron expression" in invalid.stderr
    no_url = subprocess.run(
        [sys.executable, "-m", "aether_es.cli.main", "cron", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "AETHER_NATS_URL"},
    )
    assert no_url.returncode == 2 and "no NATS URL" in no_url.stderr
