"""Capped exponential backoff with jitter: sleep max(base, U(0, min(cap, base * 2**n))), so every
delay lies in [base, cap] (1 s to 60 s by default) and reconnecting clients spread out."""

from __future__ import annotations

import random


class Backoff:
    """``next()`` returns the next delay; ``reset()`` after a connection proved healthy."""

    __slots__ = ("_rng", "attempts", "base_s", "cap_s", "min_s")

    def __init__(self, base_s: float = 1.0, cap_s: float = 60.0, min_s: float | None = None,
                 rng: random.Random | None = None) -> None:
        if base_s <= 0 or cap_s < base_s:
            raise ValueError("need 0 < base_s <= cap_s")
        self.base_s = base_s
        self.cap_s = cap_s
        # full jitter, but never hammer: at least ``min_s`` (default: base) between attempts
        self.min_s = base_s if min_s is None else min_s
        self.attempts = 0
        self._rng = rng or random.Random()

    def ceiling(self) -> float:
        return min(self.cap_s, self.base_s * (2.0 ** min(self.attempts, 30)))

    def next(self) -> float:
        hi = self.ceiling()
        self.attempts += 1
        return max(self.min_s, self._rng.uniform(0.0, hi))

    def reset(self) -> None:
        self.attempts = 0
