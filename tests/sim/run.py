"""Play one simulated shift and check it: shared by the CI test and ``python -m tests.sim``."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from tests.sim.checks import CheckResult, all_conflicts, run_checks
from tests.sim.fleet import Fleet, SimConfig
from tests.sim.server import RestartableServer


@dataclass
class SimReport:
    config: SimConfig
    devices: int
    mutations: int
    conflicts: int
    dead_letters: int
    duration_s: float
    checks: list[CheckResult] = field(default_factory=list)
    faults: dict[str, int] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=dict)
    phases: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(check.ok for check in self.checks)

    def summary(self) -> str:
        verdict = (
            "all checks passed"
            if self.passed
            else "CHECKS FAILED: " + ", ".join(c.name for c in self.checks if not c.ok)
        )
        return (
            f"sim seed={self.config.seed} devices={self.devices} steps={self.config.steps} "
            f"mutations={self.mutations} conflicts={self.conflicts} "
            f"dead_letters={self.dead_letters} crashes={self.stats.get('crashes', 0)} "
            f"lost_acks={self.faults.get('dropped_after_commit', 0)} "
            f"restarts={self.stats.get('server_restarts', 0)} "
            f"duration={self.duration_s:.1f}s: {verdict}"
        )

    def details(self) -> str:
        lines = [str(check) for check in self.checks]
        lines.append(f"phases (s): {self.phases}; faults: {self.faults}; stats: {self.stats}")
        return "\n".join(lines)


def run_simulation(config: SimConfig, server: RestartableServer) -> SimReport:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    fleet = Fleet(config, server)
    try:
        phases: dict[str, float] = {}
        mark = time.monotonic()
        for name, phase in (("setup", fleet.setup), ("shift", fleet.run), ("quiet", fleet.quiesce)):
            phase()
            phases[name] = round(time.monotonic() - mark, 2)
            mark = time.monotonic()
        conflicts = len(all_conflicts(fleet.dispatchers[0]))
        checks = run_checks(fleet)
        phases["checks"] = round(time.monotonic() - mark, 2)
        faults: dict[str, int] = {}
        for device in fleet.devices:
            for name, value in vars(device.transport.stats).items():
                faults[name] = faults.get(name, 0) + value
            faults["http_requests"] = (
                faults.get("http_requests", 0) + device.transport.inner.requests
            )
        return SimReport(
            config=config,
            devices=len(fleet.devices),
            mutations=fleet.stats.mutations,
            conflicts=conflicts,
            dead_letters=sum(len(d.client.dead_letters) for d in fleet.devices),
            duration_s=fleet.elapsed,
            checks=checks,
            faults=faults,
            stats=dict(vars(fleet.stats)),
            phases=phases,
        )
    finally:
        fleet.close()
