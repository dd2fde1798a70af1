"""Consent lifetimes and the wait for a double opt-in confirmation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.core.lifetimes import consent_expires, pending_lapses
from streams.core.policy import Purpose, load_policy, parse_policy

from .test_policy import CLOCKS

moments = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)


@pytest.fixture(scope="module")
def newsletter() -> Purpose:
    return parse_policy(CLOCKS).controllers["acme-se"].purposes["newsletter"]


def test_thirteen_months_of_consent(newsletter: Purpose) -> None:
    given_at = datetime(2025, 1, 31, 14, 30, tzinfo=UTC)
    assert consent_expires(newsletter, given_at) == datetime(2026, 2, 28, 14, 30, tzinfo=UTC)


def test_pending_sign_up_lapses_after_the_window(newsletter: Purpose) -> None:
    requested = datetime(2025, 3, 29, 23, 0, tzinfo=UTC)
    assert pending_lapses(newsletter, requested) == datetime(2025, 4, 5, 23, 0, tzinfo=UTC)


def test_purposes_without_lifetimes_never_expire() -> None:
    newsletter = load_policy().controllers["hms-se"].purposes["newsletter"]
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert consent_expires(newsletter, now) is None
    assert pending_lapses(newsletter, now) is None


def test_naive_times_are_refused(newsletter: Purpose) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        consent_expires(newsletter, datetime(2025, 1, 1))


@given(given_at=moments)
def test_consent_outlasts_the_confirmation_window(newsletter: Purpose, given_at: datetime) -> None:
    expires = consent_expires(newsletter, given_at)
    lapses = pending_lapses(newsletter, given_at)
    assert expires is not None and lapses is not None
    assert given_at < lapses < expires
