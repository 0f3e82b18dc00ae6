"""The ``tournee`` command: run, migrate, demo, create-user, scheduler, vapid, cluster, backup,
restore, city import, photos migrate.

One function per command and the argparse tree that documents them (~450 lines, most of it
help text). Lazy imports (the one module allowed them, tests/unit/test_architecture.py): each
command imports what it runs inside its function, so ``tournee --help`` and a one-line
misconfiguration message stay instant and never load the web app, the scheduler or the S3
client they do not need."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Sequence
from typing import Any

from server.settings import ConfigError, Settings, check_settings, get_settings


def _preflight(*, push: bool = True) -> Settings:
    """Settings that can work, or ConfigError. ``push``: this command sends Web Push (serves
    the API or runs the jobs): load the VAPID key now and print the warnings (one line each)."""
    settings = get_settings()
    warnings = check_settings(settings)
    if push:
        for warning in warnings:
            print(f"tournee: warning: {warning}", file=sys.stderr)
        from server.notify.service import load_vapid_keys

        load_vapid_keys(settings)  # a bad PEM stops here, not in the first push
    return settings


def _database_problem(exc: BaseException) -> str | None:
    """One line for a database that cannot be used, or None when ``exc`` is something else."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    try:
        where = make_url(get_settings().database_url).render_as_string(hide_password=True)
    except Exception:  # the URL itself is the problem: ConfigError says so
        where = "TOURNEE_DATABASE_URL"
    if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
        return f"cannot reach the database {where}: {exc.strerror or exc}"
    if isinstance(exc, (DBAPIError, OperationalError, InterfaceError)):
        reason = str(exc.orig if exc.orig is not None else exc).strip().splitlines()[0]
        return f"cannot use the database {where}: {reason}"
    return None


def _migrate(_: argparse.Namespace) -> int:
    from server.migrate import upgrade

    _preflight(push=False)
    upgrade()
    print("Migrations applied.")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from server.migrate import upgrade
    from server.seed import print_logins, seed_demo

    _preflight(push=False)
    upgrade()
    seeded = asyncio.run(seed_demo(get_settings(), requests=args.requests, seed=args.seed))
    print("Demo city seeded." if seeded else "Database already has data; demo not re-seeded.")
    print_logins()
    return 0


def uvicorn_proxy_options(settings: Settings) -> dict[str, Any]:
    """X-Forwarded-For/-Proto are trusted only from TOURNEE_FORWARDED_ALLOW_IPS (default none:
    uvicorn's own default trusts 127.0.0.1, so anyone reaching the app through a local proxy, or
    directly from the same host, could forge an address and escape the rate limits)."""
    allowed = settings.forwarded_allow_ips
    if not allowed:
        return {"proxy_headers": False, "forwarded_allow_ips": ""}
    return {"proxy_headers": True, "forwarded_allow_ips": allowed}


def _run(args: argparse.Namespace) -> int:
    import uvicorn

    settings = _preflight()
    if not args.no_migrate:
        from server.migrate import upgrade

        upgrade()
    if args.demo:
        from server.seed import print_logins, seed_demo

        asyncio.run(seed_demo(settings))
        print_logins()
    else:
        from server.seed import FIRST_ADMIN_HINT, has_admin

        if not asyncio.run(has_admin(settings)):
            print(FIRST_ADMIN_HINT)
    host = args.host or settings.host
    port = args.port or settings.port
    print(f"Tournée: http://{host}:{port}  (OpenAPI: http://{host}:{port}/schema/openapi.json)")
    print(f"Database: {settings.database_kind}")
    print(f"Push services allowed: {', '.join(settings.push_endpoint_hosts)}")
    trusted = settings.forwarded_allow_ips
    print(f"Forwarded headers trusted from: {trusted or 'nobody (TOURNEE_FORWARDED_ALLOW_IPS)'}")
    from server.logs import configure_logging

    configure_logging(settings)
    uvicorn.run(
        "server.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=args.workers,
        **uvicorn_proxy_options(settings),
        log_level="info",
        # server/logs.py: structured lines; one per request from our middleware, secrets masked
        log_config=None,
        access_log=False,
        # SIGTERM: stop accepting, end SSE streams, let in-flight requests finish this long
        timeout_graceful_shutdown=max(1, round(settings.shutdown_grace_seconds)),
    )
    return 0


MIN_PASSWORD = 8  # as the API's UserCreate


def _create_user(args: argparse.Namespace) -> int:
    from server.seed import create_user_cli

    _preflight(push=False)
    if args.role == "crew" and not args.crew:
        raise ConfigError("a crew member needs --crew CODE")
    password = args.password or getpass.getpass("Mot de passe / password: ")
    if len(password) < MIN_PASSWORD:
        raise ConfigError(f"the password must have at least {MIN_PASSWORD} characters")
    asyncio.run(
        create_user_cli(
            get_settings(),
            username=args.username,
            display_name=args.display_name or args.username,
            role=args.role,
            crew_code=args.crew,
            password=password,
        )
    )
    print(f"User {args.username} created.")
    return 0


