"""Typed settings: the only place that reads the environment.

Every variable is prefixed ``TOURNEE_`` and documented in README.md (Configuration).
Tests set the environment, then call ``get_settings.cache_clear()`` before building an app.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path


class ConfigError(ValueError):
    """A setting (or a command's input) that cannot work: the process refuses to start, or the
    command refuses, with this one-line message (server/cli.py)."""


def _env(name: str, default: str) -> str:
    return os.environ.get(f"TOURNEE_{name}", default)


def _env_int(name: str, default: int) -> int:
    raw = _env(name, str(default))
    try:
        return int(raw)
    except ValueError as exc:  # a misconfiguration must fail loudly at start-up
        raise ConfigError(f"TOURNEE_{name} must be an integer, got {raw!r}") from exc


def _env_float(name: str, default: float) -> float:
    raw = _env(name, str(default))
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"TOURNEE_{name} must be a number, got {raw!r}") from exc


Limits = tuple[tuple[int, int], ...]  # ((hits, seconds), ...): every one must admit a hit


def _env_rate(name: str, default: str) -> Limits | None:
    """``"60/60,600/3600"`` (60 hits per minute and 600 per hour, sliding windows) or ``"off"``."""
    raw = _env(name, default).strip().lower()
    if raw in {"off", "0", ""}:
        return None
    limits: list[tuple[int, int]] = []
    for part in raw.split(","):
        try:
            hits, seconds = (int(p) for p in part.strip().split("/", 1))
        except ValueError as exc:
            raise ValueError(
                f"TOURNEE_{name} must look like 60/60,600/3600 or off, got {raw!r}"
            ) from exc
        if hits < 1 or seconds < 1:
            raise ValueError(f"TOURNEE_{name} must be positive, got {raw!r}")
        limits.append((hits, seconds))
    return tuple(limits)


def _env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = _env(name, default).strip().lower()
    if raw not in choices:
        raise ValueError(f"TOURNEE_{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


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
    # photo evidence (server/photos/)
    photo_dir: Path = Path("var/photos")
    # the web app's files (a city may serve its own build of pwa/, e.g. with its logo)
    pwa_dir: Path = Path(__file__).resolve().parent.parent / "pwa"
    # where photo bytes live: "file" (photo_dir) or "s3" (an S3-compatible bucket, docs/deploy.md)
    photo_store: str = "file"
    s3_endpoint: str = ""  # e.g. http://127.0.0.1:8333 (MinIO, SeaweedFS, Ceph RGW); "" = AWS
    s3_bucket: str = ""
    s3_region: str = "us-east-1"
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""
    s3_path_style: bool = True  # bucket in the path (self-hosted stores); False = virtual host
    s3_prefix: str = ""  # object names start with this (several installations in one bucket)
    photo_max_bytes: int = 25_000_000
    photo_max_pixels: int = 64_000_000
    evidence_max_distance_m: float = 150.0
    evidence_max_age_h: float = 12.0
    photo_missing_delay_min: int = 60
    photo_retention_days: int = 730  # originals of orders closed this long are deleted
    photo_copy_workers: int = 2  # public copies made at once as uploads complete (0: job only)
    # citizen Web Push and scheduled jobs (server/notify/, server/jobs.py)
    vapid_private_key: str = ""  # a PEM, or the path of a PEM file (created when missing)
    vapid_subject: str = "mailto:tournee@localhost"
    push_ttl_seconds: int = 86_400
    push_timeout_seconds: float = 10.0
    push_max_attempts: int = 12
    push_batch_size: int = 50
    push_endpoint_hosts: tuple[str, ...] = ()
    quiet_hours: str = "21:00-07:00"  # city time; "off" disables
    push_retention_days: int = 30
    push_photo_wait_seconds: float = 5.0  # a completion push waits this long for its photo
    job_push_seconds: float = 10.0
    job_sla_seconds: float = 60.0
    job_photos_seconds: float = 30.0
    job_prune_seconds: float = 3600.0
    # Open311 GeoReport v2 (server/open311/)
    open311_contact: str = "311 — Ville de Québec"
    # offline sync (server/syncapi/, docs/sync-protocol.md)
    sync_tail_hours: float = 24.0
    sync_cookie_max_days: float = 30.0
    sync_min_schema: int = 1
    sync_sse_heartbeat_seconds: float = 20.0
    sync_sse_max_seconds: float = 300.0
    live_coalesce_seconds: float = 0.5  # SSE hints arriving this close are sent as one
    # EventSource cannot send headers: it opens a stream with a single-use ticket this fresh
    stream_ticket_seconds: float = 60.0
    # the interactive OpenAPI page (/schema/swagger); /schema/openapi.json is always served
    schema_ui: bool = False
    # several processes (docs/deploy.md): how long a stopped API process lets in-flight
    # requests finish before it cancels them (uvicorn's timeout_graceful_shutdown)
    shutdown_grace_seconds: float = 20.0
    # rate limits shared by every process (server/ratelimit.py, docs/adr/0043): sliding
    # windows, ((hits, seconds), ...) or None when off
    rate_limit_reports: Limits | None = ((60, 60), (600, 3600))  # per address
    rate_limit_subscriptions: Limits | None = ((60, 60), (600, 3600))  # per address
    rate_limit_subscriptions_token: Limits | None = ((20, 3600),)  # per tracking token
    rate_limit_subscriptions_endpoint: Limits | None = ((30, 3600),)  # per push endpoint
    rate_limit_login: Limits | None = ((100, 900),)  # per address
    rate_limit_login_account: Limits | None = ((10, 900),)  # per username
    rate_limit_open311: Limits | None = ((60, 60), (1000, 3600))  # per API key
    # addresses whose X-Forwarded-For/-Proto uvicorn trusts ("" none, "*" all, or a list)
    forwarded_allow_ips: str = ""
    # server/logs.py: one JSON object per line, or key=value lines for a person at a terminal
    log_format: str = "json"
    # server/metrics.py: /metrics answers only a "Bearer <token>"; empty: /metrics is off (404)
    metrics_token: str = ""
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
        raise ConfigError("TOURNEE_BOUNDS must be min_lat,min_lon,max_lat,max_lon")
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


# The push services of the browsers in use (Chrome/Edge/Android: FCM; Firefox: Mozilla; Safari
# and iOS: Apple; legacy Edge: WNS). Citizens hand us any URL as an endpoint: the push job only
# POSTs to these hosts (docs/adr/0041).
DEFAULT_PUSH_ENDPOINT_HOSTS = (
    "fcm.googleapis.com,*.push.services.mozilla.com,*.push.apple.com,*.notify.windows.com"
)


PLACEHOLDER_VAPID_SUBJECT = "mailto:tournee@localhost"
_MAILTO = re.compile(r"^mailto:[^@\s/]+@[^@\s/]+$")
_HTTPS = re.compile(r"^https://[^\s/@]+(/\S*)?$")
_DRIVERS = {"sqlite+aiosqlite": "sqlite", "postgresql+asyncpg": "postgresql"}


def check_settings(settings: Settings) -> list[str]:
    """Refuse (:class:`ConfigError`, one line) what cannot work; return warnings to print.

    The database URL must parse and name SQLite or PostgreSQL; the VAPID subject must be a
    ``mailto:`` address or an ``https:`` URL (push services refuse anything else, and every push
    would then fail with the reason only in ``push_outbox.last_error``).
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(settings.database_url)
    except ArgumentError:
        raise ConfigError(
            "TOURNEE_DATABASE_URL is not a database URL "
            "(expected sqlite:///path/file.sqlite3 or postgresql://user@host/dbname)"
        ) from None
    if url.drivername not in _DRIVERS:
        raise ConfigError(
            f"TOURNEE_DATABASE_URL: unsupported database {url.get_backend_name()!r} "
            "(Tournée runs on sqlite:/// or postgresql://)"
        )
    if url.drivername.startswith("sqlite") and url.database and url.database != ":memory:":
        folder = Path(url.database).parent
        if not folder.is_dir():
            raise ConfigError(f"TOURNEE_DATABASE_URL: the folder {folder} does not exist")
    subject = settings.vapid_subject.strip()
    if not (_MAILTO.match(subject) or _HTTPS.match(subject)):
        raise ConfigError(
            f"TOURNEE_VAPID_SUBJECT must be a mailto: address or an https: URL, got {subject!r}"
        )
    warnings = []
    if subject == PLACEHOLDER_VAPID_SUBJECT:
        warnings.append(
            f"TOURNEE_VAPID_SUBJECT is the placeholder {subject}: push services (Apple above "
            "all) may refuse it; set a real contact such as mailto:311@ville.quebec.qc.ca"
        )
    return warnings


def _push_hosts(hosts: str, extra: str) -> tuple[str, ...]:
    """TOURNEE_PUSH_ENDPOINT_HOSTS replaces the built-in list (rarely wanted);
    TOURNEE_PUSH_ENDPOINT_HOSTS_EXTRA adds to it (a test push service, a self-hosted one)."""
    found: list[str] = []
    for raw in (*hosts.split(","), *extra.split(",")):
        host = raw.strip().lower()
        if host and host not in found:
            found.append(host)
    return tuple(found)


def _default_vapid_subject(public_url: str) -> str:
    # RFC 8292 asks for a contact; an https: public address is one. Set TOURNEE_VAPID_SUBJECT.
    return public_url if public_url.startswith("https:") else PLACEHOLDER_VAPID_SUBJECT


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
    public_url = _env("PUBLIC_URL", "http://127.0.0.1:8000")
    return Settings(
        var_dir=var_dir,
        database_url=database_url,
        secret_key=secret,
        debug=_env_bool("DEBUG", False),
        log_format=_env_choice("LOG_FORMAT", "json", ("json", "console")),
        metrics_token=_env("METRICS_TOKEN", "").strip(),
        host=_env("HOST", "127.0.0.1"),
        port=_env_int("PORT", 8000),
        public_url=public_url,
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
        photo_dir=Path(_env("PHOTO_DIR", str(var_dir / "photos"))).resolve(),
        pwa_dir=Path(_env("PWA_DIR", str(Settings.pwa_dir))).resolve(),
        photo_store=_env("PHOTO_STORE", "file"),
        s3_endpoint=_env("S3_ENDPOINT", ""),
        s3_bucket=_env("S3_BUCKET", ""),
        s3_region=_env("S3_REGION", "us-east-1"),
        s3_access_key_id=_env("S3_ACCESS_KEY_ID", ""),
        s3_secret_access_key=_env("S3_SECRET_ACCESS_KEY", ""),
        s3_path_style=_env_bool("S3_PATH_STYLE", True),
        s3_prefix=_env("S3_PREFIX", ""),
        photo_max_bytes=_env_int("PHOTO_MAX_BYTES", 25_000_000),
        photo_max_pixels=_env_int("PHOTO_MAX_PIXELS", 64_000_000),
        evidence_max_distance_m=_env_float("EVIDENCE_MAX_DISTANCE_M", 150.0),
        evidence_max_age_h=_env_float("EVIDENCE_MAX_AGE_H", 12.0),
        photo_missing_delay_min=_env_int("PHOTO_MISSING_DELAY_MIN", 60),
        photo_retention_days=_env_int("PHOTO_RETENTION_DAYS", 730),
        photo_copy_workers=_env_int("PHOTO_COPY_WORKERS", 2),
        vapid_private_key=_env("VAPID_PRIVATE_KEY", str(var_dir / "vapid_private.pem")),
        vapid_subject=_env("VAPID_SUBJECT", _default_vapid_subject(public_url)),
        push_ttl_seconds=_env_int("PUSH_TTL", 86_400),
        push_timeout_seconds=_env_float("PUSH_TIMEOUT", 10.0),
        push_max_attempts=_env_int("PUSH_MAX_ATTEMPTS", 12),
        push_batch_size=_env_int("PUSH_BATCH", 50),
        push_endpoint_hosts=_push_hosts(
            _env("PUSH_ENDPOINT_HOSTS", DEFAULT_PUSH_ENDPOINT_HOSTS),
            _env("PUSH_ENDPOINT_HOSTS_EXTRA", ""),
        ),
        quiet_hours=_env("QUIET_HOURS", "21:00-07:00"),
        push_retention_days=_env_int("PUSH_RETENTION_DAYS", 30),
        push_photo_wait_seconds=_env_float("PUSH_PHOTO_WAIT_SECONDS", 5.0),
        job_push_seconds=_env_float("JOB_PUSH_SECONDS", 10.0),
        job_sla_seconds=_env_float("JOB_SLA_SECONDS", 60.0),
        job_photos_seconds=_env_float("JOB_PHOTOS_SECONDS", 30.0),
        job_prune_seconds=_env_float("JOB_PRUNE_SECONDS", 3600.0),
        open311_contact=_env("OPEN311_CONTACT", "311 — Ville de Québec"),
        sync_tail_hours=_env_float("SYNC_TAIL_HOURS", 24.0),
        sync_cookie_max_days=_env_float("SYNC_COOKIE_MAX_DAYS", 30.0),
        sync_min_schema=_env_int("SYNC_MIN_SCHEMA", 1),
        sync_sse_heartbeat_seconds=_env_float("SYNC_SSE_HEARTBEAT_SECONDS", 20.0),
        sync_sse_max_seconds=_env_float("SYNC_SSE_MAX_SECONDS", 300.0),
        live_coalesce_seconds=_env_float("LIVE_COALESCE_SECONDS", 0.5),
        stream_ticket_seconds=_env_float("STREAM_TICKET_SECONDS", 60.0),
        schema_ui=_env_bool("SCHEMA_UI", False),
        shutdown_grace_seconds=_env_float("SHUTDOWN_GRACE_SECONDS", 20.0),
        rate_limit_reports=_env_rate("RATE_LIMIT_REPORTS", "60/60,600/3600"),
        rate_limit_subscriptions=_env_rate("RATE_LIMIT_SUBSCRIPTIONS", "60/60,600/3600"),
        rate_limit_subscriptions_token=_env_rate("RATE_LIMIT_SUBSCRIPTIONS_TOKEN", "20/3600"),
        rate_limit_subscriptions_endpoint=_env_rate("RATE_LIMIT_SUBSCRIPTIONS_ENDPOINT", "30/3600"),
        rate_limit_login=_env_rate("RATE_LIMIT_LOGIN", "100/900"),
        rate_limit_login_account=_env_rate("RATE_LIMIT_LOGIN_ACCOUNT", "10/900"),
        rate_limit_open311=_env_rate("RATE_LIMIT_OPEN311", "60/60,1000/3600"),
        forwarded_allow_ips=_env("FORWARDED_ALLOW_IPS", "").strip(),
    )
