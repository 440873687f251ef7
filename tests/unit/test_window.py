import pytest

from bot.rules.window import CUSTOMER_WINDOW_SECONDS, window_closes_at, window_open

T = 1_800_000_000


def test_constant():
    assert CUSTOMER_WINDOW_SECONDS == 86400


@pytest.mark.parametrize(
    ("last", "now", "is_open"),
    [
        (None, T, False),
        (T, T, True),
        (T, T + 86399.999, True),
        (T, T + 86400, False),  # closed on the boundary: a send there would land after it
        (T, T + 10 * 86400, False),
        (T + 600, T, True),  # customer clock ahead of ours
        (0, 86399, True),
    ],
)
def test_window_open(last, now, is_open):
    assert window_open(last, now) is is_open


@pytest.mark.parametrize(("last", "closes"), [(None, None), (T, T + 86400.0), (0, 86400.0), (True, None)])
def test_window_closes_at(last, closes):
    assert window_closes_at(last) == closes