def _scheduler(_: argparse.Namespace) -> int:
    from server.logs import configure_logging
    from server.scheduler import run_scheduler

    settings = _preflight()
    configure_logging(settings)
    print(f"Push services allowed: {', '.join(settings.push_endpoint_hosts)}", flush=True)
    asyncio.run(run_scheduler(settings))
    return 0


def _vapid(_: argparse.Namespace) -> int:
    from server.notify.service import load_vapid_keys

    settings = _preflight()
    keys = load_vapid_keys(settings)
    source = settings.vapid_private_key
    where = "TOURNEE_VAPID_PRIVATE_KEY (PEM)" if source.startswith("-----BEGIN") else source
    print(f"VAPID private key: {where}")
    print(f"VAPID public key (applicationServerKey): {keys.public_key_b64url}")
    print(f"VAPID subject: {settings.vapid_subject}")
    print(f"Push services allowed: {', '.join(settings.push_endpoint_hosts)}")
    return 0


def _cluster(args: argparse.Namespace) -> int:
    from pathlib import Path

    from server.cluster import run_cluster

    if get_settings().is_postgres:  # on SQLite run_cluster refuses, nothing made
        _preflight()
    return run_cluster(
        api=args.api,
        schedulers=args.schedulers,
        base_port=args.base_port,
        host=args.host,
        demo=args.demo,
        log_dir=Path(args.log_dir) if args.log_dir else None,
    )


def _backup(args: argparse.Namespace) -> int:
    from pathlib import Path

    from server.backup import BackupError, backup

    try:
        manifest = backup(get_settings(), Path(args.dest))
    except BackupError as exc:
        print(f"tournee backup: {exc}", file=sys.stderr)
        return 1
    rows = sum(manifest["rows_at_start"].values())
    keys = ", ".join(manifest["keys"]) or "-"
    print(
        f"Backup in {args.dest}: {manifest['database']} database ({rows} rows), "
        f"{len(manifest['photos'])} photo files, keys: {keys}"
    )
    return 0


def _restore(args: argparse.Namespace) -> int:
    from pathlib import Path

    from server.backup import BackupError, restore

    try:
        counts = restore(get_settings(), Path(args.source), force=args.force)
    except BackupError as exc:
        print(f"tournee restore: {exc}", file=sys.stderr)
        return 1
    print(f"Restored from {args.source}: {sum(counts.values())} rows in {len(counts)} tables.")
    return 0


def _city_import(args: argparse.Namespace) -> int:
    from pathlib import Path

    from server.city_import import (
        CityData,
        CityFileError,
        apply,
        read_boroughs,
        read_crews,
        read_service_types,
    )
    from server.db import Database
    from server.errors import DomainError

    settings = _preflight(push=False)
    if not (args.boroughs or args.service_types or args.crews):
        raise ConfigError("city import: give --boroughs, --service-types and/or --crews")
    try:
        data = CityData(
            boroughs=read_boroughs(Path(args.boroughs)) if args.boroughs else [],
            service_types=read_service_types(Path(args.service_types))
            if args.service_types
            else [],
            crews=read_crews(Path(args.crews)) if args.crews else [],
        )
    except CityFileError as exc:
        print(f"tournee city import: {exc}", file=sys.stderr)
        return 1

    async def save() -> dict[str, tuple[int, int]]:
        db = Database(settings)
        try:
            async with db.transaction() as tx:
                return await apply(tx, data)
        finally:
            await db.dispose()

    try:
        report = asyncio.run(save())
    except DomainError as exc:  # e.g. a crew naming a borough that exists nowhere
        print(f"tournee city import: {exc.code} {exc.params}; nothing imported", file=sys.stderr)
        return 1
    for kind, (created, updated) in report.items():
        print(f"{kind.replace('_', ' ')}: {created} created, {updated} updated")
    print("Requests already recorded keep their borough; new ones are placed with these limits.")
    return 0


def _city_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from server.city_import import export
    from server.db import Database

    settings = _preflight(push=False)

    async def write() -> list[Path]:
        db = Database(settings)
        try:
            async with db.transaction() as tx:
                return await export(tx, Path(args.directory))
        finally:
            await db.dispose()

    for path in asyncio.run(write()):
        print(f"written: {path}")
    return 0


