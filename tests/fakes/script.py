"""What every fake shares: a memory of the calls made, and failures a test queues for them."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class Scripted:
    """Every operation called, in order (`calls`), and the answers a test queued for the next
    calls of an operation (`fail(operation, *errors)`: an exception is raised, None lets that
    call through). A failed call changes nothing."""

    calls: list[str] = field(default_factory=list)
    script: dict[str, list[Exception | None]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, operation: str, *errors: Exception | None) -> None:
        self.script.setdefault(operation, []).extend(errors)

    def _enter(self, operation: str) -> None:
        """Record the call; raise the failure queued for it, if any."""
        with self._lock:
            self.calls.append(operation)
            queued = self.script.get(operation)
            error = queued.pop(0) if queued else None
        if error is not None:
            raise error
