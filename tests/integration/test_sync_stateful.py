"""Hypothesis stateful test: three crew devices of one crew and a dispatcher, against the real app
over real HTTP. Hypothesis chooses every edit, sync, fault (lost answer, held-back delivery,
duplicate, crash before/after a save, offline) and dispatcher action, and shrinks a failing run
to a minimal history. At the end of each run everyone syncs to a fixed point and the simulator's
checks run (convergence, no lost edit, empty outboxes, exactly-once materials, idempotent replay,
legal status history).
"""

from __future__ import annotations

from typing import Any, ClassVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from sync.client import DeviceCrash
from tests.sim import checks
from tests.sim.fleet import MATERIALS, OUTCOMES, Device, Fleet, SimConfig, uuid_from
from tests.sim.isolation import wipe_activity
from tests.sim.server import RestartableServer
from tests.sim.transport import FaultRates

DEVICES = st.integers(min_value=0, max_value=2)
ORDERS = st.integers(min_value=0, max_value=7)


class FleetMachine(RuleBasedStateMachine):
    server: ClassVar[RestartableServer]
    sessions: ClassVar[dict[str, tuple[dict[str, str], int]]] = {}
    runs: ClassVar[int] = 0

    @initialize()
    def start(self) -> None:
        wipe_activity()  # every history starts from the same database state
        FleetMachine.runs += 1
        config = SimConfig(
            seed=1,  # identical start for every history: shrinking must replay it
            devices=3,  # the first three demo crew members share one crew
            dispatchers=1,
            orders_per_crew=2,
            whole_shift_offline=0,
            restart_server=False,
            faults=FaultRates.none(),
        )
        self.fleet = Fleet(config, self.server, sessions=self.sessions)
        self.fleet.setup()
        self.fleet.other_crews = self.fleet.other_crews[:1]
        assert len({d.crew_id for d in self.fleet.devices}) == 1

    def teardown(self) -> None:
        fleet = getattr(self, "fleet", None)
        if fleet is None:
            return
        try:
            fleet.quiesce()
            conflicts = checks.all_conflicts(fleet.dispatchers[0])
            orders: dict[int, Any] = {}
            results = [
                checks.check_convergence(fleet),
                checks.check_no_lost_edit(fleet, conflicts, orders),
                checks.check_outboxes(fleet, conflicts),
                checks.check_exactly_once(fleet, orders),
                checks.check_idempotence(fleet),
                checks.check_status_history(fleet),
            ]
            failed = [r for r in results if not r.ok]
            assert not failed, "\n".join(str(r) for r in failed)
        finally:
            fleet.close()

    # ---------------------------------------------------------------- helpers
    def _device(self, index: int) -> Device:
        return self.fleet.devices[index]

    def _order(self, device: Device, pick: int) -> dict[str, Any] | None:
        view = device.client.view()
        orders = sorted(
            (v for k, v in view.items() if k.startswith("work_order/")), key=lambda o: o["id"]
        )
        mine = [o for o in orders if o["id"] in self.fleet.order_ids]
        if not mine:
            return None
        order = mine[pick % len(mine)]
        pulled = device.client.replica.get(f"work_order/{order['id']}", order)
        return {**order, "version": pulled.get("version")}

    def _run(self, device: Device, action: Any) -> None:
        try:
            action()
        except DeviceCrash:
            device.crash_and_restart()

    # ------------------------------------------------------------------ crews
    @rule(
        i=DEVICES,
        pick=ORDERS,
        status=st.sampled_from(["en_route", "on_site", "on_hold"]),
        stale=st.booleans(),
    )
    def set_status(self, i: int, pick: int, status: str, stale: bool) -> None:
        device = self._device(i)
        order = self._order(device, pick)
        if order is None:
            return
        if stale:
            order["version"] = 0
        args = {"status": status, **({"reason": "Attente"} if status == "on_hold" else {})}
        self._run(device, lambda: device.mutate("workorder.set_status@1", order, args))

    @rule(i=DEVICES, pick=ORDERS, outcome=st.sampled_from(OUTCOMES))
    def complete(self, i: int, pick: int, outcome: str) -> None:
        device = self._device(i)
        order = self._order(device, pick)
        if order is not None:
            args = {"outcome": outcome}
            self._run(device, lambda: device.mutate("workorder.complete@1", order, args))

    @rule(i=DEVICES, pick=ORDERS)
    def add_note(self, i: int, pick: int) -> None:
        device = self._device(i)
        order = self._order(device, pick)
        if order is not None:
            args = {"note_id": uuid_from(device.rng), "body": f"note {device.username}"}
            self._run(device, lambda: device.mutate("workorder.add_note@1", order, args, "note"))

    @rule(i=DEVICES, pick=ORDERS, material=st.sampled_from(MATERIALS), q=st.integers(1, 20))
    def add_material(self, i: int, pick: int, material: tuple[str, str], q: int) -> None:
        device = self._device(i)
        order = self._order(device, pick)
        if order is None:
            return
        args = {
            "entry_id": uuid_from(device.rng),
            "material_code": material[0],
            "quantity": q / 2,
            "unit": material[1],
        }
        self._run(
            device, lambda: device.mutate("workorder.add_material@1", order, args, "material")
        )

    @rule(i=DEVICES, pick=ORDERS)
    def void_material(self, i: int, pick: int) -> None:
        device = self._device(i)
        voided = {c.payload["voids"] for c in device.created.values() if c.kind == "void"}
        entries = sorted(
            (c.work_order_id, key)
            for key, c in device.created.items()
            if c.kind == "material" and key not in voided
        )
        if not entries:
            return
        wo_id, key = entries[pick % len(entries)]
        order = {"id": wo_id, "version": None}
        args = {"entry_id": uuid_from(device.rng), "voids": key}
        self._run(device, lambda: device.mutate("workorder.void_material@1", order, args, "void"))

    @rule(i=DEVICES, pick=ORDERS)
    def attach_photo(self, i: int, pick: int) -> None:
        device = self._device(i)
        order = self._order(device, pick)
        if order is not None:
            args = {
                "photo_id": uuid_from(device.rng),
                "sha256": f"{device.rng.getrandbits(256):064x}",
            }
            self._run(
                device, lambda: device.mutate("workorder.attach_photo@1", order, args, "photo")
            )

    @rule(i=DEVICES)
    def sync(self, i: int) -> None:
        device = self._device(i)
        self._run(device, lambda: device.client.sync(ignore_backoff=True))

    @rule(i=DEVICES)
    def push_only(self, i: int) -> None:
        device = self._device(i)
        self._run(device, lambda: device.client.push(ignore_backoff=True))

    @rule(i=DEVICES)
    def pull_only(self, i: int) -> None:
        device = self._device(i)
        self._run(device, lambda: device.client.pull(ignore_backoff=True))

    @rule(i=DEVICES, fault=st.sampled_from(["drop", "hold", "duplicate"]))
    def next_request_fails(self, i: int, fault: str) -> None:
        self._device(i).transport.forced.append(fault)

    @precondition(lambda self: any(d.transport.held for d in self.fleet.devices))
    @rule(i=DEVICES)
    def deliver_held(self, i: int) -> None:
        device = self._device(i)
        if device.transport.online:
            device.transport.deliver_held()

    @rule(i=DEVICES, when=st.sampled_from(["before", "after"]))
    def crash_at_next_save(self, i: int, when: str) -> None:
        self._device(i).storage.crash_next_save = when

    @rule(i=DEVICES)
    def cookie_expires(self, i: int) -> None:
        device = self._device(i)
        self._run(device, device.lose_cookie)

    @rule(i=DEVICES, online=st.booleans())
    def connectivity(self, i: int, online: bool) -> None:
        self._device(i).transport.online = online

    # -------------------------------------------------------------- dispatch
    def _dispatch(self, method: str, path: str, **kw: Any) -> None:
        response = self.fleet.dispatchers[0].call(method, path, **kw)
        assert response.status_code < 500, response.text

    @rule(pick=ORDERS, away=st.booleans())
    def reassign(self, pick: int, away: bool) -> None:
        fleet = self.fleet
        wo_id = fleet.order_ids[pick % len(fleet.order_ids)]
        crew = fleet.other_crews[0] if away else fleet.devices[0].crew_id
        self._dispatch("POST", f"/api/v1/work-orders/{wo_id}/assign", json={"crew_id": crew})

    @rule(pick=ORDERS)
    def cancel(self, pick: int) -> None:
        wo_id = self.fleet.order_ids[pick % len(self.fleet.order_ids)]
        self._dispatch("POST", f"/api/v1/work-orders/{wo_id}/cancel", json={"reason": "Doublon"})

    @rule(pick=ORDERS)
    def reopen(self, pick: int) -> None:
        wo_id = self.fleet.order_ids[pick % len(self.fleet.order_ids)]
        self._dispatch("POST", f"/api/v1/work-orders/{wo_id}/transition", json={"action": "reopen"})

    @rule(pick=ORDERS, priority=st.integers(1, 4))
    def reprioritise(self, pick: int, priority: int) -> None:
        wo_id = self.fleet.order_ids[pick % len(self.fleet.order_ids)]
        self._dispatch("POST", f"/api/v1/work-orders/{wo_id}/priority", json={"priority": priority})

    @rule()
    def resolve_a_conflict(self) -> None:
        self.fleet.dispatchers[0].resolve_one()

    # ------------------------------------------------------------- invariants
    @invariant()
    def outbox_ids_are_consecutive(self) -> None:
        for device in self.fleet.devices:
            state = device.client.state
            ids = [m["id"] for m in state["outbox"]]
            if ids:
                assert ids == list(range(ids[0], ids[-1] + 1)), ids
                assert ids[-1] == state["next_id"] - 1
                assert ids[0] == state["acked_through"] + 1, (ids, state["acked_through"])


def test_stateful_fleet_shrinks_to_minimal_histories(app: Any) -> None:
    from server.app import create_app
    from server.settings import get_settings

    with RestartableServer(lambda: create_app(get_settings()), first_app=app) as server:
        FleetMachine.server = server
        FleetMachine.sessions = {}
        run_state_machine_as_test(
            FleetMachine,
            settings=settings(
                max_examples=10,
                stateful_step_count=30,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )
