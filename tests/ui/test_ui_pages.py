"""The web UI in a real browser: the runs list, a run's live graph, time travel, and the audited actions."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.wait import WebDriverWait
from support.cli import aether, write
from support.ui import TOKEN, Ui

APPROVAL: dict[str, Any] = {
    "apiVersion": "aether/v1",
    "kind": "Workflow",
    "metadata": {"name": "ui-approval", "labels": {"team": "web"}},
    "spec": {
        "entrypoint": "main",
        "templates": [
            {
                "dag": {
                    "name": "main",
                    "tasks": [
                        {"name": "prepare", "template": "say"},
                        {"name": "approve", "template": "wait", "dependencies": ["prepare"]},
                        {"name": "publish", "template": "say", "dependencies": ["approve"]},
                    ],
                }
            },
            {"task": {"name": "say", "executor": {"type": "echo"}}},
            {
                "task": {
                    "name": "wait",
                    "inputs": {"parameters": [{"name": "suspend", "value": True}]},
                    "executor": {"type": "echo"},
                }
            },
        ],
    },
}
"""prepare, then approve (suspends until resumed), then publish."""


def submit(ui: Ui, tmp_path: Path) -> str:
    done = aether("submit", str(write(tmp_path, "approval.json", APPROVAL)), "--nats", ui.nats)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def until(browser: WebDriver, condition: Callable[[WebDriver], Any], timeout: float = 15) -> Any:
    """What `condition` returns once it is true; a node not drawn yet (AssertionError) or redrawn while it
    was read (StaleElementReferenceException) is waited for too."""
    waiting = (AssertionError, StaleElementReferenceException)
    return WebDriverWait(browser, timeout, 0.05, ignored_exceptions=waiting).until(condition)


def node(browser: WebDriver, node_id: str) -> WebElement:
    return browser.find_element(By.CSS_SELECTOR, f'#graph .node[data-id="{node_id}"]')


def _read(browser: WebDriver, node_id: str, script: str) -> str:
    """Read a drawn node in one step: the page redraws its graph whenever it likes."""
    found = browser.execute_script(
        f"const box = document.querySelector(`#graph .node[data-id='${{arguments[0]}}']`); return box && {script};",
        node_id,
    )
    assert found is not None, f"no node {node_id!r} drawn"
    return str(found)


def phase_of(browser: WebDriver, node_id: str) -> str:
    return _read(browser, node_id, "box.dataset.phase")


def fill_of(browser: WebDriver, node_id: str) -> str:
    return _read(browser, node_id, "box.querySelector('rect').getAttribute('fill')")


def open_run(
    browser: WebDriver, ui: Ui, run_id: str, *, token: str = "", node_id: str = "approve", phase: str = "Suspended"
) -> None:
    """The run's page, with `token` typed in, once the node `node_id` is drawn in `phase`."""
    browser.get(f"{ui.web}/runs/{run_id}")
    field = browser.find_element(By.ID, "token")
    field.clear()
    field.send_keys(token + Keys.TAB)
    until(browser, lambda b: phase_of(b, node_id) == phase)


def act(browser: WebDriver, button: str, reason: str, payload: str = "") -> str:
    """Click an action, answer its dialog as `ana`, and return the notice the page shows."""
    browser.find_element(By.ID, button).click()
    until(browser, lambda b: b.find_element(By.ID, "ask").is_displayed())
    form = browser.find_element(By.ID, "ask-form")
    actor = form.find_element(By.NAME, "actor")
    actor.clear()  # the page remembers the last name given
    actor.send_keys("ana")
    form.find_element(By.NAME, "reason").send_keys(reason)
    if payload:
        field = form.find_element(By.NAME, "payload")
        field.clear()
        field.send_keys(payload)
    browser.find_element(By.ID, "ask-ok").click()
    return str(until(browser, lambda b: b.find_element(By.ID, "notice").text))


def audit(ui: Ui, run_id: str) -> list[dict[str, Any]]:
    done = aether("audit", "--run", run_id, "--json", "--nats", ui.nats)
    assert done.returncode == 0, done.stderr
    entries: list[dict[str, Any]] = json.loads(done.stdout)
    return entries


def status(ui: Ui, run_id: str) -> str:
    done = aether("get", run_id, "--json", "--nats", ui.nats)
    assert done.returncode == 0, done.stderr
    return str(json.loads(done.stdout)["status"])


