"""The web UI's server over plain HTTP: health, readiness, metrics, and clear errors for bad requests."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from support.cli import aether
from support.ui import Ui


def fetch(url: str, body: dict[str, Any] | None = None) -> tuple[int, str]:
    data = json.dumps(body).encode() if body is not None else None
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()


def test_health_readiness_and_metrics(tokenless_ui: Ui) -> None:
    assert fetch(f"{tokenless_ui.web}/healthz") == (200, "ok\n")
    assert fetch(f"{tokenless_ui.web}/readyz") == (200, "ready\n")
    status, text = fetch(f"{tokenless_ui.web}/metrics")
    assert status == 200 and "aether_runs_started_total" in text and "aether_queue_depth" in text


def test_bad_requests_get_an_error_naming_the_cause(tokenless_ui: Ui) -> None:
    status, text = fetch(f"{tokenless_ui.web}/api/v1/runs.purge", {})
    assert status == 404 and "not an operation of the web API" in json.loads(text)["error"]["message"]
    status, text = fetch(f"{tokenless_ui.web}/api/v1/runs.get", {"runId": "x"})
    assert status == 400 and json.loads(text)["error"]["field"] == "runId"
    status, text = fetch(f"{tokenless_ui.web}/api/runs/nothing/graph")
    assert status == 404 and '"nothing" not found' in json.loads(text)["error"]["message"]
    status, text = fetch(f"{tokenless_ui.web}/api/runs/nothing/graph?at=first")
    assert status == 400 and json.loads(text)["error"]["field"] == "at"


def test_serve_refuses_an_address_it_cannot_read() -> None:
    done = aether("serve", "--http", "localhost:http")
    assert done.returncode == 2
    assert "--http 'localhost:http': expected HOST:PORT or PORT" in done.stderr
