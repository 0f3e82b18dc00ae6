"""Misconfiguration and the ``tournee`` command: one clear line and a non-zero exit, never a
traceback (issue 12, "Misconfiguration and the CLI"). Real subprocesses, as an operator runs them.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.pg import database_url

PLACEHOLDER_WARNING = "TOURNEE_VAPID_SUBJECT is the placeholder"


def _tournee(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "TOURNEE_VAR_DIR": str(tmp_path / "var"),
        "TOURNEE_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}",
        **env,
    }
    environment.pop("TOURNEE_VAPID_SUBJECT", None) if "TOURNEE_VAPID_SUBJECT" not in env else None
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _one_line_refusal(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if not line.startswith("tournee: warn")]
    assert len(errors) == 1, result.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("postgresql://postgres:hunter22@127.0.0.1:1/tournee", "cannot reach the database"),
        ("mysql://user@127.0.0.1/tournee", "unsupported database 'mysql'"),
        ("::not a url::", "is not a database URL"),
        ("sqlite:///{tmp}/no/such/dir/x.sqlite3", "no/such/dir does not exist"),
    ],
)
def test_an_unusable_database_url_is_one_line(tmp_path: Path, url: str, needle: str) -> None:
    url = url.replace("{tmp}", str(tmp_path))
    line = _one_line_refusal(_tournee(tmp_path, "migrate", TOURNEE_DATABASE_URL=url), needle)
    assert "hunter22" not in line  # never the password


def test_a_missing_postgresql_database_is_one_line(tmp_path: Path) -> None:
    url = database_url("tournee_no_such_database_12")
    result = _tournee(tmp_path, "migrate", TOURNEE_DATABASE_URL=url)
    _one_line_refusal(result, "tournee_no_such_database_12", "does not exist")


def test_a_bad_vapid_subject_refuses_to_start(tmp_path: Path) -> None:
    for command in (["run", "--no-migrate"], ["scheduler"], ["vapid"]):
        result = _tournee(tmp_path, *command, TOURNEE_VAPID_SUBJECT="not-a-mailto")
        _one_line_refusal(result, "TOURNEE_VAPID_SUBJECT", "not-a-mailto")


def test_a_bad_vapid_key_refuses_to_start(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    for value in (str(bad), bad.read_text()):
        result = _tournee(
            tmp_path, "run", "--no-migrate", TOURNEE_VAPID_PRIVATE_KEY=value,
            TOURNEE_VAPID_SUBJECT="mailto:311@example.org",
        )  # fmt: skip
        _one_line_refusal(result, "TOURNEE_VAPID_PRIVATE_KEY", "P-256")


def test_the_placeholder_vapid_subject_is_a_warning(tmp_path: Path) -> None:
    warned = _tournee(tmp_path, "vapid")
    assert warned.returncode == 0, warned.stderr
    assert PLACEHOLDER_WARNING in warned.stderr
    quiet = _tournee(tmp_path, "vapid", TOURNEE_VAPID_SUBJECT="mailto:311@example.org")
    assert quiet.returncode == 0, quiet.stderr
    assert PLACEHOLDER_WARNING not in quiet.stderr


def test_create_user_refuses_short_passwords_duplicates_and_unknown_crews(tmp_path: Path) -> None:
    assert _tournee(tmp_path, "demo", "--requests", "5").returncode == 0
    short = _tournee(tmp_path, "create-user", "court", "--role", "dispatcher", "--password", "x")
    _one_line_refusal(short, "at least 8 characters")
    duplicate = _tournee(
        tmp_path, "create-user", "Repartiteur1", "--role", "dispatcher", "--password", "long-enough"
    )
    line = _one_line_refusal(duplicate, "already taken", "repartiteur1")
    assert "argon2" not in duplicate.stderr + duplicate.stdout
    assert "$" not in line
    crew = _tournee(
        tmp_path, "create-user", "nouveau", "--role", "crew", "--crew", "no-such-crew",
        "--password", "long-enough",
    )  # fmt: skip
    _one_line_refusal(crew, "no-such-crew")
    with sqlite3.connect(tmp_path / "cli.sqlite3") as conn:
        names = {row[0] for row in conn.execute("SELECT username FROM user_account")}
    assert not {"court", "nouveau"} & names


def test_demo_tracking_tokens_are_not_predictable(tmp_path: Path) -> None:
    tokens = []
    for run in ("a", "b"):
        where = tmp_path / run
        env = {"TOURNEE_DATABASE_URL": f"sqlite:///{where / 'demo.sqlite3'}"}
        where.mkdir()
        result = _tournee(where, "demo", "--requests", "5", "--seed", "311", **env)
        assert result.returncode == 0, result.stderr
        with sqlite3.connect(where / "demo.sqlite3") as conn:
            tokens.append(
                [
                    r[0]
                    for r in conn.execute("SELECT tracking_token FROM service_request ORDER BY id")
                ]
            )
    assert len(tokens[0]) == 5
    assert not set(tokens[0]) & set(tokens[1]), "the same seed must not give the same tokens"
    assert all(len(token) >= 32 and not token.startswith("demo-") for token in tokens[0])
