"""A clock tests can move forward: real time passing, plus whatever the test adds."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta


class SteerableClock:
    def __init__(self, start: datetime | None = None) -> None:
        self._start = start or datetime.now(UTC)
        self._origin = time.monotonic()
        self._offset = timedelta()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=time.monotonic() - self._origin) + self._offset

    def advance(self, seconds: float) -> datetime:
        self._offset += timedelta(seconds=seconds)
        return self.now()
