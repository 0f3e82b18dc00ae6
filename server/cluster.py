"""Several API and scheduler processes on one PostgreSQL, on one machine: ``tournee cluster``.

For trying the several-machines shape (docs/deploy.md) and for the cluster tests. :class:`Cluster`
starts, as child processes of this one,

- ``api`` API processes (``tournee run --no-migrate``, the in-process scheduler off:
  ``TOURNEE_SCHEDULER=0``) on ``base_port``, ``base_port + 1``, ...;
- ``schedulers`` scheduler processes (``tournee scheduler``);

all over the one PostgreSQL database named by ``TOURNEE_DATABASE_URL``, with live updates on
PostgreSQL LISTEN/NOTIFY (``TOURNEE_CHANNELS_BACKEND=postgres``), one secret key, one VAPID key
pair (read or created once here and handed to every child as a PEM, as separate machines would
be given it) and one photo directory. Migrations run once, before any child starts.

Children get their own session (a Ctrl-C in the terminal reaches this process only); this
process forwards SIGINT/SIGTERM as SIGTERM to each child, waits for their graceful shutdown and
SIGKILLs what is left after the grace period. Tests use :meth:`Cluster.kill` (SIGKILL by default)
and :meth:`Cluster.restart` on a named child (``api-1``, ``scheduler-2``).
"""

from __future__ import annotations

import collections
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from server.notify.webpush import VapidKeys

ROOT = Path(__file__).resolve().parent.parent

__all__ = ["Child", "Cluster", "ClusterError"]


class ClusterError(RuntimeError):
    """The cluster cannot start (configuration) or a child did not come up."""


@dataclass
class Child:
    """One child process: an API process (``url`` set) or a scheduler process."""

    name: str
    argv: list[str]
    url: str | None = None
    process: subprocess.Popen[str] | None = None
    starts: int = 0
    tail: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=60))
    ready: threading.Event = field(default_factory=threading.Event)
    _reader: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def recent_output(self) -> str:
        return "".join(self.tail)


def _is_postgres(url: str) -> bool:
    return url.startswith(("postgresql:", "postgresql+asyncpg:", "postgres:"))


