"""The state folder's owner: one exclusive lock, its record, and what the others make of it."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path

import pytest

from aether_es.runtime.state_dir import (
    LOCK_FILE,
    URL_FILE,
    Owner,
    OwnerLock,
    StateDirBusy,
    answers,
    claim_or_join,
    owner,
    served_system,
    served_url,
)


def test_one_owner_at_a_time_and_its_record(tmp_path: Path) -> None:
    first = OwnerLock.acquire(tmp_path)
    assert first is not None
    try:
        assert OwnerLock.acquire(tmp_path) is None
        assert owner(tmp_path) == Owner(os.getpid(), "")
        assert served_url(tmp_path) is None  # taken, but its server is not up yet
        first.publish("nats://127.0.0.1:4999")
        assert owner(tmp_path) == Owner(os.getpid(), "nats://127.0.0.1:4999")
        assert served_url(tmp_path) == "nats://127.0.0.1:4999"
        assert (tmp_path / URL_FILE).read_text() == "nats://127.0.0.1:4999\n"
    finally:
        first.release()
    assert owner(tmp_path) is None
    assert not (tmp_path / URL_FILE).exists()
    again = OwnerLock.acquire(tmp_path)
    assert again is not None
    again.release()


def test_the_lock_is_not_inherited_by_children(tmp_path: Path) -> None:
    lock = OwnerLock.acquire(tmp_path)
    assert lock is not None and lock.fd is not None
    try:
        assert not os.get_inheritable(lock.fd)
    finally:
        lock.release()


def test_a_record_left_by_a_dead_owner_is_replaced(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": 999999, "url": "nats://127.0.0.1:1"}))
    (tmp_path / URL_FILE).write_text("nats://127.0.0.1:1\n")
    assert owner(tmp_path) is None and served_url(tmp_path) is None
    with caplog.at_level(logging.INFO, logger="aether_es.state_dir"):
        lock = OwnerLock.acquire(tmp_path)
    assert lock is not None
    try:
        assert any("999999" in r.getMessage() and r.levelno == logging.INFO for r in caplog.records)
        lock.publish("nats://127.0.0.1:2")
        assert served_url(tmp_path) == "nats://127.0.0.1:2"
        assert (tmp_path / URL_FILE).read_text().strip() == "nats://127.0.0.1:2"
    finally:
        lock.release()


async def test_serving_a_served_folder_is_refused_naming_folder_and_pid(tmp_path: Path) -> None:
    lock = OwnerLock.acquire(tmp_path)
    assert lock is not None
    lock.publish("nats://127.0.0.1:4999")
    try:
        with pytest.raises(StateDirBusy) as refused:
            await claim_or_join(tmp_path, join=False)
        message = str(refused.value)
        assert "\n" not in message
        assert str(tmp_path.resolve()) in message and f"pid {os.getpid()}" in message
        assert message.endswith("on nats://127.0.0.1:4999; use that system, or stop it first")
    finally:
        lock.release()


async def test_an_owner_that_does_not_answer_is_waited_for_then_refused(tmp_path: Path) -> None:
    lock = OwnerLock.acquire(tmp_path)
    assert lock is not None
    try:
        with pytest.raises(StateDirBusy) as refused:
            await served_system(tmp_path, wait=0.3)
        assert str(tmp_path.resolve()) in str(refused.value) and f"pid {os.getpid()}" in str(refused.value)
    finally:
        lock.release()


async def test_a_free_folder_is_claimed_and_a_served_one_joined(tmp_path: Path) -> None:
    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b'INFO {"server_id":"x"}\r\n')
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(greet, "127.0.0.1", 0)
    url = f"nats://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        assert await answers(url)
        claimed = await claim_or_join(tmp_path, join=True)
        assert isinstance(claimed, OwnerLock)
        claimed.publish(url)
        try:
            assert await claim_or_join(tmp_path, join=True) == url
            assert await served_system(tmp_path) == url
        finally:
            claimed.release()
        assert await served_system(tmp_path) is None
    finally:
        server.close()
        await server.wait_closed()
