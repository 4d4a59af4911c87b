"""The web UI's HTTP server: pages, `/api/...`, `/healthz`, `/readyz` and `/metrics`, on aiohttp.

It runs in the `serve` process beside the engine and reads through the stack's own NATS connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from aether_es.adapters.cron_croniter import CroniterScheduler
from aether_es.client import Client
from aether_es.http.live import Streams
from aether_es.http.proxy import ApiProxy
from aether_es.http.replies import failure
from aether_es.http.run_views import RunViews
from aether_es.model import clock
from aether_es.observability.metrics import exposition
from aether_es.observability.sampler import sample
from aether_es.runtime.stack import Stack

STATIC = Path(str(files("aether_es.http") / "static"))
PAGES = {"/": "runs.html", "/runs/{run}": "run.html", "/workers": "workers.html", "/crons": "crons.html"}
READY_TIMEOUT = 2.0
"""Seconds `/readyz` waits for JetStream to answer."""


class WebServer:
    """`start` listens on `host:port` (port 0: any free one) and returns the URL; `stop` closes every stream
    and connection."""

    def __init__(self, stack: Stack, host: str, port: int, token: str = "") -> None:
        self.stack = stack
        self.host = host
        self.port = port
        self.token = token
        self.streams = Streams(stack.connection.nc, stack.layout)
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        client = Client(self.stack.connection.nc, prefix=self.stack.layout.prefix)
        proxy = ApiProxy(client, self.token)
        views = RunViews(self.stack.store, self.stack.engine)
        app = web.Application(client_max_size=4 * 1024 * 1024)
        for path, page in PAGES.items():
            app.router.add_get(path, _page(page))
        app.router.add_static("/static", STATIC)
        app.on_response_prepare.append(_revalidated)
        app.router.add_get("/healthz", _healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/api/config", self._config)
        app.router.add_get("/api/crons/next", self._next_fires)
        app.router.add_post("/api/v1/{operation}", proxy.handle)
        app.router.add_get("/api/runs/live", self.streams.runs)
        app.router.add_get("/api/runs/{run}/live", self.streams.run)
        app.router.add_get("/api/runs/{run}/tasks/{task}/logs", self.streams.logs)
        app.router.add_get("/api/runs/{run}/history", _json(views.history))
        app.router.add_get("/api/runs/{run}/graph", _json(views.graph))
        return app

    async def start(self) -> str:
        runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        host, port = runner.addresses[0][:2]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            self.streams.close()
            await runner.cleanup()

    async def _readyz(self, _: web.Request) -> web.Response:
        """Ready when the connection is up and JetStream answers: the pages can read runs."""
        connection = self.stack.connection
        if not connection.nc.is_connected:
            return web.Response(status=503, text="not ready: NATS is not connected\n")
        try:
            await asyncio.wait_for(connection.js.account_info(), READY_TIMEOUT)
        except Exception as exc:
            return web.Response(status=503, text=f"not ready: JetStream does not answer ({type(exc).__name__})\n")
        return web.Response(text="ready\n")

    async def _metrics(self, _: web.Request) -> web.Response:
        """The engine's metrics in Prometheus text, with the gauges NATS knows read now."""
        await sample(self.stack.connection.js, self.stack.layout)
        body, content_type = exposition()
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def _next_fires(self, _: web.Request) -> web.Response:
        """`{"next": {cron id: time}}`: when this engine's scheduler fires each cron it schedules next (a
        suspended or deleted cron is not scheduled)."""
        scheduler = self.stack.options.cron_scheduler
        times: dict[str, str] = {}
        if isinstance(scheduler, CroniterScheduler):
            for cron_id in scheduler.ids():
                moment = scheduler.next_fire(cron_id)
                if moment is not None:
                    times[cron_id] = clock.format_time(moment)
        return web.json_response({"next": times})

    async def _config(self, _: web.Request) -> web.Response:
        """What the pages need to know of the server: whether it takes actions at all."""
        return web.json_response({"actions": bool(self.token), "prefix": self.stack.layout.prefix})


async def _revalidated(request: web.Request, response: web.StreamResponse) -> None:
    """Pages and their files are asked for again each time (a 304 when unchanged): a browser must never keep
    an older version's script after an upgrade."""
    if "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = "no-cache"


async def _healthz(_: web.Request) -> web.Response:
    return web.Response(text="ok\n")


def _page(name: str) -> Callable[[web.Request], Awaitable[web.FileResponse]]:
    async def page(_: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / name)

    return page


def _json(read: Callable[[web.Request], Awaitable[Any]]) -> Callable[[web.Request], Awaitable[web.Response]]:
    """An endpoint answering `read`'s value as JSON, or Aether's error with its HTTP status."""

    async def endpoint(request: web.Request) -> web.Response:
        try:
            return web.Response(body=orjson.dumps(await read(request)), content_type="application/json")
        except Exception as exc:
            return failure(request.path, exc)

    return endpoint
