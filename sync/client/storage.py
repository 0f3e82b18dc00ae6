"""Crash-safe storage for the reference sync client (standard library only).

A device keeps one JSON document: its outbox, its replica, its cursor. Two implementations:

- :class:`JsonFileStorage` writes the whole document to a temporary file in the same directory,
  flushes and fsyncs it, then ``os.replace``s it over the old one (and fsyncs the directory).
  ``os.replace`` is atomic on POSIX and Windows, so a crash at any step leaves either the old
  document or the new one, never a torn file. Leftover temporary files are ignored and removed.
- :class:`MemoryStorage` keeps the serialised document in memory; the fleet simulator uses it and
  can make the *next* save crash before or after the write, to model a phone killed mid-step.

Both round-trip through ``json`` so that what a restarted client reads is exactly what a real
device would have on disk.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "DeviceCrash",
    "JsonFileStorage",
    "MemoryStorage",
    "Storage",
]

TMP_SUFFIX = ".tmp"


class DeviceCrash(Exception):
    """The process died (simulated). The client object must be discarded and rebuilt."""


class Storage(Protocol):
    """Where a device keeps its sync state: one JSON document, replaced atomically."""

    def load(self) -> dict[str, Any] | None:
        """The last document saved completely, or ``None`` when nothing was ever saved."""
        ...

    def save(self, state: dict[str, Any]) -> None:
        """Replace the document atomically: afterwards ``load`` returns ``state`` or, after a
        crash inside ``save``, the previous document."""
        ...


class JsonFileStorage:
    """One JSON file written via temporary file + fsync + ``os.replace``.

    ``step_hook`` (tests only) is called with the name of each step
    (``"temp_opened"``, ``"temp_written"``, ``"temp_synced"``, ``"replaced"``); raising from it
    models a crash at that point.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fsync: bool = True,
        step_hook: Callable[[str], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self.step_hook = step_hook

    def _step(self, name: str) -> None:
        if self.step_hook is not None:
            self.step_hook(name)

    def load(self) -> dict[str, Any] | None:
        for leftover in self.path.parent.glob(f"{self.path.name}.*{TMP_SUFFIX}"):
            with contextlib.suppress(OSError):
                leftover.unlink()
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        state = json.loads(text)
        if not isinstance(state, dict):
            raise ValueError(f"{self.path}: not a sync state document")
        return state

    def save(self, state: dict[str, Any]) -> None:
        data = json.dumps(state, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}{TMP_SUFFIX}")
        with open(tmp, "w", encoding="utf-8") as handle:
            self._step("temp_opened")
            handle.write(data)
            handle.flush()
            self._step("temp_written")
            if self.fsync:
                os.fsync(handle.fileno())
            self._step("temp_synced")
        os.replace(tmp, self.path)
        self._step("replaced")
        if self.fsync and os.name == "posix":
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)


class MemoryStorage:
    """The document as a JSON string in memory, with injectable crashes.

    ``crash_next_save = "before"`` makes the next :meth:`save` raise :class:`DeviceCrash` without
    writing (the step's work is lost); ``"after"`` writes, then raises (the work is durable but the
    process died before it could use the result). The flag is cleared when it fires.
    """

    def __init__(self) -> None:
        self.data: str | None = None
        self.crash_next_save: str | None = None
        self.saves = 0

    def load(self) -> dict[str, Any] | None:
        if self.data is None:
            return None
        state = json.loads(self.data)
        assert isinstance(state, dict)
        return state

    def save(self, state: dict[str, Any]) -> None:
        crash, self.crash_next_save = self.crash_next_save, None
        if crash == "before":
            raise DeviceCrash("crashed before save")
        self.data = json.dumps(state, ensure_ascii=False, sort_keys=True)
        self.saves += 1
        if crash == "after":
            raise DeviceCrash("crashed after save")
