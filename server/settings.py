"""Typed settings: the only place that reads the environment.

Every variable is prefixed ``TOURNEE_`` and documented in README.md (Configuration).
Tests set the environment, then call ``get_settings.cache_clear()`` before building an app.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path


def _env(name: str, default: str) -> str:
    return os.environ.get(f"TOURNEE_{name}", default)


def _env_int(name: str, default: int) -> int:
    raw = _env(name, str(default))
    try:
        return int(raw)
    except ValueError as exc:  # a misconfiguration must fail loudly at start-up
        raise ValueError(f"TOURNEE_{name} must be an integer, got {raw!r}") from exc


def _env_float(name: str, default: float) -> float:
    raw = _env(name, str(default))
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"TOURNEE_{name} must be a number, got {raw!r}") from exc


def _env_bool(name: str, default: bool) -> bool:
    raw = _env(name, "1" if default else "0").strip().lower()
    return raw in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    var_dir: Path
    database_url: str
    secret_key: str
    debug: bool
    host: str
    port: int
    public_url: str
    default_language: str
    city_timezone: str
    # jurisdiction bounds: min_lat, min_lon, max_lat, max_lon
    jurisdiction_id: str
    bounds: tuple[float, float, float, float]
    max_body_bytes: int
    session_hours: int
    duplicate_radius_m: float
    db_pool_size: int
    db_statement_timeout_ms: int
    scheduler_enabled: bool
    channels_backend: str  # "memory" | "postgres"
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith("postgresql")

    @property
    def database_kind(self) -> str:
        return "postgresql" if self.is_postgres else "sqlite"


def _parse_bounds(raw: str) -> tuple[float, float, float, float]:
    parts = [float(p) for p in raw.split(",")]
    if len(parts) != 4:
        raise ValueError("TOURNEE_BOUNDS must be min_lat,min_lon,max_lat,max_lon")
    return (parts[0], parts[1], parts[2], parts[3])


def _normalise_db_url(url: str) -> str:
    # Accept the usual spellings and pick the async drivers.
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+asyncpg://" + url[len("postgresql://") :]
    if url.startswith("sqlite:///"):
        url = "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
    return url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    var_dir = Path(_env("VAR_DIR", "var")).resolve()
    default_db = f"sqlite+aiosqlite:///{var_dir / 'tournee.sqlite3'}"
    secret = _env("SECRET_KEY", "")
    if not secret:
        # A per-installation secret, created once, kept under var/.
        var_dir.mkdir(parents=True, exist_ok=True)
        secret_file = var_dir / "secret_key"
        if not secret_file.exists():
            fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(os.urandom(32).hex())
        secret = secret_file.read_text().strip()
    database_url = _normalise_db_url(_env("DATABASE_URL", default_db))
    return Settings(
        var_dir=var_dir,
        database_url=database_url,
        secret_key=secret,
        debug=_env_bool("DEBUG", False),
        host=_env("HOST", "127.0.0.1"),
        port=_env_int("PORT", 8000),
        public_url=_env("PUBLIC_URL", "http://127.0.0.1:8000"),
        default_language=_env("DEFAULT_LANGUAGE", "fr"),
        city_timezone=_env("CITY_TIMEZONE", "America/Toronto"),
        jurisdiction_id=_env("JURISDICTION_ID", "quebec.qc.ca"),
        bounds=_parse_bounds(_env("BOUNDS", "46.70,-71.56,47.00,-71.13")),
        max_body_bytes=_env_int("MAX_BODY_BYTES", 1_000_000),
        session_hours=_env_int("SESSION_HOURS", 12),
        duplicate_radius_m=_env_float("DUPLICATE_RADIUS_M", 50.0),
        db_pool_size=_env_int("DB_POOL_SIZE", 10),
        db_statement_timeout_ms=_env_int("DB_STATEMENT_TIMEOUT_MS", 15_000),
        scheduler_enabled=_env_bool("SCHEDULER", True),
        channels_backend=_env(
            "CHANNELS_BACKEND", "postgres" if database_url.startswith("postgresql") else "memory"
        ),
    )
