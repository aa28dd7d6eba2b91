"""The in-process rate limit window (deps.LocalWindows) decides exactly as limits' sliding window counter does on
its in-memory storage, which it replaces for `memory://`: same refusals, same reset times."""

from __future__ import annotations

import random
import time

import limits
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from service.api.deps import LocalWindows


async def test_local_windows_decide_as_limits_does_hit_for_hit(monkeypatch) -> None:
    clock = [1_764_000_000.25]
    monkeypatch.setattr(time, "time", lambda: clock[0])  # the one clock both read
    for text in ("5/second", "7/minute", "1/second", "0/minute"):
        item = limits.parse(text)
        reference, ours = SlidingWindowCounterRateLimiter(MemoryStorage()), LocalWindows(item)
        rng = random.Random(text)
        refused = 0
        for _ in range(600):
            clock[0] += rng.choice((0.0, 0.001, 0.05, 0.3, 0.9)) * item.get_expiry()
            key = rng.choice(("station:3", "coordinator:420500"))
            expected = None
            if not await reference.hit(item, key):
                expected = (await reference.get_window_stats(item, key)).reset_time
            got = ours.hit(key, clock[0])
            assert (got is None) == (expected is None), (text, clock[0])
            if expected is not None:
                refused += 1
                assert abs(got - expected) < 1e-6, (text, got, expected)
        assert refused, text  # the sequences do reach the limit
