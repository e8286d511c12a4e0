"""Service settings: one frozen model read once from ``DSCSA_*`` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from epcis.reading import ReadLimits

__all__ = ["GIB", "Settings", "SettingsError", "package_version"]

GIB = 1024**3

# Environment variable -> field name; everything the service reads from the environment.
_ENVIRONMENT = {
    "DSCSA_STORE": "store",
    "DSCSA_HOST": "host",
    "DSCSA_PORT": "port",
    "DSCSA_DATA_DIR": "data_dir",
    "DSCSA_GLN": "gln",
    "DSCSA_COMPANY_PREFIXES": "company_prefixes",
    "DSCSA_CAPTURE_FILE_SIZE_LIMIT": "capture_file_size_limit",
    "DSCSA_CAPTURE_EVENT_LIMIT": "capture_event_limit",
    "DSCSA_DEFAULT_PAGE_SIZE": "default_page_size",
    "DSCSA_MAX_PAGE_SIZE": "max_page_size",
    "DSCSA_SHUTDOWN_TIMEOUT": "shutdown_timeout",
    "DSCSA_CHECKS": "dscsa_checks",
    "DSCSA_CHECKPOINT_INTERVAL": "checkpoint_interval",
    "DSCSA_GRACE_PERIOD_DAYS": "grace_period_days",
    "DSCSA_PROJECTION_WORKER": "projection_worker",
}


class SettingsError(ValueError):
    """An environment variable holds a value the service cannot run with."""


@cache
def package_version() -> str:
    # Cached: every response carries it, and reading package metadata costs milliseconds.
    try:
        return metadata.version("dscsa-exchange")
    except metadata.PackageNotFoundError:
        return "0+unknown"


class Settings(BaseModel):
    """Everything the service is configured with; secrets never appear in a repr or log."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # The store URL may carry database credentials (mongodb://user:password@host/db).
    store: SecretStr = SecretStr("sqlite:///var/dscsa.sqlite3")
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    data_dir: Path = Path("var")
    gln: str | None = Field(default=None, pattern=r"^\d{13}$")
    company_prefixes: tuple[str, ...] = ()
    capture_file_size_limit: int = Field(default=GIB, gt=0)
    capture_event_limit: int = Field(default=1_000_000, gt=0)
    default_page_size: int = Field(default=30, gt=0)
    max_page_size: int = Field(default=1000, gt=0)
    shutdown_timeout: float = Field(default=60.0, ge=0)
    # strict: a document breaking a DSCSA document rule is refused (422) before it is stored;
    # lenient: it is stored and the finding is recorded as an exception.
    dscsa_checks: Literal["strict", "lenient"] = "lenient"
    # Seconds between signed ledger checkpoints (only when the ledger grew).
    checkpoint_interval: float = Field(default=600.0, gt=0)
    # Business days before product without data (or data without product) is an exception.
    grace_period_days: int = Field(default=3, ge=0)
    # SQLite: atomic captures are projected into serial state by a worker process while they
    # are stored (service.projection_worker); off, after their commit in the server.
    projection_worker: bool = True

    @field_validator("company_prefixes", mode="before")
    @classmethod
    def _split_prefixes(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("company_prefixes")
    @classmethod
    def _check_prefixes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for prefix in value:
            if not (prefix.isdigit() and 6 <= len(prefix) <= 12):
                raise ValueError(f"GS1 company prefix {prefix!r} is not 6 to 12 digits")
        return value

    @field_validator("store")
    @classmethod
    def _check_store(cls, value: SecretStr) -> SecretStr:
        scheme = urlsplit(value.get_secret_value()).scheme
        if scheme not in {"sqlite", "mongodb", "mongodb+srv"}:
            raise ValueError("DSCSA_STORE must be a sqlite:/// or mongodb:// URL")
        return value

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the ``DSCSA_*`` variables; unset or empty ones keep their defaults."""
        source = os.environ if environ is None else environ
        values = {
            field: source[name] for name, field in _ENVIRONMENT.items() if source.get(name, "")
        }
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            raise SettingsError(_describe(error)) from None

    @property
    def store_scheme(self) -> str:
        return urlsplit(self.store.get_secret_value()).scheme

    @property
    def sqlite_path(self) -> Path:
        """The database file of a ``sqlite:///relative`` or ``sqlite:////absolute`` URL."""
        url = self.store.get_secret_value()
        return Path(url.removeprefix("sqlite://").removeprefix("/"))

    @property
    def operator_token_path(self) -> Path:
        return self.data_dir / "operator.token"

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def read_limits(self) -> ReadLimits:
        """The limits every captured document is read under (HTTP, command line, recovery)."""
        return ReadLimits(
            max_bytes=self.capture_file_size_limit, max_events=self.capture_event_limit
        )


def _describe(error: ValidationError) -> str:
    by_field = {field: name for name, field in _ENVIRONMENT.items()}
    lines = []
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else ""
        lines.append(f"{by_field.get(field, field)}: {item['msg']}")
    return "; ".join(lines)
