"""Deterministic fleet simulator: crew devices and dispatchers against the real app over HTTP.

Everything the simulation *decides* comes from ``random.Random(seed)`` (one child generator per
device and per dispatcher) and a simulated clock: the shift runs 08:00–19:00 city time in fixed
steps; no decision reads the wall clock. The server's own timestamps do not feed back into the
decisions, so a seed replays the same history.

Faults injected (see ``tests/sim/transport.py`` for the network ones): offline windows up to the
whole shift, answers lost after the server committed, duplicated and held-back (reordered)
deliveries, device crashes at any save of the outbox (restart from the persisted document), device
clock skew of hours in ``client_ts``, reassignment/cancellation while crews are offline, and one
server restart on the same database. Then a quiet period in which everyone syncs to a fixed
point, and :mod:`tests.sim.checks` verifies the guarantees.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from server.seed import DEMO_PASSWORDS, demo_users
from sync.client import DeviceCrash, MemoryStorage, SyncClient
from tests.sim.server import RestartableServer
from tests.sim.transport import FaultRates, FaultyTransport, HttpTransport

SHIFT_START = datetime(2026, 1, 15, 13, 0, tzinfo=UTC)  # 08:00 in Québec City (UTC−5)
SHIFT_HOURS = 11
CITY = (46.8139, -71.2080)
SNOW_CODES = ("snow-driveway-blocked", "snow-sidewalk", "salting", "snow-hydrant-buried")
WASTE_CODES = ("waste-missed-garbage", "bulky-items", "illegal-dumping", "damaged-bin")
OUTCOMES = ("fixed", "fixed", "fixed", "no_condition_found", "unable_to_access", "partially_done")
MATERIALS = (("salt", "kg"), ("sand", "kg"), ("bags", "unit"), ("fuel", "l"))
NEXT_STATUS = {
    "assigned": ("en_route", "on_site"),
    "en_route": ("on_site",),
    "on_site": ("on_hold", "complete", "complete"),
    "on_hold": ("on_site", "complete"),
}


@dataclass
class SimConfig:
    seed: int = 1
    devices: int = 20
    steps: int = 66  # 08:00–19:00 in 10-minute steps
    dispatchers: int = 2
    orders_per_crew: int = 3
    edit_rate: float = 0.3  # chance a device edits something in a step
    sync_rate: float = 0.35  # chance an online device syncs in a step (polling)
    dispatch_rate: float = 0.6  # expected dispatcher actions per step
    offline_rate: float = 0.04  # chance an online device goes offline in a step
    whole_shift_offline: int = 1  # devices offline from start to end of the shift
    crash_rate: float = 0.02
    cookie_loss_rate: float = 0.03  # the server no longer accepts the cookie: next pull resets
    max_skew_hours: float = 6.0
    restart_server: bool = True
    faults: FaultRates = field(
        default_factory=lambda: FaultRates(drop_after_commit=0.08, duplicate=0.05, hold_back=0.04)
    )
    batch_size: int = 20
    pull_limit: int = 50
    replay_limit: int = 400  # pushes replayed by the idempotence check (0: all)
    independence_trials: int = 3

    @property
    def step_length(self) -> timedelta:
        return timedelta(hours=SHIFT_HOURS) / max(1, self.steps)


@dataclass
class Stats:
    mutations: int = 0
    lost_before_save: int = 0
    crashes: int = 0
    dispatcher_actions: int = 0
    dispatcher_refusals: int = 0
    resolutions: int = 0
    syncs: int = 0
    server_restarts: int = 0
    quiet_rounds: int = 0
    cookie_resets: int = 0


def uuid_from(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


# ------------------------------------------------------------- display predictors
def _order(view: dict[str, Any], mutation: dict[str, Any]) -> dict[str, Any] | None:
    value = view.get(f"work_order/{mutation['args'].get('work_order_id')}")
    return value if isinstance(value, dict) else None


def _predict_status(view: dict[str, Any], m: dict[str, Any]) -> None:
    order = _order(view, m)
    if order is not None:
        order["status"] = m["args"]["status"]


def _predict_complete(view: dict[str, Any], m: dict[str, Any]) -> None:
    order = _order(view, m)
    if order is not None and order.get("status") not in ("completed", "cancelled"):
        order["status"] = "completed"
        order["outcome"] = m["args"]["outcome"]


def _predict_append(
    list_name: str, id_arg: str
) -> Callable[[dict[str, Any], dict[str, Any]], None]:
    def predict(view: dict[str, Any], m: dict[str, Any]) -> None:
        order = _order(view, m)
        if order is None:
            return
        items = order.setdefault(list_name, [])
        if all(item.get("id") != m["args"][id_arg] for item in items):
            items.append({"id": m["args"][id_arg], **m["args"], "pending": True})

    return predict


PREDICTORS = {
    "workorder.set_status@1": _predict_status,
    "workorder.complete@1": _predict_complete,
    "workorder.add_note@1": _predict_append("notes", "note_id"),
    "workorder.add_material@1": _predict_append("materials", "entry_id"),
    "workorder.void_material@1": _predict_append("materials", "entry_id"),
    "workorder.attach_photo@1": _predict_append("photos", "photo_id"),
}


# -------------------------------------------------------------------- actors
@dataclass
class Created:
    """An entity a device created, with what the server must end up holding."""

    kind: str  # note | material | void | photo
    work_order_id: int
    client_id: str
    payload: dict[str, Any]


class Device:
    def __init__(self, fleet: Fleet, index: int, username: str, crew_code: str) -> None:
        self.fleet = fleet
        self.index = index
        self.username = username
        self.crew_code = crew_code
        self.crew_id = 0
        self.rng = random.Random(fleet.rng.getrandbits(64))
        self.skew = timedelta(hours=self.rng.uniform(-1, 1) * fleet.config.max_skew_hours)
        self.storage = MemoryStorage()
        self.transport = FaultyTransport(
            HttpTransport(fleet.server.handle),
            random.Random(self.rng.getrandbits(64)),
            rates=fleet.config.faults,
        )
        self.headers: dict[str, str] = {}
        self.offline_until = -1
        self.client: SyncClient
        self.created: dict[str, Created] = {}
        self.intent: tuple[int, Created | None] | None = None
        self.crashes = 0
        self.pull_first = False
        self.durable_mutations = 0  # mutations the user saw saved (mutate() returned or durable)

    def sign_in(self, http: httpx.Client) -> None:
        known = self.fleet.sessions.get(self.username)
        if known is not None:  # a previous run on the same database signed this phone in
            self.headers, self.crew_id = dict(known[0]), known[1]
            self.start()
            return
        response = http.post(
            self.fleet.server.handle.url + "/api/v1/auth/login",
            json={
                "username": self.username,
                "password": DEMO_PASSWORDS["crew"],
                "device_label": f"Sim {self.index}",
            },
        )
        response.raise_for_status()
        body = response.json()
        self.headers = {"Authorization": f"Bearer {body['token']}"}
        self.crew_id = int(body["user"]["crew_id"])
        self.fleet.sessions[self.username] = (dict(self.headers), self.crew_id)
        self.start()

    def start(self) -> None:
        """(Re)start the app from its persisted storage."""
        rng = self.rng
        self.client = SyncClient(
            self.storage,
            self.transport,
            headers=self.headers,
            clock=self.fleet.sim_seconds,
            wall_clock=lambda: self.fleet.now() + self.skew,
            batch_size=self.fleet.config.batch_size,
            pull_limit=self.fleet.config.pull_limit,
            predictors=PREDICTORS,
            new_id=lambda: uuid_from(rng),
            jitter=random.Random(rng.getrandbits(64)),
        )

    def crash_and_restart(self) -> None:
        self.crashes += 1
        self.fleet.stats.crashes += 1
        self.start()
        if self.intent is not None:
            expected_id, created = self.intent
            self.intent = None
            # mutate() is one save: the write is durable iff the counter moved past it.
            if self.client.state["next_id"] > expected_id:
                self._confirm(created)
            else:
                self.fleet.stats.lost_before_save += 1

    def _confirm(self, created: Created | None) -> None:
        self.fleet.stats.mutations += 1
        self.durable_mutations += 1
        if created is not None:
            key = created.payload.get("note_id") or created.payload.get("entry_id")
            key = key or created.payload["photo_id"]
            self.created[key] = created

    def lose_cookie(self) -> None:
        """Make the next pull a reset (an expired or unparseable cookie, protocol §5), while
        pending writes may sit in the outbox."""
        self.fleet.stats.cookie_resets += 1
        self.client.state["cookie"] = "expired"
        self.pull_first = True
        self.client.storage.save(self.client.state)

    # ------------------------------------------------------------- editing
    def mutate(
        self,
        name: str,
        order: dict[str, Any],
        args: dict[str, Any],
        kind: str | None = None,
    ) -> None:
        full = {"work_order_id": order["id"], **args}
        created = (
            Created(kind, order["id"], self.client.client_id, dict(full))
            if kind is not None
            else None
        )
        self.intent = (int(self.client.state["next_id"]), created)
        base = order.get("version") if self.rng.random() > 0.05 else None
        self.client.mutate(name, full, base_version=base)
        self.intent = None
        self._confirm(created)

    def edit(self) -> None:
        view = self.client.view()
        orders = [v for k, v in view.items() if k.startswith("work_order/")]
        if not orders:
            return
        replica = self.client.replica
        rng = self.rng
        order = rng.choice(sorted(orders, key=lambda o: o["id"]))
        # base_version is the version the device last pulled (the optimistic view keeps it).
        base = replica.get(f"work_order/{order['id']}", order)
        order = {**order, "version": base.get("version")}
        roll = rng.random()
        status = order.get("status")
        if roll < 0.45 and status in NEXT_STATUS:
            choice = rng.choice(NEXT_STATUS[status])
            if rng.random() < 0.05:  # a stale or confused screen: any settable status
                choice = rng.choice(("en_route", "on_site", "on_hold"))
            if choice == "complete":
                args: dict[str, Any] = {"outcome": rng.choice(OUTCOMES)}
                if rng.random() < 0.5:
                    args["note"] = f"Terminé par {self.username}"
                args["completed_at"] = (self.fleet.now() + self.skew).isoformat()
                self.mutate("workorder.complete@1", order, args)
            else:
                args = {"status": choice}
                if choice == "on_hold":
                    args["reason"] = "Attente de matériel"
                self.mutate("workorder.set_status@1", order, args)
        elif roll < 0.65:
            note_id = uuid_from(rng)
            body = f"Note {note_id[:8]} de {self.username}"
            self.mutate(
                "workorder.add_note@1", order, {"note_id": note_id, "body": body}, kind="note"
            )
        elif roll < 0.82:
            code, unit = rng.choice(MATERIALS)
            quantity = rng.randint(1, 40) / 2
            self.mutate(
                "workorder.add_material@1",
                order,
                {
                    "entry_id": uuid_from(rng),
                    "material_code": code,
                    "quantity": quantity,
                    "unit": unit,
                },
                kind="material",
            )
        elif roll < 0.87:
            mine = sorted(
                k
                for k, c in self.created.items()
                if c.kind == "material"
                and c.work_order_id == order["id"]
                and not any(
                    o.kind == "void" and o.payload["voids"] == k for o in self.created.values()
                )
            )
            if mine:
                self.mutate(
                    "workorder.void_material@1",
                    order,
                    {"entry_id": uuid_from(rng), "voids": rng.choice(mine), "reason": "Erreur"},
                    kind="void",
                )
        elif roll < 0.96:
            self.mutate(
                "workorder.attach_photo@1",
                order,
                {
                    "photo_id": uuid_from(rng),
                    "sha256": f"{rng.getrandbits(256):064x}",
                    "kind": rng.choice(("before", "after")),
                    "lat": CITY[0],
                    "lon": CITY[1],
                },
                kind="photo",
            )
        else:
            self.mutate(
                "workorder.set_field@1",
                order,
                {"field": "priority", "value": rng.randint(1, 4)},
            )

    # ------------------------------------------------------------- one step
    def step(self, index: int) -> None:
        config = self.fleet.config
        rng = self.rng
        if self.offline_until >= index:
            self.transport.online = False
        elif rng.random() < config.offline_rate:
            self.offline_until = index + rng.randint(1, config.steps)
            self.transport.online = False
        else:
            self.transport.online = True
        if rng.random() < config.crash_rate:
            self.fleet.storage_crash(self)
        try:
            if rng.random() < config.cookie_loss_rate:
                self.lose_cookie()
            if rng.random() < config.edit_rate:
                self.edit()
            if self.transport.online and self.transport.held and rng.random() < 0.3:
                self.transport.deliver_held(rng.randint(1, len(self.transport.held)))
            # The app's timer fires whether or not there is a network: offline, it gets errors.
            pending = bool(self.client.outbox) and self.client.ready()
            if pending or rng.random() < config.sync_rate:
                self.fleet.stats.syncs += 1
                if self.pull_first or rng.random() < 0.25:
                    self.pull_first = False
                    # A change hint or the poll timer: pull alone, pending writes or not
                    # (they must survive the pull, a reset included, and be rebased).
                    self.client.pull()
                else:
                    self.client.sync()
        except DeviceCrash:
            self.crash_and_restart()


class Dispatcher:
    def __init__(self, fleet: Fleet, username: str) -> None:
        self.fleet = fleet
        self.username = username
        self.rng = random.Random(fleet.rng.getrandbits(64))
        self.http = httpx.Client(timeout=30)
        self.headers: dict[str, str] = {}

    def sign_in(self) -> None:
        known = self.fleet.sessions.get(self.username)
        if known is not None:
            self.headers = dict(known[0])
            return
        response = self.http.post(
            self.fleet.server.handle.url + "/api/v1/auth/login",
            json={"username": self.username, "password": DEMO_PASSWORDS["dispatcher"]},
        )
        response.raise_for_status()
        self.headers = {"Authorization": f"Bearer {response.json()['token']}"}
        self.fleet.sessions[self.username] = (dict(self.headers), 0)

    def call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        for attempt in range(50):
            try:
                return self.http.request(
                    method, self.fleet.server.handle.url + path, headers=self.headers, **kw
                )
            except httpx.TransportError:
                if attempt == 49:
                    raise
                time.sleep(0.1)
        raise AssertionError("unreachable")

    def create_order(self, crew_id: int | None) -> int:
        kind = self.fleet.crew_kinds.get(crew_id or 0, "waste")
        rng = self.rng
        body: dict[str, Any] = {
            "service_code": rng.choice(SNOW_CODES if kind == "snow" else WASTE_CODES),
            "title": f"Sim {rng.getrandbits(24):06x}",
            "lat": round(CITY[0] + rng.uniform(-0.03, 0.03), 6),
            "lon": round(CITY[1] + rng.uniform(-0.05, 0.05), 6),
            "priority": rng.randint(1, 4),
        }
        if crew_id is not None:
            body["crew_id"] = crew_id
        response = self.call("POST", "/api/v1/work-orders", json=body)
        assert response.status_code == 201, response.text
        wo_id = int(response.json()["id"])
        self.fleet.order_ids.append(wo_id)
        if crew_id is not None and response.json()["crew_id"] != crew_id:
            self.call("POST", f"/api/v1/work-orders/{wo_id}/assign", json={"crew_id": crew_id})
        return wo_id

    def act(self) -> None:
        fleet, rng = self.fleet, self.rng
        roll = rng.random()
        fleet.stats.dispatcher_actions += 1
        crews = sorted(fleet.device_crews)
        wo_id = rng.choice(fleet.order_ids)
        if roll < 0.2:
            self.create_order(rng.choice(crews))
            return
        if roll < 0.45:
            # Reassign, sometimes to a crew with no simulated device (the order leaves scope).
            target = rng.choice(crews) if rng.random() < 0.8 else rng.choice(fleet.other_crews)
            response = self.call(
                "POST", f"/api/v1/work-orders/{wo_id}/assign", json={"crew_id": target}
            )
        elif roll < 0.6:
            response = self.call(
                "POST",
                f"/api/v1/work-orders/{wo_id}/priority",
                json={"priority": rng.randint(1, 4)},
            )
        elif roll < 0.7:
            response = self.call(
                "POST", f"/api/v1/work-orders/{wo_id}/cancel", json={"reason": "Annulé par sim"}
            )
        elif roll < 0.75:
            response = self.call(
                "POST", f"/api/v1/work-orders/{wo_id}/transition", json={"action": "reopen"}
            )
        else:
            self.resolve_one()
            return
        if response.status_code >= 500:
            raise AssertionError(
                f"dispatcher action failed: {response.status_code} {response.text}"
            )
        if response.status_code != 200:
            fleet.stats.dispatcher_refusals += 1

    def resolve_one(self) -> None:
        response = self.call(
            "GET", "/api/v1/sync/conflicts", params={"status": "open", "limit": 50}
        )
        assert response.status_code == 200, response.text
        items = sorted(response.json()["items"], key=lambda c: c["id"])
        if not items:
            return
        conflict = self.rng.choice(items)
        options = {
            "completion_not_applied": ("accept_completion", "keep_cancellation", "reopen"),
            "status_superseded": ("reopen", "dismiss", "dismiss"),
            "suggestion": ("accept_suggestion", "dismiss"),
        }.get(conflict["kind"], ("dismiss",))
        resolution = self.rng.choice(options)
        response = self.call(
            "POST",
            f"/api/v1/sync/conflicts/{conflict['id']}/resolve",
            json={"resolution": resolution, "note": "Sim"},
        )
        if response.status_code >= 500:
            raise AssertionError(f"resolve failed: {response.status_code} {response.text}")
        if response.status_code == 200:
            self.fleet.stats.resolutions += 1
        else:
            self.fleet.stats.dispatcher_refusals += 1


# --------------------------------------------------------------------- fleet
class Fleet:
    def __init__(
        self,
        config: SimConfig,
        server: RestartableServer,
        sessions: dict[str, tuple[dict[str, str], int]] | None = None,
    ) -> None:
        self.config = config
        # username -> (auth headers, crew id): lets several runs on one database sign in once
        # (Argon2 costs ~0.3 s per sign-in here).
        self.sessions = sessions if sessions is not None else {}
        self.server = server
        self.rng = random.Random(config.seed)
        self.step_index = 0
        self.stats = Stats()
        self.order_ids: list[int] = []
        self.crew_kinds: dict[int, str] = {}
        self.device_crews: set[int] = set()
        self.other_crews: list[int] = []
        crew_members = [(u, c) for u, _, role, c in demo_users() if role == "crew" and c]
        self.devices = [
            Device(self, i, username, crew)
            for i, (username, crew) in enumerate(crew_members[: config.devices])
        ]
        if len(self.devices) < config.devices:
            raise ValueError(f"at most {len(crew_members)} devices (one per demo crew member)")
        self.dispatchers = [
            Dispatcher(self, f"repartiteur{1 + i % 2}") for i in range(config.dispatchers)
        ]
        self.started = time.monotonic()

    # simulated time -------------------------------------------------------
    def now(self) -> datetime:
        return SHIFT_START + self.config.step_length * self.step_index

    def sim_seconds(self) -> float:
        return (self.now() - SHIFT_START).total_seconds()

    # set-up -----------------------------------------------------------------
    def setup(self) -> None:
        for dispatcher in self.dispatchers:
            dispatcher.sign_in()
        main = self.dispatchers[0]
        crews = main.call("GET", "/api/v1/crews").json()
        codes = {c["code"]: c for c in crews}
        self.crew_kinds = {int(c["id"]): c.get("kind", "waste") for c in crews}
        with httpx.Client(timeout=30) as http:
            for device in self.devices:
                device.sign_in(http)
        self.device_crews = {d.crew_id for d in self.devices}
        self.other_crews = sorted(int(c["id"]) for c in codes.values())
        self.other_crews = [c for c in self.other_crews if c not in self.device_crews][:3]
        for crew_id in sorted(self.device_crews):
            for _ in range(self.config.orders_per_crew):
                main.create_order(crew_id)
        main.create_order(None)
        offline = self.rng.sample(
            self.devices, min(self.config.whole_shift_offline, len(self.devices))
        )
        for device in self.devices:
            device.client.sync()
        for device in offline:
            device.offline_until = self.config.steps

    def storage_crash(self, device: Device) -> None:
        device.storage.crash_next_save = device.rng.choice(("before", "after"))

    # the shift ----------------------------------------------------------------
    def run(self) -> None:
        config = self.config
        restart_at = config.steps // 2 if config.restart_server else -1
        for index in range(config.steps):
            self.step_index = index
            if index == restart_at:
                self.server.restart()
                self.stats.server_restarts += 1
            for dispatcher in self.dispatchers:
                actions = int(config.dispatch_rate) + (
                    1 if dispatcher.rng.random() < config.dispatch_rate % 1 else 0
                )
                for _ in range(actions):
                    dispatcher.act()
            order = list(self.devices)
            self.rng.shuffle(order)
            for device in order:
                device.step(index)

    def quiesce(self, max_rounds: int = 12) -> None:
        """Everyone online, no faults, held deliveries flushed; sync until nothing moves."""
        self.step_index = self.config.steps
        for device in self.devices:
            device.transport.online = True
            device.transport.rates = FaultRates.none()
            device.storage.crash_next_save = None
            device.offline_until = -1
            device.transport.deliver_held()
        # Open conflicts may be resolved by dispatch later; the fixed point is "now".
        for round_index in range(max_rounds):
            self.stats.quiet_rounds = round_index + 1
            moved = False
            for device in self.devices:
                before = (device.client.replica, len(device.client.outbox))
                device.client.sync(ignore_backoff=True)
                after = (device.client.replica, len(device.client.outbox))
                moved = moved or before != after or bool(device.client.outbox)
            if not moved:
                return
        raise AssertionError(f"no fixed point after {max_rounds} quiet rounds")

    def close(self) -> None:
        for device in self.devices:
            device.transport.inner.close()
        for dispatcher in self.dispatchers:
            dispatcher.http.close()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started
