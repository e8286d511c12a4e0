"""The access log's line (its own cheaper logger class) and that ``dscsa serve`` uses it."""

from __future__ import annotations

import argparse
import logging
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pydantic import SecretStr

from service.access_log import AccessLog
from service.commands import serve
from service.settings import Settings

LINE = re.compile(
    r'^127\.0\.0\.1 "GET /hello\?a=1&b=%20 HTTP/1\.1" 201 \d+ "https://example\.org/" '
    r'"probe/1\.0" \d+\.\d{3}ms$'
)


async def test_one_line_per_request(caplog: pytest.LogCaptureFixture) -> None:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(status=201, body=b"hello")

    app = web.Application()
    app.router.add_get("/hello", hello)
    runner = web.AppRunner(app, access_log_class=AccessLog)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        with caplog.at_level(logging.INFO, logger="aiohttp.access"):
            async with aiohttp.ClientSession() as session:
                reply = await session.get(
                    f"http://127.0.0.1:{port}/hello?a=1&b=%20",
                    headers={"Referer": "https://example.org/", "User-Agent": "probe/1.0"},
                )
                assert reply.status == 201
                assert await reply.read() == b"hello"
    finally:
        await runner.cleanup()
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert len(lines) == 1
    assert LINE.match(lines[0]), lines[0]


def test_dscsa_serve_writes_its_access_log_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(
        store=SecretStr(f"sqlite:///{tmp_path}/events.sqlite3"), data_dir=tmp_path / "data"
    )
    given: dict[str, Any] = {}
    monkeypatch.setattr(Settings, "from_environ", classmethod(lambda cls: settings))
    monkeypatch.setattr(web, "run_app", lambda app, **kwargs: given.update(kwargs))
    assert serve.run(argparse.Namespace(host=None, port=None)) == 0
    assert given["access_log_class"] is AccessLog
