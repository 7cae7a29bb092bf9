"""The one source of "now" for web and worker code: UTC, and movable by tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class Clock:
    """Wall-clock UTC time, optionally pinned or shifted (tests travel in time with it)."""

    def __init__(self) -> None:
        self._pinned: datetime | None = None
        self._offset = timedelta()

    def now(self) -> datetime:
        if self._pinned is not None:
            return self._pinned
        return datetime.now(UTC) + self._offset

    def pin(self, moment: datetime) -> None:
        if moment.tzinfo is None:
            raise ValueError("pin() needs an aware UTC datetime")
        self._pinned = moment.astimezone(UTC)

    def advance(self, delta: timedelta) -> None:
        if self._pinned is not None:
            self._pinned += delta
        else:
            self._offset += delta

    def reset(self) -> None:
        self._pinned = None
        self._offset = timedelta()


clock = Clock()
