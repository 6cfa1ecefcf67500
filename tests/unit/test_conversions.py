"""The one seconds-to-milliseconds rule and the one reply-to-str decoder."""

import pytest

from app import clock
from app.store.codec import text, text_or_none


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(0, 0), (0.1, 100), (1.5, 1500), (2.0004, 2000), (2.0006, 2001), (86_400, 86_400_000)],
)
def test_seconds_become_the_nearest_whole_millisecond(seconds: float, expected: int) -> None:
    assert clock.ms(seconds) == expected
    assert isinstance(clock.ms(seconds), int)


def test_a_reply_reads_the_same_from_a_decoding_client_and_a_bytes_one() -> None:
    assert text(b"run:1") == text("run:1") == "run:1"
    assert text(7) == "7"
    assert text_or_none(None) is None
    assert text_or_none(b"x") == "x"


def test_a_reply_that_is_not_utf8_is_shown_not_raised() -> None:
    assert text(b"a\xffb") == "a\ufffdb"
