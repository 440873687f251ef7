"""WhatsApp's customer service window.

Free-form messages may be sent only within 24 hours of the customer's last message, counted from
Meta's `timestamp` on that message (not from when we received or relayed it). After that only
approved templates go through; Meta answers anything else with error 131047.
"""

from __future__ import annotations

from typing import NamedTuple

CUSTOMER_WINDOW_SECONDS = 24 * 3600


def window_open(last_customer_ts: int | None, now: float) -> bool:
    """True while a free-form message may still be sent.

    Closed at exactly 24 h: a message sent on the boundary would arrive after it. A timestamp
    ahead of our clock counts as open (the customer did just write).
    """
    closes = window_closes_at(last_customer_ts)
    return closes is not None and now < closes


def window_closes_at(last_customer_ts: int | None) -> float | None:
    """Epoch seconds when the window closes; None when the customer never wrote."""
    if last_customer_ts is None or isinstance(last_customer_ts, bool):
        return None
    return float(last_customer_ts) + CUSTOMER_WINDOW_SECONDS


class LastCustomerMessage(NamedTuple):
    """The customer's latest message, as far as the window cares: the window runs from its
    Meta `timestamp`; `profile_name` is the latest name the customer had, if any."""

    timestamp: int
    profile_name: str | None