class Cluster:
    """``api`` API processes and ``schedulers`` scheduler processes over one PostgreSQL.

    ``env`` is the children's environment (default: this process's); it must name a PostgreSQL
    database in ``TOURNEE_DATABASE_URL``. ``log_dir`` receives one ``<name>.log`` per child;
    ``echo`` also prints every child line prefixed with its name (the CLI).
    """

    def __init__(
        self,
        *,
        api: int = 3,
        schedulers: int = 2,
        base_port: int = 8001,
        host: str = "127.0.0.1",
        env: Mapping[str, str] | None = None,
        log_dir: Path | None = None,
        echo: bool = False,
        python: str = sys.executable,
        start_timeout: float = 60.0,
    ) -> None:
        if api < 1 or schedulers < 0:
            raise ClusterError("a cluster needs at least one API process")
        self.env = dict(os.environ if env is None else env)
        self.host = host
        self.echo = echo
        self.python = python
        self.start_timeout = start_timeout
        url = self.env.get("TOURNEE_DATABASE_URL", "")
        if not _is_postgres(url):
            raise ClusterError(
                "needs PostgreSQL: several processes share one database, "
                "which SQLite cannot be for them. Set TOURNEE_DATABASE_URL="
                "postgresql://user@host:5432/dbname (got "
                f"{url or 'nothing: the default SQLite file'})."
            )
        self.var_dir = Path(self.env.get("TOURNEE_VAR_DIR", "var")).resolve()
        self.log_dir = log_dir
        self._lock = threading.Lock()
        self.children: dict[str, Child] = {}
        command = [python, "-m", "server.cli"]
        for i in range(api):
            port = base_port + i
            self.children[f"api-{i + 1}"] = Child(
                f"api-{i + 1}",
                [*command, "run", "--no-migrate", "--host", host, "--port", str(port)],
                url=f"http://{host}:{port}",
            )
        for i in range(schedulers):
            self.children[f"scheduler-{i + 1}"] = Child(
                f"scheduler-{i + 1}", [*command, "scheduler"]
            )

    # --------------------------------------------------------------------- set-up
    @property
    def api_urls(self) -> list[str]:
        return [c.url for c in self.children.values() if c.url is not None]

    @property
    def api_names(self) -> list[str]:
        return [name for name, c in self.children.items() if c.url is not None]

    @property
    def scheduler_names(self) -> list[str]:
        return [name for name, c in self.children.items() if c.url is None]

    def prepare(self, *, demo: bool = False) -> None:
        """Shared secrets, migrations (once) and optionally the demo city, before any child."""
        self.var_dir.mkdir(parents=True, exist_ok=True)
        self.env["TOURNEE_VAR_DIR"] = str(self.var_dir)
        self.env.setdefault("TOURNEE_PHOTO_DIR", str(self.var_dir / "photos"))
        if not self.env.get("TOURNEE_SECRET_KEY"):
            secret_file = self.var_dir / "secret_key"
            if not secret_file.exists():
                secret_file.write_text(secrets.token_hex(32))
                secret_file.chmod(0o600)
            self.env["TOURNEE_SECRET_KEY"] = secret_file.read_text().strip()
        self.env["TOURNEE_VAPID_PRIVATE_KEY"] = self._shared_vapid_pem()
        self.env["TOURNEE_CHANNELS_BACKEND"] = "postgres"
        # 3 API + 2 scheduler processes at the default pool (10 + 10 overflow each) could ask for
        # more than PostgreSQL's default max_connections (100): smaller pools unless told
        self.env.setdefault("TOURNEE_DB_POOL_SIZE", "5")
        self.env["PYTHONUNBUFFERED"] = "1"
        step = ["demo"] if demo else ["migrate"]
        done = subprocess.run(
            [self.python, "-m", "server.cli", *step],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise ClusterError(f"`tournee {step[0]}` failed:\n{done.stdout}{done.stderr}")
        if self.echo:
            print(done.stdout, end="", flush=True)

    def _shared_vapid_pem(self) -> str:
        configured = self.env.get("TOURNEE_VAPID_PRIVATE_KEY", "").strip()
        if configured.startswith("-----BEGIN"):
            return configured
        path = Path(configured) if configured else self.var_dir / "vapid_private.pem"
        VapidKeys.load_or_create(path)  # created once, here, if missing
        return path.read_text()

    # ------------------------------------------------------------------ children
    def _child_env(self, child: Child) -> dict[str, str]:
        env = dict(self.env)
        if child.url is not None:
            env["TOURNEE_SCHEDULER"] = "0"  # the scheduler processes run the jobs
        return env

    def _pump(self, child: Child, stream: IO[str], log: IO[str] | None) -> None:
        for line in stream:
            child.tail.append(line)
            if log is not None:
                log.write(line)
                log.flush()
            if self.echo:
                sys.stdout.write(f"[{child.name}] {line}")
                sys.stdout.flush()
            if child.url is None and line.startswith("scheduler started"):
                child.ready.set()
        if log is not None:
            log.close()

    def _spawn(self, child: Child) -> None:
        if "TOURNEE_VAPID_PRIVATE_KEY" not in self.env:
            raise ClusterError("call prepare() before start()")
        child.ready.clear()
        child.tail.clear()
        log: IO[str] | None = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            log = (self.log_dir / f"{child.name}.log").open("a", encoding="utf-8")
            log.write(f"--- start {child.starts + 1} at {time.strftime('%H:%M:%S')}\n")
        child.process = subprocess.Popen(
            child.argv,
            env=self._child_env(child),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            bufsize=1,
            start_new_session=True,  # signals come from us, not from the terminal
        )
        child.starts += 1
        assert child.process.stdout is not None
        child._reader = threading.Thread(
            target=self._pump, args=(child, child.process.stdout, log), daemon=True
        )
        child._reader.start()

    def _wait_ready(self, child: Child) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if not child.alive:
                raise ClusterError(
                    f"{child.name} exited ({child.process.returncode if child.process else '?'})"
                    f" before it was ready:\n{child.recent_output()}"
                )
            if child.url is None:
                if child.ready.wait(0.1):
                    return
                continue
            try:
                with urllib.request.urlopen(child.url + "/healthz", timeout=2) as answer:
                    if answer.status == 200:
                        child.ready.set()
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise ClusterError(f"{child.name} not ready after {self.start_timeout}s:\n"
                           f"{child.recent_output()}")  # fmt: skip

    def start(self) -> Cluster:
        """Start every child and wait until each is ready (API: /healthz 200; scheduler: its
        ``scheduler started`` line)."""
        with self._lock:
            for child in self.children.values():
                if not child.alive:
                    self._spawn(child)
            try:
                for child in self.children.values():
                    self._wait_ready(child)
            except BaseException:
                self._stop_all(grace=5)
                raise
        return self

    def kill(self, name: str, sig: int = signal.SIGKILL, timeout: float = 60.0) -> int | None:
        """Send ``sig`` to one child and wait for it to exit; its exit status."""
        child = self.children[name]
        if child.process is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            child.process.send_signal(sig)
        return child.process.wait(timeout=timeout)

    def restart(self, name: str) -> None:
        """Start a child again (after :meth:`kill`, or stop it gracefully first)."""
        child = self.children[name]
        with self._lock:
            if child.alive:
                self.kill(name, signal.SIGTERM)
            self._spawn(child)
            self._wait_ready(child)

    def _stop_all(self, grace: float) -> dict[str, int | None]:
        for child in self.children.values():
            if child.alive and child.process is not None:
                with contextlib.suppress(ProcessLookupError):
                    child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        codes: dict[str, int | None] = {}
        for name, child in self.children.items():
            if child.process is None:
                codes[name] = None
                continue
            try:
                codes[name] = child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                codes[name] = child.process.wait()
            if child._reader is not None:
                child._reader.join(timeout=5)
        return codes

    def stop(self, grace: float | None = None) -> dict[str, int | None]:
        """SIGTERM every child, wait for them (``grace`` seconds: by default the API processes'
        graceful-shutdown timeout plus the longest scheduler batch), then SIGKILL what is left.
        Exit statuses by name (``-15`` is a clean stop by SIGTERM: uvicorn re-raises it)."""
        if grace is None:
            grace = float(self.env.get("TOURNEE_SHUTDOWN_GRACE_SECONDS", "20")) + 20
        with self._lock:
            return self._stop_all(grace)

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def describe(self) -> str:
        lines = ["Tournée cluster:"]
        for name, child in self.children.items():
            where = child.url or "scheduled jobs"
            lines.append(f"  {name:<12} pid {child.pid or '-':<8} {where}")
        # every API process is `tournee run`, which passes this to uvicorn (docs/deploy.md)
        trusted = self.env.get("TOURNEE_FORWARDED_ALLOW_IPS", "").strip()
        lines.append(f"  X-Forwarded-For trusted from: {trusted or 'nobody'}")
        return "\n".join(lines)


def run_cluster(
    *, api: int, schedulers: int, base_port: int, host: str, demo: bool, log_dir: Path | None
) -> int:
    """``tournee cluster``: start, print where everything is, forward SIGINT/SIGTERM, stop."""
    try:
        cluster = Cluster(
            api=api, schedulers=schedulers, base_port=base_port, host=host, echo=True,
            log_dir=log_dir,
        )  # fmt: skip
        cluster.prepare(demo=demo)
    except ClusterError as exc:
        print(f"tournee cluster: {exc}", file=sys.stderr)
        return 2
    stopping = threading.Event()

    def forward(signum: int, _frame: object) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            cluster.start()
        except ClusterError as exc:
            print(f"tournee cluster: {exc}", file=sys.stderr)
            return 1
        print(cluster.describe(), flush=True)
        for url in cluster.api_urls:
            print(f"  open {url}/  (API docs {url}/schema)", flush=True)
        print("Put a load balancer in front of them (docs/deploy.md); Ctrl-C stops everything.")
        reported: set[tuple[str, int]] = set()
        while not stopping.wait(0.5):
            for name, child in cluster.children.items():
                if child.process is not None and not child.alive:
                    key = (name, child.starts)
                    if key not in reported:
                        reported.add(key)
                        print(f"[cluster] {name} exited with status {child.process.returncode}",
                              flush=True)  # fmt: skip
        print("[cluster] stopping: SIGTERM to every process", flush=True)
        codes = cluster.stop()
        print(f"[cluster] stopped: {codes}", flush=True)
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
