"""Child processes that die with the process that started them, even on `kill -9` of it.

On Linux the child asks the kernel for SIGKILL when its parent dies (`prctl(PR_SET_PDEATHSIG)`) before it
execs. That signal follows the *thread* that forked, not the process, so every child is forked from one
thread that lives as long as the process (`_SPAWNER`), whichever thread asks for a (re)start.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

_PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., int] | None:
    """libc's prctl on Linux, resolved once here so the forked child only makes the call."""
    if not sys.platform.startswith("linux"):
        return None
    prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    return prctl


_PRCTL = _load_prctl()
_SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="child-spawner")


def _die_with_parent() -> Callable[[], None] | None:
    """A pre-exec hook making the child get SIGKILL when its parent dies (Linux), else None.

    prctl in the child is the one way that also covers `kill -9` of the parent without a watchdog process in
    between.
    """
    prctl = _PRCTL
    if prctl is None:
        return None
    parent, kill = os.getpid(), int(signal.SIGKILL)

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, kill)
        if os.getppid() != parent:  # the parent died before the request took effect
            os._exit(1)

    return hook


def spawn_owned(args: Sequence[str], **popen: Any) -> subprocess.Popen[bytes]:
    """`subprocess.Popen(args, **popen)` of a child that gets SIGKILL when this process dies (on Linux)."""
    hook = _die_with_parent()

    def fork() -> subprocess.Popen[bytes]:
        return subprocess.Popen(list(args), preexec_fn=hook, **popen)

    return _SPAWNER.submit(fork).result()