def _photos_migrate(args: argparse.Namespace) -> int:
    import dataclasses

    from server.photos.migrate import migrate_to_s3
    from server.photos.s3store import S3PhotoStore
    from server.photos.service import make_photo_store

    settings = get_settings()
    target = make_photo_store(dataclasses.replace(settings, photo_store="s3"))
    assert isinstance(target, S3PhotoStore)
    report = asyncio.run(migrate_to_s3(settings.photo_dir, target))
    print(
        f"{report.copied} originals copied and verified, {report.skipped} already there, "
        f"{report.copies} public copies copied, {len(report.damaged)} damaged"
    )
    for sha256 in report.damaged:
        print(f"damaged (not copied): {sha256}", file=sys.stderr)
    return 0 if report.ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tournee", description="Tournée 311 dispatch service")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="apply migrations and serve the API and PWA")
    run.add_argument("--host", help="address to listen on (TOURNEE_HOST, 127.0.0.1)")
    run.add_argument("--port", type=int, help="port to listen on (TOURNEE_PORT, 8000)")
    run.add_argument(
        "--workers", type=int, default=1, help="uvicorn worker processes (1; PostgreSQL for more)"
    )
    run.add_argument("--demo", action="store_true", help="seed the demo city if the DB is empty")
    run.add_argument(
        "--no-migrate", action="store_true", help="do not apply migrations before serving"
    )
    run.set_defaults(func=_run)

    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=_migrate)

    demo = sub.add_parser("demo", help="seed the Québec City demo data (empty database only)")
    demo.add_argument(
        "--requests", type=int, default=300, help="service requests to generate (300)"
    )
    demo.add_argument(
        "--seed", type=int, default=311, help="random seed of the generated requests (311)"
    )
    demo.set_defaults(func=_demo)

    user = sub.add_parser("create-user", help="create a user (admin, dispatcher or crew)")
    user.add_argument("username", help="sign-in name")
    user.add_argument(
        "--role",
        choices=["admin", "dispatcher", "crew"],
        required=True,
        help="what the user may do",
    )
    user.add_argument("--display-name", help="name shown to others (the username)")
    user.add_argument("--crew", help="crew code (crew members)")
    user.add_argument("--password", help="prompted when omitted")
    user.set_defaults(func=_create_user)
    sub.add_parser(
        "scheduler", help="run only the scheduled jobs (push delivery, SLA, pruning, photos)"
    ).set_defaults(func=_scheduler)
    sub.add_parser(
        "vapid", help="create the Web Push (VAPID) key pair if missing and show the public key"
    ).set_defaults(func=_vapid)
    cluster = sub.add_parser(
        "cluster",
        help="try several machines on one: N API processes and M scheduler processes "
        "on one PostgreSQL (TOURNEE_DATABASE_URL)",
    )
    cluster.add_argument("--api", type=int, default=3, help="API processes (default 3)")
    cluster.add_argument("--schedulers", type=int, default=2, help="scheduler processes (2)")
    cluster.add_argument("--base-port", type=int, default=8001, help="first API port (8001)")
    cluster.add_argument("--host", default="127.0.0.1", help="address the API processes use")
    cluster.add_argument("--demo", action="store_true", help="seed the demo city if empty")
    cluster.add_argument("--log-dir", help="also write one <name>.log per process here")
    cluster.set_defaults(func=_cluster)
    saved = sub.add_parser(
        "backup",
        help="copy the database (SQLite online backup or pg_dump), photos and keys to a folder",
    )
    saved.add_argument("dest", help="folder to create (must be absent or empty)")
    saved.set_defaults(func=_backup)
    back = sub.add_parser(
        "restore", help="restore a `tournee backup` folder into the configured database and var/"
    )
    back.add_argument("source", help="a folder written by `tournee backup`")
    back.add_argument(
        "--force", action="store_true", help="overwrite an existing SQLite file / clean PostgreSQL"
    )
    back.set_defaults(func=_restore)
    city = sub.add_parser("city", help="the city's reference data")
    city_sub = city.add_subparsers(
        dest="city_command", required=True, help="import or export (docs/city.md)"
    )
    load = city_sub.add_parser(
        "import",
        help="create or update boroughs, service types and crews from files, in one transaction "
        "(a bad line anywhere imports nothing)",
    )
    load.add_argument(
        "--boroughs",
        metavar="FILE.geojson",
        help="GeoJSON FeatureCollection: Polygon/MultiPolygon features with 'code' and 'name'",
    )
    load.add_argument(
        "--service-types",
        metavar="FILE.yaml",
        help="YAML list of service types (SLA hours, priority, Open311 attributes)",
    )
    load.add_argument(
        "--crews", metavar="FILE.csv", help="CSV with the header code,name,borough_code,kind"
    )
    load.set_defaults(func=_city_import)
    dump = city_sub.add_parser(
        "export", help="write boroughs.geojson, service-types.yaml and crews.csv of this database"
    )
    dump.add_argument("directory", help="where to write the three files (created if missing)")
    dump.set_defaults(func=_city_export)
    photos = sub.add_parser("photos", help="photo store maintenance")
    photos_sub = photos.add_subparsers(
        dest="photos_command", required=True, help="migrate: copy the file store into S3"
    )
    move = photos_sub.add_parser(
        "migrate",
        help="copy the file store (TOURNEE_PHOTO_DIR) into the S3 bucket (TOURNEE_S3_*), "
        "verifying every sha256; resumable",
    )
    move.add_argument(
        "--to", choices=["s3"], required=True, help="the target store (the TOURNEE_S3_* bucket)"
    )
    move.set_defaults(func=_photos_migrate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Misconfiguration and unusable databases end with one line on stderr and status 2."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"tournee: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        message = _database_problem(exc)
        if message is None:
            raise
        print(f"tournee: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
