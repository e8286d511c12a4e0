"""The application shell: health, OpenAPI coverage, first-start operator token, settings."""

from __future__ import annotations

import re
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from pytest_aiohttp import AiohttpClient

from service.handlers.openapi import OPENAPI_PATH
from service.settings import GIB, Settings, SettingsError
from tests.service.conftest import Client


async def test_health_needs_no_token_and_reports_the_store(client: Client) -> None:
    response = await client.get("/health")
    assert response.status == 200
    body = await response.json()
    assert body["store"] == "reachable"
    assert body["version"]
    assert response.headers["GS1-EPCIS-Version"] == "2.0.0"


def _openapi_routes(document: dict[str, Any]) -> set[tuple[str, str]]:
    methods = {"get", "post", "put", "delete", "patch"}
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in methods
    }


def _app_routes(app: web.Application) -> set[tuple[str, str]]:
    routes = set()
    for route in app.router.routes():
        if isinstance(route.resource, web.StaticResource) or route.method == "*":
            continue  # files for the pages and the pages' not-found fallback: not operations
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter", "")
        # aiohttp writes a regex-constrained variable as {name:regex}; OpenAPI as {name}.
        path = re.sub(r"\{(\w+):[^}]+\}", r"{\1}", path)
        routes.add((route.method, path))
    return routes


async def test_openapi_document_lists_exactly_the_app_routes(
    client: Client, operator: dict[str, str]
) -> None:
    response = await client.get("/openapi.yaml", headers=operator)
    assert response.status == 200
    document = yaml.safe_load(await response.text())
    assert document["openapi"].startswith("3.1")
    assert _openapi_routes(document) == _app_routes(client.app)
    assert document == yaml.safe_load(OPENAPI_PATH.read_text())


async def test_first_start_writes_an_operator_token_readable_only_by_its_owner(
    client: Client, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    path = settings.operator_token_path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = path.read_text().strip()
    assert len(token) >= 40
    response = await client.get("/capture", headers={"Authorization": f"Bearer {token}"})
    assert response.status == 200


async def test_operator_token_is_not_replaced_on_a_second_start(
    aiohttp_client: AiohttpClient, settings: Settings
) -> None:
    from service.app import create_app

    await aiohttp_client(create_app(settings))
    first = settings.operator_token_path.read_text()
    await aiohttp_client(create_app(settings))
    assert settings.operator_token_path.read_text() == first


def test_settings_read_the_environment() -> None:
    settings = Settings.from_environ(
        {
            "DSCSA_STORE": "mongodb://user:secret@db.example/dscsa",
            "DSCSA_PORT": "9090",
            "DSCSA_DATA_DIR": "/srv/dscsa",
            "DSCSA_GLN": "0300011111116",
            "DSCSA_COMPANY_PREFIXES": "030001, 039999",
        }
    )
    assert settings.port == 9090
    assert settings.data_dir == Path("/srv/dscsa")
    assert settings.company_prefixes == ("030001", "039999")
    assert settings.capture_file_size_limit == GIB
    assert settings.store_scheme == "mongodb"
    assert "secret" not in repr(settings)


def test_settings_defaults_and_sqlite_paths() -> None:
    settings = Settings.from_environ({})
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.sqlite_path == Path("var/dscsa.sqlite3")
    absolute = Settings.from_environ({"DSCSA_STORE": "sqlite:////srv/x.sqlite3"})
    assert absolute.sqlite_path == Path("/srv/x.sqlite3")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DSCSA_STORE", "postgres://x/y"),
        ("DSCSA_PORT", "0"),
        ("DSCSA_GLN", "12345"),
        ("DSCSA_COMPANY_PREFIXES", "12a456"),
    ],
)
def test_settings_refuse_bad_values_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_environ({name: value})


async def test_unexpected_errors_become_a_500_problem_without_internals(
    aiohttp_client: AiohttpClient, caplog: pytest.LogCaptureFixture
) -> None:
    from service.problems import problems_middleware

    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("database password is hunter2")

    app = web.Application(middlewares=[problems_middleware])
    app.router.add_get("/broken", broken)
    client = await aiohttp_client(app)
    response = await client.get("/broken")
    assert response.status == 500
    assert response.content_type == "application/problem+json"
    body = await response.json()
    assert body["type"] == "epcisException:ImplementationException"
    assert "hunter2" not in await response.text()
    assert sum("unhandled error" in r.message for r in caplog.records) == 1


async def test_unknown_route_is_a_404_problem(client: Client, operator: dict[str, str]) -> None:
    response = await client.get("/nowhere", headers=operator)
    assert response.status == 404
    body = await response.json()
    assert body["type"] == "epcisException:NoSuchResourceException"
    assert body["instance"] == "/nowhere"
