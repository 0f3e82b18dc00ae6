"""The demo city and the `tournee` command, as a new installation runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

from server.db import Database
from server.requests.models import ServiceRequest
from server.settings import get_settings
from server.workorders.models import WorkOrder
from tests.support.cli import tournee


async def test_demo_seed_gives_a_realistic_city(database_url: str) -> None:
    from server.seed import seed_demo
    from tests.support.data import reset

    db = Database(get_settings())
    try:
        await reset(db)
        assert await seed_demo(get_settings(), requests=300, seed=7) is True
        assert await seed_demo(get_settings(), requests=300, seed=7) is False, "seeds only once"
        async with db.transaction() as tx:
            requests = (
                await tx.execute(select(func.count()).select_from(ServiceRequest))
            ).scalar_one()
            open_requests = (
                await tx.execute(select(func.count()).where(ServiceRequest.status != "closed"))
            ).scalar_one()
            by_type = dict(
                (
                    await tx.execute(
                        text(
                            "SELECT st.category, count(*) FROM service_request r "
                            "JOIN service_type st ON st.id = r.service_type_id GROUP BY st.category"
                        )
                    )
                ).all()
            )
            orders = (await tx.execute(select(func.count()).select_from(WorkOrder))).scalar_one()
            audited = (
                await tx.execute(
                    text(
                        "SELECT count(DISTINCT entity_id) FROM audit_event"
                        " WHERE entity_type='work_order'"
                    )
                )
            ).scalar_one()
        assert requests == 300
        assert open_requests >= 200
        assert by_type["waste"] > by_type["snow"] > by_type.get("other", 0)
        assert orders > 100
        assert audited == orders, "every seeded work order has its history"
    finally:
        await db.dispose()
        # leave the database as the other tests expect it
        db = Database(get_settings())
        from tests.support.data import reset_and_seed

        await reset_and_seed(db)
        await db.dispose()


def _tournee(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return tournee(tmp_path, *args)


def test_cli_migrate_demo_and_create_user(tmp_path: Path) -> None:
    result = _tournee(tmp_path, "demo", "--requests", "50")
    assert result.returncode == 0, result.stderr
    assert "repartiteur1" in result.stdout and "repartition-demo" in result.stdout
    assert (tmp_path / "var" / "secret_key").exists()
    assert oct((tmp_path / "var" / "secret_key").stat().st_mode & 0o777) == "0o600"
    again = _tournee(tmp_path, "demo")
    assert again.returncode == 0 and "not re-seeded" in again.stdout
    created = _tournee(
        tmp_path,
        "create-user",
        "newdispatcher",
        "--role",
        "dispatcher",
        "--password",
        "long-enough-pw",
    )
    assert created.returncode == 0, created.stderr
    import sqlite3

    from server.accounts.auth import verify_password

    with sqlite3.connect(tmp_path / "cli.sqlite3") as conn:
        role, password_hash = conn.execute(
            "SELECT role, password_hash FROM user_account WHERE username='newdispatcher'"
        ).fetchone()
    assert role == "dispatcher"
    assert password_hash.startswith("$argon2")
    assert verify_password(password_hash, "long-enough-pw")
    assert not verify_password(password_hash, "wrong-password")
    bad = _tournee(tmp_path, "create-user", "x", "--role", "boss", "--password", "p")
    assert bad.returncode != 0


async def test_unknown_user_cannot_sign_in(client: Any) -> None:
    response = await client.post(
        "/api/v1/auth/login", json={"username": "nobody", "password": "whatever-long"}
    )
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"


def test_run_on_an_empty_database_says_how_to_get_the_first_admin(tmp_path: Path) -> None:
    from tests.support.live_server import free_port

    env = {
        **os.environ,
        "TOURNEE_VAR_DIR": str(tmp_path / "var"),
        "TOURNEE_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}",
        "TOURNEE_SCHEDULER": "0",
    }
    env.pop("TOURNEE_SECRET_KEY", None)
    port = str(free_port())
    process = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "run", "--port", port],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = []
        for _ in range(60):
            line = process.stdout.readline()
            lines.append(line)
            if "No admin yet" in line or "Uvicorn running" in line:
                break
        assert any("tournee create-user <name> --role admin" in line for line in lines), lines
    finally:
        process.terminate()
        process.wait(timeout=30)
    created = subprocess.run(
        [
            sys.executable,
            "-m",
            "server.cli",
            "create-user",
            "first",
            "--role",
            "admin",
            "--password",
            "x" * 12,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert created.returncode == 0, created.stderr