def test_the_runs_list_shows_a_run_submitted_while_it_is_open(
    served_ui: Ui, browser: WebDriver, tmp_path: Path
) -> None:
    browser.get(f"{served_ui.web}/?label=team%3Dweb")
    until(browser, lambda b: "on" in (b.find_element(By.ID, "live").get_attribute("class") or ""))
    run_id = submit(served_ui, tmp_path)
    row = until(browser, lambda b: b.find_elements(By.CSS_SELECTOR, f'#runs tr[data-run="{run_id}"]'))[0]
    assert "ui-approval" in row.text
    until(browser, lambda b: "1 waiting" in b.find_element(By.CSS_SELECTOR, f'#runs tr[data-run="{run_id}"]').text)


def test_the_run_page_draws_every_task_colours_them_live_and_resumes_audited(
    served_ui: Ui, browser: WebDriver, tmp_path: Path
) -> None:
    run_id = submit(served_ui, tmp_path)
    open_run(browser, served_ui, run_id, token=TOKEN)
    drawn = set(browser.execute_script("return [...document.querySelectorAll('#graph .node')].map(n => n.dataset.id)"))
    assert drawn == {"prepare", "approve", "publish"}
    assert phase_of(browser, "prepare") == "Succeeded" and phase_of(browser, "publish") == ""
    waiting = fill_of(browser, "approve")

    node(browser, "approve").click()
    until(browser, lambda b: f"{run_id}-" in b.find_element(By.ID, "task").text)  # the task's own run id
    assert "done" in act(browser, "resume", "looks good", '{"__resumed": true}')

    until(browser, lambda b: phase_of(b, "publish") == "Succeeded")
    assert phase_of(browser, "approve") == "Succeeded"
    assert fill_of(browser, "approve") != waiting
    assert fill_of(browser, "approve") == fill_of(browser, "prepare")
    until(browser, lambda b: "Succeeded" in b.find_element(By.ID, "status").text)
    resumed = [e for e in audit(served_ui, run_id) if e["command"] == "resume"]
    assert [(e["actor"], e["reason"]) for e in resumed] == [("user:ana", "looks good")]

    # Time travel: the slider back to the fourth event shows the run before approve was even created.
    slider = browser.find_element(By.ID, "slider")
    until(browser, lambda b: int(slider.get_attribute("max") or 0) > 10)
    browser.execute_script("arguments[0].value = 4; arguments[0].dispatchEvent(new Event('input'))", slider)
    until(browser, lambda b: phase_of(b, "approve") == "")
    assert phase_of(browser, "publish") == ""
    assert "as it was after event 4" in browser.find_element(By.ID, "moment").text
    browser.find_element(By.ID, "now").click()
    until(browser, lambda b: phase_of(b, "publish") == "Succeeded")


def test_cancel_from_the_page_is_audited(served_ui: Ui, browser: WebDriver, tmp_path: Path) -> None:
    run_id = submit(served_ui, tmp_path)
    open_run(browser, served_ui, run_id, token=TOKEN)
    assert "done" in act(browser, "cancel", "not today")
    until(browser, lambda b: "Cancelled" in b.find_element(By.ID, "status").text)
    cancelled = [e for e in audit(served_ui, run_id) if e["command"] == "cancel"]
    assert [(e["actor"], e["reason"]) for e in cancelled] == [("user:ana", "not today")]


def test_actions_are_refused_without_the_token(
    served_ui: Ui, tokenless_ui: Ui, browser: WebDriver, tmp_path: Path
) -> None:
    run_id = submit(served_ui, tmp_path)
    open_run(browser, served_ui, run_id, token="wrong")
    assert "needs the token" in act(browser, "cancel", "no right to")
    assert status(served_ui, run_id) == "Running"
    assert not [e for e in audit(served_ui, run_id) if e["command"] == "cancel"]

    browser.get(f"{tokenless_ui.web}/")
    until(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "#runs tbody tr"))
    request = urllib.request.Request(
        f"{tokenless_ui.web}/api/v1/runs.cancel",
        data=json.dumps({"runID": run_id, "reason": "r"}).encode(),
        headers={"Authorization": "Bearer anything"},
        method="POST",
    )
    try:
        urllib.request.urlopen(request, timeout=10)
    except urllib.error.HTTPError as refused:
        assert refused.code == 403 and "actions are off" in json.loads(refused.read())["error"]["message"]
    else:
        raise AssertionError("a server without a token took an action")


