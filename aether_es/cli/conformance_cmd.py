"""`aether-es conformance DIR`: run a corpus of workflows and assertions, one line per case."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from aether_es.cli.commands import summary
from aether_es.cli.terminal import say
from aether_es.conformance.runner import CaseResult, CorpusError, run_corpus


def register(commands: Any) -> None:
    parser = commands.add_parser("conformance", help=summary("conformance"))
    parser.add_argument("directory", type=Path)
    parser.add_argument("--only", help="glob on case names, e.g. '0*' or '12-task-timeout'")
    parser.add_argument("--nats", help="NATS URL (default: $AETHER_NATS_URL, else an embedded server)")
    parser.add_argument("--timeout", type=float, default=10.0, help="per-case deadline in seconds (default 10)")
    parser.add_argument("--concurrency", type=int, default=8, help="cases run at once (default 8)")
    parser.set_defaults(handler=handle)


async def handle(args: argparse.Namespace) -> int:
    def show(result: CaseResult) -> None:
        say(result.line(), flush=True)

    try:
        results = await run_corpus(
            args.directory,
            args.only,
            args.nats,
            deadline=args.timeout,
            concurrency=args.concurrency,
            on_result=show,
        )
    except CorpusError as exc:
        say(f"aether: {exc}", file=sys.stderr)
        return 2
    passed = sum(r.passed for r in results)
    say(f"{passed} passed, {len(results) - passed} failed")
    return 0 if results and passed == len(results) else 1
