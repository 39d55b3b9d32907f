"""How many messages one sender may send in a while, before any is stored.

A person writes a few messages a minute; a script or a stuck client writes hundreds.
Each sender (a pseudonymous id per channel) has a token bucket: ``burst`` messages at
once, then ``per_minute`` on average. The buckets live in the worker (several workers
each allow as much: the bound is per worker), and the least recently seen are dropped
beyond ``MAX_SENDERS``, so memory stays bounded whatever a flood sends.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict

MAX_SENDERS = 100_000


class SenderLimits:
    def __init__(self, burst: int, per_minute: float) -> None:
        self.burst = burst
        self.per_second = per_minute / 60.0
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, sender: str, now: float | None = None) -> float:
        """Spend one message of ``sender``'s allowance: 0 if allowed, else the seconds
        until the next one would be."""
        now = time.monotonic() if now is None else now
        tokens, updated = self._buckets.pop(sender, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - updated) * self.per_second)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / self.per_second if self.per_second > 0 else math.inf
        self._buckets[sender] = (tokens, now)
        while len(self._buckets) > MAX_SENDERS:
            self._buckets.popitem(last=False)
        return wait
