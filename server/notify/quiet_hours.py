"""Quiet hours: a daily window in the city's time zone when citizen pushes wait.

``QuietHours.parse("21:00-07:00", "America/Toronto")``; the window may cross midnight. During
the window a notification is delayed to the window's end (never dropped): ``deferred_until``.
Local wall-clock times are converted with zoneinfo, so the window follows daylight saving time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
OFF = {"", "off", "none", "0", "no"}


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time
    zone: ZoneInfo

    @classmethod
    def parse(cls, spec: str, timezone: str) -> QuietHours | None:
        """None when disabled; ValueError on a malformed window (a start-up error)."""
        if spec.strip().lower() in OFF:
            return None
        match = _WINDOW.match(spec)
        if not match:
            raise ValueError(f"TOURNEE_QUIET_HOURS must look like 21:00-07:00 or off, got {spec!r}")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
            raise ValueError(f"TOURNEE_QUIET_HOURS has an impossible time: {spec!r}")
        start, end = time(h1, m1), time(h2, m2)
        if start == end:
            return None  # an empty window
        return cls(start, end, ZoneInfo(timezone))

    def contains(self, now: datetime) -> bool:
        local = now.astimezone(self.zone).time()
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def deferred_until(self, now: datetime) -> datetime | None:
        """The end of the window `now` is in (UTC), or None when `now` is outside it."""
        if not self.contains(now):
            return None
        local = now.astimezone(self.zone)
        day = local.date()
        if local.time() >= self.end:  # evening part of a window that crosses midnight
            day += timedelta(days=1)
        end = datetime.combine(day, self.end, tzinfo=self.zone)
        return end.astimezone(UTC)
