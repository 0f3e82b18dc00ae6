"""Live streams send a burst of hints as one message per event name (server/live/bus.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import pytest

from server.live import bus as live
from server.settings import get_settings


def _raw(event: str, **data: object) -> bytes:
    return json.dumps({"event": event, "data": data}).encode()


@pytest.mark.parametrize(
    ("raws", "expected"),
    [
        ([], {}),
        ([_raw("a", id=1, ids=[1])], {"a": {"id": 1, "ids": [1]}}),
        (
            [_raw("a", id=1, ids=[1]), _raw("a", id=2, ids=[2, 1])],
            {"a": {"id": 2, "ids": [1, 2]}},
        ),
        (
            [_raw("b", x=1), _raw("a", id=1, ids=[1]), _raw("b", x=2)],
            {"b": {"x": 2}, "a": {"id": 1, "ids": [1]}},
        ),
        ([b"not json", _raw("a", id=1), b'{"data": {}}'], {"a": {"id": 1}}),
        (
            [_raw("w", id=n, ids=[n]) for n in range(300)],
            {"w": {"id": 299, "ids": list(range(100, 300))}},
        ),
    ],
)
def test_merge_events(raws: list[bytes], expected: dict[str, object]) -> None:
    merged = live.merge_events(raws)
    assert merged == expected
    assert list(merged) == list(expected)  # order of first arrival


async def test_a_burst_is_one_message_per_event_name_and_nothing_is_lost() -> None:
    settings = dataclasses.replace(get_settings(), channels_backend="memory")
    plugin = live.make_plugin(settings)
    async with plugin:
        stream = live.event_stream(
            plugin, ["burst"], hello={"hi": 1}, heartbeat_s=5, max_s=10, coalesce_s=0.3
        )
        hello = await stream.__anext__()
        assert hello.event == "hello"
        for n in range(1, 21):
            plugin.publish(_raw("work_order_changed", id=n, ids=[n]), channels=["burst"])
        plugin.publish(_raw("request_created", id=7, ids=[7]), channels=["burst"])
        first = await asyncio.wait_for(stream.__anext__(), 5)
        second = await asyncio.wait_for(stream.__anext__(), 5)
        assert first.event == "work_order_changed"
        assert json.loads(str(first.data)) == {"id": 20, "ids": list(range(1, 21))}
        assert second.event == "request_created"
        # the next hint after the window is a message of its own
        plugin.publish(_raw("work_order_changed", id=99, ids=[99]), channels=["burst"])
        third = await asyncio.wait_for(stream.__anext__(), 5)
        assert json.loads(str(third.data)) == {"id": 99, "ids": [99]}
        await stream.aclose()
