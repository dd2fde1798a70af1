"""Calendar periods written as ISO 8601 durations (``P45D``, ``P6M``, ``P7Y``, ``PT48H``).

Notices promise periods in calendar terms ("six months", "seven years"), which a ``timedelta``
cannot hold: a month is 28 to 31 days. A :class:`Period` keeps years and months apart from
days and time and adds them the way a calendar does: ``Jan 31 + P1M`` is the last day of
February, ``Feb 29 + P1Y`` is Feb 28.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import PlainSerializer, PlainValidator

_ISO = re.compile(
    r"P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?"
)


@dataclass(frozen=True, order=False)
class Period:
    """Years and months (calendar) plus an exact span (weeks, days, time)."""

    months: int = 0
    exact: timedelta = timedelta(0)

    @classmethod
    def parse(cls, text: str) -> Period:
        """Parse an ISO 8601 duration without signs or fractions; it must not be empty."""
        match = _ISO.fullmatch(text)
        if match is None or text in ("P", "PT") or text.endswith("T"):
            raise ValueError(
                f"{text!r} is not an ISO 8601 duration such as P45D, P6M, P7Y or PT48H "
                "(whole numbers, no sign)"
            )
        n = {key: int(value or 0) for key, value in match.groupdict().items()}
        exact = timedelta(
            weeks=n["weeks"],
            days=n["days"],
            hours=n["hours"],
            minutes=n["minutes"],
            seconds=n["seconds"],
        )
        return cls(months=12 * n["years"] + n["months"], exact=exact)

    def is_zero(self) -> bool:
        return self.months == 0 and not self.exact

    def shortest(self) -> timedelta:
        """The least time this period can span (a month counts as 28 days, a year as 365)."""
        years, months = divmod(self.months, 12)
        return timedelta(days=365 * years + 28 * months) + self.exact

    def longest(self) -> timedelta:
        """The most time this period can span (a month counts as 31 days, a year as 366)."""
        years, months = divmod(self.months, 12)
        return timedelta(days=366 * years + 31 * months) + self.exact

    def after(self, moment: datetime) -> datetime:
        """``moment`` plus this period: months on the calendar (clamped to the month's last
        day), then the exact span."""
        return add_months(moment, self.months) + self.exact

    def before(self, moment: datetime) -> datetime:
        """``moment`` less this period: the exact span, then months on the calendar."""
        return add_months(moment - self.exact, -self.months)

    def __str__(self) -> str:
        years, months = divmod(self.months, 12)
        days, seconds = self.exact.days, self.exact.seconds
        hours, rest = divmod(seconds, 3600)
        minutes, seconds = divmod(rest, 60)
        date = "".join(f"{v}{u}" for v, u in ((years, "Y"), (months, "M"), (days, "D")) if v)
        time = "".join(f"{v}{u}" for v, u in ((hours, "H"), (minutes, "M"), (seconds, "S")) if v)
        return "P" + (date or ("" if time else "0D")) + (f"T{time}" if time else "")


def add_months(moment: datetime, months: int) -> datetime:
    """Same day and time ``months`` later; a day the target month lacks becomes its last."""
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def _parse(value: Any) -> Period:
    if isinstance(value, Period):
        return value
    if not isinstance(value, str):
        raise ValueError('write the period as an ISO 8601 duration string, e.g. "P6M"')
    return Period.parse(value)


#: A policy field holding a period: a duration string in TOML, a :class:`Period` in Python.
PeriodField = Annotated[Period, PlainValidator(_parse), PlainSerializer(str, return_type=str)]