def test_the_workers_and_crons_pages(served_ui: Ui, browser: WebDriver, tmp_path: Path) -> None:
    browser.get(f"{served_ui.web}/workers")
    workers = until(browser, lambda b: b.find_element(By.ID, "content").text)
    assert "shell" in workers and "s ago" in workers

    cron = {
        "apiVersion": "aether/v1",
        "kind": "CronWorkflow",
        "metadata": {"name": "ui-hourly"},
        "spec": {
            "schedule": "@hourly",
            "workflowSpec": {
                "entrypoint": "main",
                "templates": [{"task": {"name": "main", "executor": {"type": "echo"}}}],
            },
        },
    }
    done = aether("cron", "submit", str(write(tmp_path, "cron.json", cron)), "--nats", served_ui.nats)
    assert done.returncode == 0, done.stderr
    cron_id = done.stdout.strip()
    assert until(
        browser,
        lambda _: cron_id in json.loads(urllib.request.urlopen(f"{served_ui.web}/api/crons/next").read())["next"],
    )
    browser.get(f"{served_ui.web}/crons")

    def row(b: WebDriver) -> list[str]:
        """The cron's row, read in one step: the page reads the crons again every few seconds."""
        cells: list[str] = b.execute_script(
            "const row = [...document.querySelectorAll('#content tr')]"
            ".find(r => r.cells[1]?.textContent === 'ui-hourly');"
            "return row ? [...row.cells].map(c => c.textContent.trim()) : [];"
        )
        return cells

    cells = until(browser, lambda b: (cells := row(b)) and cells[4] and cells)  # once scheduled: its next fire
    assert cells[2] == "@hourly UTC" and cells[3] == "scheduled"


def test_a_task_panel_shows_what_the_task_printed(served_ui: Ui, browser: WebDriver, tmp_path: Path) -> None:
    shell = {
        "apiVersion": "aether/v1",
        "kind": "Workflow",
        "metadata": {"name": "ui-prints"},
        "spec": {
            "entrypoint": "speak",
            "templates": [
                {
                    "task": {
                        "name": "speak",
                        "executor": {"type": "shell", "config": {"command": "echo said-out; echo said-err >&2"}},
                    }
                }
            ],
        },
    }
    done = aether("submit", str(write(tmp_path, "shell.json", shell)), "--nats", served_ui.nats)
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.strip()
    browser.get(f"{served_ui.web}/runs/{run_id}")
    until(browser, lambda b: phase_of(b, "speak") == "Succeeded")
    node(browser, "speak").click()
    until(browser, lambda b: "said-err" in b.find_element(By.ID, "log-lines").text)
    stderr = browser.find_element(By.CSS_SELECTOR, "#log-lines .stderr").text
    stdout = browser.find_element(By.CSS_SELECTOR, "#log-lines .stdout").text
    assert (stdout.strip(), stderr.strip()) == ("said-out", "said-err")


def test_retry_from_the_page_runs_the_failed_step_again(served_ui: Ui, browser: WebDriver, tmp_path: Path) -> None:
    flaky = {
        "apiVersion": "aether/v1",
        "kind": "Workflow",
        "metadata": {"name": "ui-flaky"},
        "spec": {
            "entrypoint": "main",
            "templates": [
                {
                    "task": {
                        "name": "main",
                        "inputs": {"parameters": [{"name": "fail-count", "value": 1}]},
                        "executor": {"type": "echo"},
                    }
                }
            ],
        },
    }
    done = aether("submit", str(write(tmp_path, "flaky.json", flaky)), "--nats", served_ui.nats)
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.strip()
    open_run(browser, served_ui, run_id, token=TOKEN, node_id="main", phase="Failed")
    until(browser, lambda b: b.find_element(By.ID, "retry").is_enabled())
    assert "done" in act(browser, "retry", "flaky network")
    until(browser, lambda b: phase_of(b, "main") == "Succeeded")
    retried = [e for e in audit(served_ui, run_id) if e["command"] == "retry"]
    assert [(e["actor"], e["reason"]) for e in retried] == [("user:ana", "flaky network")]
