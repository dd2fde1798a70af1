"""Business days per jurisdiction: Monday to Friday less the public holidays there.

Holiday dates come from the ``holidays`` package (movable feasts, substitute days and one-off
holidays such as the UK's 2023 coronation are its job, not ours). A day counts by the
jurisdiction's own calendar date, so each jurisdiction also names the zone its days run in.
"""

from __future__ import annotations

from datetime import date, timedelta
from enum import StrEnum
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo


class Jurisdiction(StrEnum):
    """Where a clock runs: the seed controllers' countries, plus the US and Canada (federal)."""

    SE = "SE"
    NL = "NL"
    #: England and Wales (the UK controllers' bank holidays).
    GB = "GB"
    #: US federal holidays, days counted in Eastern time.
    US = "US"
    #: Canadian federal holidays, days counted in Eastern time (Ottawa).
    CA = "CA"


_ZONES = {
    Jurisdiction.SE: "Europe/Stockholm",
    Jurisdiction.NL: "Europe/Amsterdam",
    Jurisdiction.GB: "Europe/London",
    Jurisdiction.US: "America/New_York",
    Jurisdiction.CA: "America/Toronto",
}

# Sweden: midsummer, Christmas and New Year's Eve are not business days for statutory
# deadlines (lag 1930:173), hence "de_facto". Canada: the federal government's holidays.
_CALENDARS: dict[Jurisdiction, dict[str, Any]] = {
    Jurisdiction.SE: {"country": "SE", "categories": ("public", "de_facto")},
    Jurisdiction.NL: {"country": "NL"},
    Jurisdiction.GB: {"country": "GB", "subdiv": "ENG"},
    Jurisdiction.US: {"country": "US"},
    Jurisdiction.CA: {"country": "CA", "categories": ("public", "government")},
}


def zone(jurisdiction: Jurisdiction) -> ZoneInfo:
    """The time zone whose calendar dates the jurisdiction's days are."""
    return ZoneInfo(_ZONES[jurisdiction])


@cache
def public_holidays(jurisdiction: Jurisdiction, year: int) -> frozenset[date]:
    """The jurisdiction's public holidays in ``year``."""
    import holidays  # here, not at the top: it takes a quarter second to import

    return frozenset(holidays.country_holidays(years=year, **_CALENDARS[jurisdiction]).keys())


def is_business_day(day: date, jurisdiction: Jurisdiction) -> bool:
    return day.weekday() < 5 and day not in public_holidays(jurisdiction, day.year)


def next_business_day(day: date, jurisdiction: Jurisdiction) -> date:
    """``day`` itself when it is a business day, otherwise the first one after it."""
    while not is_business_day(day, jurisdiction):
        day += timedelta(days=1)
    return day


def add_business_days(day: date, count: int, jurisdiction: Jurisdiction) -> date:
    """The ``count``-th business day after ``day`` (``day`` itself is not counted)."""
    for _ in range(count):
        day = next_business_day(day + timedelta(days=1), jurisdiction)
    return day
