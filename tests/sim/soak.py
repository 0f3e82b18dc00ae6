"""``python -m tests.sim.soak``: fleet-simulator seeds until a target of simulated device-hours.

Each run is one seeded shift (``python -m tests.sim``, 08:00–19:00: ``devices × 11`` device-hours)
in its own process on a fresh database, alternating SQLite and PostgreSQL. The soak stops at the
target, at ``--max-runs`` or at ``--max-seconds`` (whichever comes first), prints one line per run
and a total: device-hours, mutations, losses (acknowledged edits the server lost: must be 0) and
wall time. Exit status 0 when every run passed every check and the target was reached.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass

SHIFT_HOURS = 11
_SUMMARY = re.compile(r"^sim seed=(\d+) devices=(\d+) .*?mutations=(\d+) ", re.MULTILINE)
_LOST_CHECK = "2 no acknowledged edit lost"


@dataclass
class SoakTotals:
    runs: int = 0
    failed_runs: int = 0
    device_hours: int = 0
    mutations: int = 0
    losses: int = 0


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.sim.soak", description=__doc__)
    parser.add_argument("--device-hours", type=int, default=100_000, help="target (default 100000)")
    parser.add_argument(
        "--devices",
        type=int,
        default=50,
        help="devices per shift (under 60: one per demo crew member, some crews left)",
    )
    parser.add_argument("--steps", type=int, default=66, help="steps per 11-hour shift")
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--max-runs", type=int, default=1_000)
    parser.add_argument("--max-seconds", type=float, default=6 * 3600.0)
    parser.add_argument(
        "--databases",
        default="sqlite,postgresql",
        help="comma-separated, alternated run by run (default sqlite,postgresql)",
    )
    return parser.parse_args(argv)


def losses_in(output: str) -> int:
    """Discrepancies reported by the 'no acknowledged edit lost' check of one verbose run."""
    lines = output.splitlines()
    for index, line in enumerate(lines):
        if line.startswith(_LOST_CHECK) and "FAILED" in line:
            return sum(1 for detail in lines[index + 1 :] if detail.startswith("  ")) or 1
    return 0


def run_one(seed: int, devices: int, steps: int, database: str) -> tuple[bool, int, int, str]:
    command = [sys.executable, "-m", "tests.sim", "--seed", str(seed), "--devices", str(devices)]
    command += ["--steps", str(steps), "-v"]
    if database == "postgresql":
        command.append("--postgres")
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy())
    output = done.stdout + done.stderr
    match = _SUMMARY.search(output)
    mutations = int(match.group(3)) if match else 0
    return done.returncode == 0 and match is not None, mutations, losses_in(output), output


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    databases = [name.strip() for name in args.databases.split(",") if name.strip()]
    totals = SoakTotals()
    started = time.monotonic()
    seed = args.first_seed
    while (
        totals.device_hours < args.device_hours
        and totals.runs < args.max_runs
        and time.monotonic() - started < args.max_seconds
    ):
        database = databases[totals.runs % len(databases)]
        mark = time.monotonic()
        passed, mutations, losses, output = run_one(seed, args.devices, args.steps, database)
        totals.runs += 1
        totals.failed_runs += 0 if passed else 1
        totals.device_hours += args.devices * SHIFT_HOURS if passed else 0
        totals.mutations += mutations
        totals.losses += losses
        verdict = "ok" if passed else "FAILED"
        print(
            f"run {totals.runs} seed={seed} {database}: devices={args.devices} "
            f"mutations={mutations} losses={losses} {time.monotonic() - mark:.0f}s {verdict}",
            flush=True,
        )
        if not passed:
            print(output[-4000:], flush=True)
        seed += 1
    wall = time.monotonic() - started
    reached = totals.device_hours >= args.device_hours
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(
        f"soak: device_hours={totals.device_hours} (target {args.device_hours}"
        f"{'' if reached else ', NOT reached'}) runs={totals.runs} failed={totals.failed_runs} "
        f"mutations={totals.mutations} losses={totals.losses} wall={wall:.0f}s load={load}",
        flush=True,
    )
    return 0 if reached and totals.failed_runs == 0 and totals.losses == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
