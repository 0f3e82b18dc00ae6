"""The guarantees checked after the fleet's quiet period (numbered as in SYNC.md).

Each check reads the server through its HTTP API only (dispatcher routes of
``docs/sync-protocol.md`` §7 and full pulls with the device's own credentials), compares it with
what the devices hold and what the simulator knows they created, and returns a
:class:`CheckResult` listing the first discrepancies.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sync.client import PULL_PATH, PUSH_PATH
from sync.states import TRANSITIONS, Status
from tests.sim.fleet import OUTCOMES, Device, Dispatcher, Fleet, uuid_from

MAX_DETAILS = 8


@dataclass
class CheckResult:
    name: str
    details: list[str] = field(default_factory=list)
    checked: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.details

    def fail(self, message: str) -> None:
        if len(self.details) < MAX_DETAILS:
            self.details.append(message)
        elif len(self.details) == MAX_DETAILS:
            self.details.append("…")

    def __str__(self) -> str:
        state = "ok" if self.ok else "FAILED"
        text = f"{self.name}: {state} ({self.checked} checked, {self.seconds:.1f} s)"
        return text if self.ok else text + "\n  " + "\n  ".join(self.details)


# ------------------------------------------------------------------- reading
def full_pull(device: Device, client_id: str | None = None) -> dict[str, Any]:
    """The server's view of the device's scope: a pull with ``cookie: null``, all pages."""
    http = device.transport.inner
    cookie = None
    scope: dict[str, Any] = {}
    for page in range(10_000):
        body = {
            "protocol": 1,
            "schema_version": 1,
            "client_id": client_id or device.client.client_id,
            "cookie": cookie,
            "limit": 200,
        }
        status, _, answer = http(PULL_PATH, body, device.headers)
        assert status == 200, (status, answer)
        assert page > 0 or answer["reset"], "a null cookie must give a full patch"
        for op in answer["patch"]:
            if op["op"] == "put":
                scope[op["key"]] = op["value"]
            else:
                scope.pop(op["key"], None)
        cookie = answer["cookie"]
        if not answer["has_more"]:
            return scope
    raise AssertionError("endless pull")


def all_conflicts(dispatcher: Dispatcher) -> dict[int, dict[str, Any]]:
    found: dict[int, dict[str, Any]] = {}
    offset = 0
    while True:
        response = dispatcher.call(
            "GET", "/api/v1/sync/conflicts", params={"limit": 200, "offset": offset}
        )
        assert response.status_code == 200, response.text
        page = response.json()
        for item in page["items"]:
            found[int(item["id"])] = item
        offset += len(page["items"])
        if not page["items"] or offset >= page["total"]:
            return found


def mutation_log(dispatcher: Dispatcher, client_id: str) -> dict[int, dict[str, Any]]:
    log: dict[int, dict[str, Any]] = {}
    after = 0
    while True:
        response = dispatcher.call(
            "GET",
            "/api/v1/sync/mutations",
            params={"client_id": client_id, "after": after, "limit": 500},
        )
        assert response.status_code == 200, response.text
        items = response.json()
        items = items["items"] if isinstance(items, dict) else items
        for item in items:
            log[int(item["id"])] = item
        if not items:
            return log
        after = max(int(i["id"]) for i in items)


def order_value(dispatcher: Dispatcher, wo_id: int, cache: dict[int, Any]) -> dict[str, Any]:
    if wo_id not in cache:
        response = dispatcher.call("GET", f"/api/v1/sync/work-orders/{wo_id}")
        assert response.status_code == 200, response.text
        cache[wo_id] = response.json()
    value: dict[str, Any] = cache[wo_id]
    return value


def _client_ids(device: Device) -> list[str]:
    return [*device.client.state["retired_client_ids"], device.client.client_id]


def _dead_keys(device: Device) -> set[str]:
    keys = set()
    for dead in device.client.dead_letters:
        args = dead["mutation"]["args"]
        for name in ("note_id", "entry_id", "photo_id"):
            if name in args:
                keys.add(args[name])
    return keys


def _has_record(
    conflicts: dict[int, dict[str, Any]], logged: dict[str, Any], client_id: str, mutation_id: int
) -> bool:
    conflict = conflicts.get(logged.get("conflict_id") or -1)
    if conflict is None or conflict["work_order_id"] != logged.get("work_order_id"):
        return False
    if conflict["kind"] == "reassigned_away":
        return True  # one open record per order and crew: later edits point at the first one
    return bool(conflict["client_id"] == client_id and conflict["mutation_id"] == mutation_id)


def _difference(device: Any, server: Any) -> str:
    if isinstance(device, dict) and isinstance(server, dict):
        fields = sorted(k for k in set(device) | set(server) if device.get(k) != server.get(k))
        return "; ".join(
            f"{k}: device={json.dumps(device.get(k))[:400]} "
            f"server={json.dumps(server.get(k))[:400]}"
            for k in fields
        )
    return f"device={json.dumps(device)[:300]} server={json.dumps(server)[:300]}"


# -------------------------------------------------------------------- checks
def check_convergence(fleet: Fleet) -> CheckResult:
    result = CheckResult("1 convergence")
    for device in fleet.devices:
        result.checked += 1
        server = full_pull(device)
        local = device.client.replica
        if device.client.view() != local:
            result.fail(f"{device.username}: view differs from replica with nothing pending")
        for key in sorted(set(server) | set(local)):
            if server.get(key) != local.get(key):
                result.fail(
                    f"{device.username}: {key}: {_difference(local.get(key), server.get(key))}"
                )
                break
    return result


def check_no_lost_edit(
    fleet: Fleet, conflicts: dict[int, dict[str, Any]], orders: dict[int, Any]
) -> CheckResult:
    result = CheckResult("2 no acknowledged edit lost")
    dispatcher = fleet.dispatchers[0]
    for device in fleet.devices:
        outcomes = device.client.outcomes
        logged_total = 0
        for client_id in _client_ids(device):
            log = mutation_log(dispatcher, client_id)
            logged_total += len(log)
            if log and sorted(log) != list(range(1, max(log) + 1)):
                result.fail(f"{device.username}/{client_id[:8]}: holes in the server log")
            for key, item in outcomes.items():
                cid, _, raw_id = key.rpartition(":")
                if cid != client_id:
                    continue
                result.checked += 1
                logged = log.get(int(raw_id))
                if logged is None:
                    result.fail(f"{device.username}: acknowledged {key} has no logged outcome")
                elif logged["outcome"] != item["outcome"]:
                    result.fail(f"{device.username}: {key} {item['outcome']} vs {logged}")
            for mutation_id, logged in log.items():
                if logged["outcome"] != "applied" and not _has_record(
                    conflicts, logged, client_id, mutation_id
                ):
                    result.fail(f"{device.username}: {logged} has no conflict record")
        # Every mutation the user saw saved reached the server's log exactly once (a 4xx dead
        # letter gives its id to the next mutation, so it is the only one not logged).
        refused_alone = sum(1 for d in device.client.dead_letters if d.get("status") != 200)
        result.checked += 1
        if logged_total != device.durable_mutations - refused_alone:
            result.fail(
                f"{device.username}: {device.durable_mutations} saved on the device, "
                f"{refused_alone} refused by 4xx, {logged_total} in the server's log"
            )
        for item in outcomes.values():
            if item["outcome"] != "applied" and (item.get("conflict_id") or -1) not in conflicts:
                result.fail(f"{device.username}: overridden write {item} without conflict record")
        dead = _dead_keys(device)
        for key, created in device.created.items():
            if key in dead:
                continue
            result.checked += 1
            value = order_value(dispatcher, created.work_order_id, orders)
            collection = {"note": "notes", "photo": "photos"}.get(created.kind, "materials")
            ids = {item["id"] for item in value.get(collection, [])}
            if key not in ids:
                result.fail(
                    f"{device.username}: {created.kind} {key} on order "
                    f"{created.work_order_id} missing on the server"
                )
    return result


def check_outboxes(fleet: Fleet, conflicts: dict[int, dict[str, Any]]) -> CheckResult:
    result = CheckResult("3 outboxes empty, dead letters legitimate")
    for device in fleet.devices:
        result.checked += 1
        client = device.client
        if client.outbox or client.awaiting_pull:
            result.fail(
                f"{device.username}: {len(client.outbox)} pending, "
                f"{len(client.awaiting_pull)} awaiting pull"
            )
        for dead in client.dead_letters:
            conflict_id = (dead.get("result") or {}).get("conflict_id")
            if dead.get("status") != 200 or conflict_id not in conflicts:
                result.fail(f"{device.username}: dead letter without a conflict record: {dead}")
    return result


def check_exactly_once(fleet: Fleet, orders: dict[int, Any]) -> CheckResult:
    result = CheckResult("4 exactly-once material totals")
    expected: dict[int, dict[str, float]] = {}
    quantities: dict[str, float] = {}
    for device in fleet.devices:
        dead = _dead_keys(device)
        for key, created in device.created.items():
            if created.kind == "material":
                quantities[key] = float(created.payload["quantity"])
        for key, created in device.created.items():
            if created.kind not in ("material", "void") or key in dead:
                continue
            quantity = quantities.get(key, 0.0)
            if created.kind == "void":
                quantity = -quantities[created.payload["voids"]]
            expected.setdefault(created.work_order_id, {})[key] = quantity
    for wo_id in sorted(set(expected) | set(fleet.order_ids)):
        value = order_value(fleet.dispatchers[0], wo_id, orders)
        entries = value.get("materials", [])
        result.checked += 1
        ids = [e["id"] for e in entries]
        if len(ids) != len(set(ids)):
            result.fail(f"order {wo_id}: duplicated entries {Counter(ids).most_common(2)}")
        want = expected.get(wo_id, {})
        if set(ids) != set(want):
            result.fail(f"order {wo_id}: entries {sorted(set(ids) ^ set(want))[:4]} differ")
        total = round(sum(float(e["quantity"]) for e in entries), 6)
        if total != round(sum(want.values()), 6):
            result.fail(f"order {wo_id}: total {total} != {round(sum(want.values()), 6)}")
    return result


def _snapshot(fleet: Fleet) -> dict[str, Any]:
    dispatcher = fleet.dispatchers[0]
    logs = {}
    for device in fleet.devices:
        for client_id in _client_ids(device):
            logs[client_id] = mutation_log(dispatcher, client_id)
    return {
        "scopes": {d.username: full_pull(d) for d in fleet.devices},
        "conflicts": all_conflicts(dispatcher),
        "logs": logs,
    }


def check_idempotence(fleet: Fleet) -> CheckResult:
    result = CheckResult("6 replaying any push changes nothing")
    before = _snapshot(fleet)
    bodies = [(d, body, headers) for d in fleet.devices for body, headers in d.transport.pushes]
    if fleet.config.replay_limit and len(bodies) > fleet.config.replay_limit:
        bodies = random.Random(fleet.config.seed).sample(bodies, fleet.config.replay_limit)
    for device, body, headers in bodies:
        result.checked += 1
        status, _, answer = device.transport.inner(PUSH_PATH, body, headers)
        if status == 200:
            fresh = [r for r in answer["results"] if not r.get("replayed")]
            if fresh:
                result.fail(f"{device.username}: replay applied again: {fresh[:2]}")
        elif status >= 500 or status == 409:
            result.fail(f"{device.username}: replay answered {status} {answer}")
    after = _snapshot(fleet)
    for part in ("scopes", "conflicts", "logs"):
        if before[part] != after[part]:
            result.fail(f"{part} changed after replaying {len(bodies)} pushes")
    return result


def _legal(old: str, new: str) -> bool:
    try:
        source, target = Status(old), Status(new)
    except ValueError:
        return False
    return any(
        rule.source is source and target in (rule.target, rule.target_without_crew)
        for rule in TRANSITIONS.values()
    )


def check_status_history(fleet: Fleet) -> CheckResult:
    result = CheckResult("7 no invalid transition in any status history")
    dispatcher = fleet.dispatchers[0]
    for wo_id in sorted(fleet.order_ids):
        response = dispatcher.call("GET", f"/api/v1/work-orders/{wo_id}")
        assert response.status_code == 200, response.text
        previous: str | None = None
        for event in response.json()["history"]:
            change = (event.get("changes") or {}).get("status")
            if not change:
                continue
            old, new = change
            result.checked += 1
            if old is not None and previous is not None and old != previous:
                result.fail(f"order {wo_id}: history jumps from {previous} to {old}→{new}")
            if old is not None and not _legal(old, new):
                result.fail(f"order {wo_id}: {old}→{new} ({event['action']}) is not a transition")
            previous = new
    return result


# ---------------------------------------------------------- order independence
def _normal_form(value: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": value["status"],
        "outcome": value.get("outcome"),
        "work_performed": value.get("work_performed"),
        "notes": sorted(n["body"] for n in value.get("notes", [])),
        "materials": sorted(
            (m["material_code"], float(m["quantity"])) for m in value.get("materials", [])
        ),
        "photos": sorted((p["sha256"], p.get("kind")) for p in value.get("photos", [])),
    }


def check_order_independence(fleet: Fleet, trials: int = 3) -> CheckResult:
    """Two devices' concurrent edits, pushed in two different interleavings on twin orders,
    must leave both orders in the same state: status writes are judged from the status each
    device saw and settled by precedence (docs/adr/0022), notes/materials/photos are sets."""
    result = CheckResult("5 order independence")
    rng = random.Random(fleet.config.seed * 7919 + 1)
    by_crew: dict[int, list[Device]] = {}
    for device in fleet.devices:
        by_crew.setdefault(device.crew_id, []).append(device)
    pairs = [devices[:2] for devices in by_crew.values() if len(devices) >= 2]
    dispatcher = fleet.dispatchers[0]
    for trial in range(trials):
        first, second = pairs[trial % len(pairs)]
        twins = [dispatcher.create_order(first.crew_id) for _ in range(2)]
        for device in (first, second):
            device.client.sync(ignore_backoff=True)
        # Sometimes the office cancels both twins before any push arrives (completion facts
        # must then be kept and flagged the same way in both orders).
        cancelled = rng.random() < 0.25
        if cancelled:
            for wo_id in twins:
                response = dispatcher.call(
                    "POST", f"/api/v1/work-orders/{wo_id}/cancel", json={"reason": "doublon"}
                )
                assert response.status_code == 200, response.text
        plans: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        # Any status the app can send, legal from what the screen showed or not (a stale or
        # confused screen), as an offline chain of one to three writes per device. Two
        # *different* completions stay outside the promise: the first one stands by design
        # (the second becomes a completion_duplicate conflict), so both devices complete with
        # the same facts.
        outcome = rng.choice(OUTCOMES)
        for device in (first, second):
            statuses: list[tuple[str, dict[str, Any]]] = []
            for _ in range(rng.randint(1, 3)):
                status = rng.choice(("en_route", "on_site", "on_hold") * 3 + ("complete",))
                if status == "complete":
                    statuses.append(("workorder.complete@1", {"outcome": outcome}))
                else:
                    statuses.append(("workorder.set_status@1", {"status": status}))
            others: list[tuple[str, dict[str, Any]]] = []
            for _ in range(rng.randint(1, 2)):
                others.append(("note", {"body": f"n{rng.getrandbits(20)}"}))
                code = rng.choice(("salt", "sand"))
                others.append(("material", {"material_code": code, "quantity": rng.randint(1, 9)}))
            others.append(("photo", {"sha256": f"{rng.getrandbits(256):064x}", "kind": "after"}))
            # the status chain keeps its order among the other edits
            slots = sorted(rng.sample(range(len(statuses) + len(others)), len(statuses)))
            plan = []
            pending = iter(statuses)
            rest = iter(others)
            for index in range(len(statuses) + len(others)):
                plan.append(next(pending) if index in slots else next(rest))
            plans[device.username] = plan
        interleavings = []
        for twin in range(len(twins)):
            # Even trials: one device's whole plan, then the other's, and the reverse on the
            # twin (the orders most likely to differ); odd trials: two random interleavings.
            devices = (first, second) if twin == 0 else (second, first)
            sequence = [(d, i) for d in devices for i in range(len(plans[d.username]))]
            if trial % 2:
                rng.shuffle(sequence)
            # Each device's own mutations keep their order (ids are consecutive per device).
            seen: dict[str, int] = {}
            ordered = []
            for device, _ in sequence:
                index = seen.get(device.username, 0)
                seen[device.username] = index + 1
                ordered.append((device, index))
            interleavings.append(ordered)
        for wo_id, ordered in zip(twins, interleavings, strict=True):
            version = {
                d.username: d.client.replica[f"work_order/{wo_id}"]["version"]
                for d in (first, second)
            }
            for device, index in ordered:
                kind, spec = plans[device.username][index]
                name, args = kind, dict(spec)
                if kind == "note":
                    name, args = "workorder.add_note@1", {"note_id": uuid_from(rng), **spec}
                elif kind == "material":
                    name = "workorder.add_material@1"
                    args = {"entry_id": uuid_from(rng), "unit": "kg", **spec}
                elif kind == "photo":
                    name, args = "workorder.attach_photo@1", {"photo_id": uuid_from(rng), **spec}
                device.client.mutate(
                    name, {"work_order_id": wo_id, **args}, base_version=version[device.username]
                )
                device.client.push(ignore_backoff=True)
                if device.client.outbox:
                    result.fail(f"trial {trial}: push did not go through: {device.client.outbox}")
        a, b = (order_value(dispatcher, wo_id, {}) for wo_id in twins)
        result.checked += 1
        if _normal_form(a) != _normal_form(b):
            chains = {
                d: [args.get("status", "complete") for name, args in plan if name.startswith("w")]
                for d, plan in plans.items()
            }
            result.fail(
                f"trial {trial} (cancelled first: {cancelled}, chains {chains}): "
                f"{_normal_form(a)} != {_normal_form(b)}"
            )
        for device in (first, second):
            device.client.sync(ignore_backoff=True)
    return result


def run_checks(fleet: Fleet) -> list[CheckResult]:
    dispatcher = fleet.dispatchers[0]
    conflicts = all_conflicts(dispatcher)
    orders: dict[int, Any] = {}
    runs: list[Callable[[], CheckResult]] = [
        lambda: check_convergence(fleet),
        lambda: check_no_lost_edit(fleet, conflicts, orders),
        lambda: check_outboxes(fleet, conflicts),
        lambda: check_exactly_once(fleet, orders),
        lambda: check_idempotence(fleet),
        lambda: check_status_history(fleet),
        # Last: it creates orders and pushes new edits.
        lambda: check_order_independence(fleet, fleet.config.independence_trials),
    ]
    results = []
    for run in runs:
        started = time.monotonic()
        result = run()
        result.seconds = time.monotonic() - started
        results.append(result)
    results.sort(key=lambda r: r.name)
    return results
