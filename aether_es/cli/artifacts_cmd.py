"""`aether-es artifacts RUN [TASK]` lists a run's stored output artifacts; `aether-es artifacts get RUN TASK NAME
[-o FILE]` downloads one, checking its digest.

TASK is a task run id or a task's name (a name shared by several task runs, as in a loop, needs the id). The
run's records come through the API; the bytes straight from the repository the artifact names: the system's
object store, `.aether/artifacts` under the current folder for `local`, or its URL. A folder artifact arrives
as a folder. Exit 0 done, 1 the system or the repository failed (or the digest differs), 2 bad arguments,
3 no such run, task or artifact.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from aether_es.cli import exits
from aether_es.cli.commands import summary
from aether_es.cli.io import print_json
from aether_es.cli.remote import RemoteError, add_remote_options, fail, remote
from aether_es.cli.tables import table
from aether_es.cli.terminal import say
from aether_es.client import Client
from aether_es.errors import AetherError
from aether_es.limits import LimitExceeded, Limits
from aether_es.ports.artifacts import ArtifactError, ArtifactTooLarge
from aether_es.runtime.state_dir import DEFAULT_STATE_DIR
from aether_es.worker.artifacts import TAR, file_digest, unpack
from aether_es.worker.repositories import default_repositories

USAGE = "aether-es artifacts RUN [TASK] [--json]\n       aether-es artifacts get RUN TASK NAME [-o FILE]"


class Refused(Exception):
    """What was asked for does not exist or is ambiguous; `code` is the exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def register(commands: Any) -> None:
    parser = commands.add_parser("artifacts", help=summary("artifacts"), usage=USAGE, description=__doc__)
    parser.add_argument("words", nargs="+", metavar="RUN [TASK] | get RUN TASK NAME", help="what to list or get")
    parser.add_argument(
        "-o", "--output", metavar="FILE", help="with get: where to write it (default: NAME; - for stdout)"
    )
    parser.add_argument("--json", action="store_true", help="list as a JSON array")
    add_remote_options(parser)
    parser.set_defaults(handler=handle)


async def handle(args: argparse.Namespace) -> int:
    words: list[str] = args.words
    getting = words[0] == "get"
    if (getting and len(words) != 4) or (not getting and len(words) > 2) or (not getting and args.output):
        say(f"aether: artifacts: usage: {USAGE}", file=sys.stderr)
        return exits.INVALID
    try:
        async with remote("artifacts", args.nats, args.prefix, args) as (connection, layout):
            client = await Client.connect(connection, prefix=layout.prefix)
            run_id = words[1] if getting else words[0]
            task = words[2] if getting else (words[1] if len(words) > 1 else "")
            stored = [
                a async for a in _artifacts(client, run_id) if not task or task in (a["taskRunID"], a["taskName"])
            ]
            if not getting:
                _print(stored, args.json)
                return exits.OK
            artifact = _one(stored, run_id, task, words[3])
            repositories = {r.type(): r for r in default_repositories(connection.js, layout, DEFAULT_STATE_DIR)}
            await _get(repositories, artifact, args.output or artifact["name"])
    except RemoteError as error:
        return fail(error)
    except AetherError as exc:
        say(exc, file=sys.stderr)
        return exits.of_error(exc)
    except Refused as exc:
        say(f"aether: artifacts: {exc}", file=sys.stderr)
        return exc.code
    return exits.OK


async def _artifacts(client: Client, run_id: str) -> Any:
    """Each stored output artifact of the run's task runs, with the task run's id and name."""
    async for record in client.tasks(run_id):
        for artifact in (record.get("outputs") or {}).get("artifacts") or ():
            if isinstance(artifact, dict) and artifact.get("source"):
                yield {"taskRunID": record["runID"], "taskName": record.get("taskName", ""), **artifact}


def _one(stored: list[dict[str, Any]], run_id: str, task: str, name: str) -> dict[str, Any]:
    found = [a for a in stored if a["name"] == name]
    if not found:
        raise Refused(f"run {run_id}: task {task!r} has no stored output artifact {name!r}", exits.NOT_FOUND)
    runs = sorted({a["taskRunID"] for a in found})
    if len(runs) > 1:
        raise Refused(f"task {task!r} names {len(runs)} task runs ({', '.join(runs)}): give one's id", exits.INVALID)
    return found[-1]


def _print(stored: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print_json(stored)
        return
    if not stored:
        say("no stored artifacts")
        return
    rows = [
        (
            a["taskRunID"],
            a["taskName"],
            a["name"] + ("/" if (a.get("archive") or {}).get("type") == TAR else ""),
            f"{a.get('size', 0):,}",
            a.get("digest", ""),
            _where(a["source"]),
        )
        for a in stored
    ]
    say(*table(("TASK RUN", "TASK", "NAME", "BYTES", "DIGEST", "STORED IN"), rows))


def _where(source: dict[str, Any]) -> str:
    config = source.get("config") or {}
    place = "/".join(str(config[k]) for k in ("bucket", "key", "path", "url") if k in config)
    return f"{source.get('type', '')}:{place}"


async def _get(repositories: dict[str, Any], artifact: dict[str, Any], output: str) -> None:
    """Download into a temporary file, check the digest, then write it (or unpack a folder) at `output`."""
    source = artifact["source"]
    repository = repositories.get(source.get("type"))
    if repository is None:
        raise Refused(f"artifact {artifact['name']!r}: no repository of type {source.get('type')!r}", exits.FAILED)
    with tempfile.TemporaryDirectory(prefix="aether-get-") as scratch:
        file = Path(scratch) / "artifact"
        what = f"artifact {artifact['name']!r}"
        limits = Limits.from_env()
        try:
            size = await repository.download(dict(source.get("config") or {}), file, limits.artifact_bytes)
            digest = await asyncio.to_thread(file_digest, file)
            if artifact.get("digest") and digest != artifact["digest"]:
                raise ArtifactError(f"downloaded {digest}, not the recorded {artifact['digest']}")
            folder = (artifact.get("archive") or {}).get("type") == TAR
            if output == "-":
                await asyncio.to_thread(_to_stdout, file)
                return
            target = Path(output)
            if folder:
                await asyncio.to_thread(unpack, file, target, what)
            else:
                await asyncio.to_thread(shutil.move, file, target)
        except ArtifactTooLarge as exc:
            raise Refused(str(LimitExceeded(what, "artifact_bytes", exc.size, limits.artifact_bytes)), 1) from None
        except (ArtifactError, OSError) as exc:
            raise Refused(f"{what}: {exc}", exits.FAILED) from None
    say(f"wrote {'folder' if folder else 'file'} {target} ({size:,} bytes, {digest})")


def _to_stdout(file: Path) -> None:
    with file.open("rb") as data:
        shutil.copyfileobj(data, sys.stdout.buffer)
    sys.stdout.flush()
