"""The delegate session, judged from what the chain holds (pure).

The app trades as a delegate key; the User account's ``delegate`` field (read from the chain on
every account update and at least every ``delegation_check_s``) decides whether it may: revoked
(the default key) or a different delegate → automation off, with the reason. The session has a
TTL (``venues.drift.session_ttl_h``, default 24 h) counted from when the app set the delegate (or
first saw it): a warning an hour before the end, and at the end the delegate is revoked when the
owner key is at hand, else automation goes off and says why.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

import msgspec

NO_DELEGATE = "11111111111111111111111111111111"
WARN_BEFORE_MS = 3_600_000
Action = Literal["ok", "unknown", "warn", "expired", "revoked", "mismatch"]


class DelegationVerdict(msgspec.Struct, frozen=True, kw_only=True):
    action: Action
    ok: bool  # the app's delegate key may trade now
    onchain: str | None  # the delegate the account holds (None: not read yet)
    expected: str
    expires_at_ms: int | None
    reason: str = ""

    @property
    def badge(self) -> str:
        """The top bar's words for it: the delegate the account holds (abbreviated)."""
        if self.onchain is None:
            return "delegate ?"
        key = f"{self.onchain[:4]}…{self.onchain[-4:]}"
        if self.action == "revoked":
            return "DELEGATE REVOKED"
        if self.action == "mismatch":
            return f"DELEGATE MISMATCH {key}"
        if self.action == "expired":
            return f"DELEGATE EXPIRED {key}"
        return f"delegate {key}"

    def to_json(self) -> dict[str, object]:
        return {
            "action": self.action,
            "ok": self.ok,
            "delegate": self.onchain,
            "expected": self.expected,
            "expires_at_ms": self.expires_at_ms,
            "reason": self.reason,
            "badge": self.badge,
        }


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def evaluate(
    expected: str, onchain: str | None, set_at_ms: int | None, ttl_ms: int, now_ms: int
) -> DelegationVerdict:
    """What the delegate session allows now (see the module docstring)."""
    expires = None if set_at_ms is None else set_at_ms + ttl_ms

    def v(action: Action, ok: bool, reason: str = "") -> DelegationVerdict:
        return DelegationVerdict(
            action=action, ok=ok, onchain=onchain, expected=expected, expires_at_ms=expires, reason=reason
        )

    if onchain is None:
        return v("unknown", False, "the account's delegate has not been read yet")
    if onchain == NO_DELEGATE:
        return v("revoked", False, "the delegate was revoked on chain: the app's key can no longer trade")
    if onchain != expected:
        return v("mismatch", False, f"the account's delegate is {onchain}, not this app's key {expected}")
    if expires is not None and now_ms >= expires:
        return v("expired", False, f"the delegate session expired at {_utc(expires)}")
    if expires is not None and now_ms >= expires - WARN_BEFORE_MS:
        mins = max(0, (expires - now_ms) // 60_000)
        return v("warn", True, f"the delegate session ends at {_utc(expires)} (in {mins} min)")
    return v("ok", True)
