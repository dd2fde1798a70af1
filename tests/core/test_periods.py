"""ISO 8601 periods: parsing, and calendar-exact addition of months and years."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.core.periods import Period, add_months

moments = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)
periods = st.builds(
    lambda y, m, d, h: Period.parse(f"P{y}Y{m}M{d}DT{h}H"),
    st.integers(0, 20),
    st.integers(0, 30),
    st.integers(0, 400),
    st.integers(0, 48),
)


@pytest.mark.parametrize(
    ("text", "months", "exact", "canonical"),
    [
        ("P45D", 0, timedelta(days=45), "P45D"),
        ("P6M", 6, timedelta(0), "P6M"),
        ("P7Y", 84, timedelta(0), "P7Y"),
        ("P10Y", 120, timedelta(0), "P10Y"),
        ("P4W", 0, timedelta(days=28), "P28D"),
        ("P13M", 13, timedelta(0), "P1Y1M"),
        ("PT48H", 0, timedelta(hours=48), "P2D"),
        ("P1DT2H30M", 0, timedelta(days=1, hours=2, minutes=30), "P1DT2H30M"),
        ("P0D", 0, timedelta(0), "P0D"),
    ],
)
def test_parse(text: str, months: int, exact: timedelta, canonical: str) -> None:
    period = Period.parse(text)
    assert (period.months, period.exact) == (months, exact)
    assert str(period) == canonical
    assert Period.parse(str(period)) == period


@pytest.mark.parametrize("text", ["", "P", "PT", "P1DT", "7 years", "-P1D", "P1.5Y", "p1d", "P1H"])
def test_parse_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="not an ISO 8601 duration"):
        Period.parse(text)


def test_months_clamp_to_the_last_day() -> None:
    assert add_months(datetime(2024, 1, 31, 9, tzinfo=UTC), 1) == datetime(
        2024, 2, 29, 9, tzinfo=UTC
    )
    assert add_months(datetime(2023, 1, 31, tzinfo=UTC), 1) == datetime(2023, 2, 28, tzinfo=UTC)
    assert Period.parse("P1Y").after(datetime(2024, 2, 29, tzinfo=UTC)) == datetime(
        2025, 2, 28, tzinfo=UTC
    )
    assert Period.parse("P6M").after(datetime(2025, 8, 31, tzinfo=UTC)) == datetime(
        2026, 2, 28, tzinfo=UTC
    )
    assert add_months(datetime(2025, 11, 15, tzinfo=UTC), 2) == datetime(2026, 1, 15, tzinfo=UTC)


@given(moment=moments, period=periods)
def test_after_lies_between_shortest_and_longest(moment: datetime, period: Period) -> None:
    later = period.after(moment)
    assert moment + period.shortest() <= later <= moment + period.longest()


@given(moment=moments, years=st.integers(0, 50), months=st.integers(0, 11))
def test_calendar_months_keep_the_day_unless_the_month_is_shorter(
    moment: datetime, years: int, months: int
) -> None:
    later = Period.parse(f"P{years}Y{months}M").after(moment)
    assert (later.year * 12 + later.month) - (
        moment.year * 12 + moment.month
    ) == 12 * years + months
    assert later.day == moment.day or (
        later.day < moment.day and (later + timedelta(days=1)).day == 1
    )
    assert later.time() == moment.time()


@given(first=moments, second=moments, period=periods)
def test_after_is_monotone(first: datetime, second: datetime, period: Period) -> None:
    first, second = sorted((first, second))
    assert period.after(first) <= period.after(second)
