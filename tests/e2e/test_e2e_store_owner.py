"""One store, one owner: the README's commands on one folder, a second `serve` refused, `kill -9` of `serve`.

Real `aether-es` processes; nats-server processes are counted through /proc by the store path in their
command line.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

from support.cli import EXAMPLE, ROOT, aether, serve
from support.processes import alive, until

SHELL_PIPELINE = ROOT / "examples" / "shell-pipeline.json"


def _servers(store: Path) -> list[int]:
    """Pids of the nats-server processes whose command line names `store`."""
    pids = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"nats-server" in args[0] and str(store).encode() in args and alive(int(entry.name)):
            pids.append(int(entry.name))
    return pids


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_the_readme_commands_share_one_served_folder(tmp_path: Path) -> None:
    state = tmp_path / ".aether"
    store = state / "nats"
    process, url = serve(state, "--workers", "4")
    try:
        (server,) = _servers(store)
        held = [os.readlink(fd) for fd in Path(f"/proc/{server}/fd").iterdir()]
        assert str((state / "nats.lock").resolve()) not in held  # the owner's lock dies with the owner

        second = aether("serve", cwd=tmp_path, timeout=30)
        assert second.returncode == 1
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1, second.stderr
        assert str(state.resolve()) in lines[0] and f"pid {process.pid}" in lines[0] and "stop it first" in lines[0]
        assert len(_servers(store)) == 1

        submitted = aether("submit", str(EXAMPLE), "--wait", cwd=tmp_path)
        assert submitted.returncode == 0, submitted.stderr
        ran = aether("run", str(SHELL_PIPELINE), cwd=tmp_path)
        assert ran.returncode == 0, ran.stderr
        assert "13 words, most common: the" in ran.stdout
        run_id = ran.stdout.split()[1]
        assert len(_servers(store)) == 1

        listed = aether("list", "--json", cwd=tmp_path)
        assert listed.returncode == 0, listed.stderr
        assert run_id in [r["runID"] for r in json.loads(listed.stdout)["runs"]]
        got = aether("get", run_id, "--json", "--nats", url)
        assert got.returncode == 0 and json.loads(got.stdout)["status"] == "Succeeded"
    finally:
        _stop(process)
    assert process.returncode == 0
    assert until(lambda: not _servers(store))
    assert not (state / "nats-run").exists()
    assert not (state / "nats.url").exists()


def test_kill_9_of_serve_takes_its_server_along_and_the_folder_serves_again(tmp_path: Path) -> None:
    state = tmp_path / ".aether"
    store = state / "nats"
    process, url = serve(state, "--workers", "2")
    try:
        done = aether("submit", str(EXAMPLE), "--wait", "--json", "--nats", url)
        assert done.returncode == 0, done.stderr
        run_id = json.loads(done.stdout)["runID"]
        (old_server,) = _servers(store)
        process.kill()
        process.wait()
        assert until(lambda: not _servers(store)), _servers(store)
        assert (state / "nats-run" / "nats-server.pid").exists()  # what the dead owner left behind

        stale = aether("list", cwd=tmp_path)
        assert stale.returncode == 2 and "no NATS URL" in stale.stderr

        process, url = serve(state, "--workers", "2")
        (server,) = _servers(store)
        assert (state / "nats-run" / "nats-server.pid").read_text().strip() == str(server)
        assert not any(str(old_server) in p.name for p in (state / "nats-run").iterdir())
        got = aether("get", run_id, "--json", cwd=tmp_path)
        assert got.returncode == 0, got.stderr
        assert json.loads(got.stdout)["status"] == "Succeeded"
    finally:
        _stop(process)
    assert until(lambda: not _servers(store))
    assert not (state / "nats-run").exists()
