"""`aether-es bench [--quick] [--json FILE]`: run the benchmark scenarios and print a table."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from aether_es.cli.commands import summary
from bench import report, scenarios, suite


def register(commands: Any) -> None:
    parser = commands.add_parser("bench", help=summary("bench"))
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="every scenario scaled down (about 1/10)")
    size.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # smoke test size
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write every number to FILE as JSON")
    parser.add_argument(
        "--only",
        action="append",
        choices=suite.SCENARIOS,
        metavar="SCENARIO",
        help=f"run only this scenario (repeatable): {', '.join(suite.SCENARIOS)}",
    )
    parser.set_defaults(handler=handle)


async def handle(args: argparse.Namespace) -> int:
    if args.tiny:
        mode, sizes = "tiny", scenarios.Sizes.tiny()
    elif args.quick:
        mode, sizes = "quick", scenarios.Sizes.quick()
    else:
        mode, sizes = "full", scenarios.Sizes()
    began = time.perf_counter()

    def progress(text: str) -> None:
        print(f"[{time.perf_counter() - began:6.1f}s] {text}", file=sys.stderr, flush=True)

    floor, results = await suite.run_all(sizes, set(args.only or ()) or None, progress)
    total = time.perf_counter() - began
    print(report.table(floor, results))
    print(f"\n{mode} run, {total:.1f}s in all")
    if args.json is not None:
        args.json.write_bytes(report.to_json(floor, results, mode, total))
    return 0
