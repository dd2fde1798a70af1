"""Structured retention: how long a purpose keeps personal data, from which moment, and then what.

A notice promise such as "seven years after your last contact, deleted at the end of that year"
is a :class:`RetentionRule` (period ``P7Y``, anchor ``last_contact``, rounding ``end_of_year``,
action ``erase``); :func:`retention_due` turns it and the anchor's time into the moment the data
must be gone. Pure: the caller supplies every time.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from streams.core.periods import Period, PeriodField, add_months

#: A data category a notice names ("telephone-number"); same spelling rules as purpose names.
DATA_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"


class Anchor(StrEnum):
    """The moment a retention period runs from."""

    #: When the record itself was made: the visit, the log line, the chat, the transaction.
    COLLECTED = "collected"
    #: The subject's latest contact with the controller (or "latest engagement").
    LAST_CONTACT = "last_contact"
    #: The latest activity recorded with the subject (calls, emails, visits, quotes).
    LAST_ACTIVITY = "last_activity"
    #: The end of the contract or service agreement.
    CONTRACT_END = "contract_end"
    #: The account's latest traffic: inactivity is counted from it.
    ACCOUNT_INACTIVITY = "account_inactivity"
    #: The end of the event (seminar, training) the subject attended.
    EVENT_END = "event_end"


class Rounding(StrEnum):
    """Where the due moment moves after the period is added."""

    NONE = "none"
    #: To the end of that month (the first instant of the next month).
    END_OF_MONTH = "end_of_month"
    #: To the end of that year (the first instant of the next year).
    END_OF_YEAR = "end_of_year"


class Action(StrEnum):
    """What happens to the data when retention ends."""

    ERASE = "erase"
    ANONYMISE = "anonymise"


def _positive(period: Period) -> Period:
    if period.is_zero():
        raise ValueError("a retention period must be longer than zero")
    return period


def no_duplicates(values: tuple[str, ...]) -> tuple[str, ...]:
    repeated = sorted({v for i, v in enumerate(values) if v in values[:i]})
    if repeated:
        raise ValueError(f"duplicate entries: {', '.join(repeated)}")
    return values


DataCategory = Annotated[str, Field(pattern=DATA_PATTERN)]


class RetentionRule(BaseModel):
    """One retention promise of a purpose, for all its data or for the named data categories."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    period: Annotated[PeriodField, AfterValidator(_positive)]
    anchor: Anchor
    action: Action
    rounding: Rounding = Rounding.NONE
    #: Data categories the rule covers, as the notice names them; empty: all of the purpose's.
    data: Annotated[tuple[DataCategory, ...], AfterValidator(no_duplicates)] = ()
    #: The notice's own words, kept for people reading the policy.
    note: str = ""


def retention_due(rule: RetentionRule, anchor_time: datetime, zone: tzinfo = UTC) -> datetime:
    """When data kept under ``rule`` must be erased or anonymised, given the anchor's time.

    The period is added to the anchor in UTC (so a day is always 24 hours); rounding goes to
    the end of the month or year on ``zone``'s calendar (the controller's), so "the end of that
    year" is midnight on 1 January there. Returns an aware time in UTC.
    """
    if anchor_time.tzinfo is None:
        raise ValueError("anchor_time must be timezone-aware")
    due = rule.period.after(anchor_time.astimezone(UTC))
    if rule.rounding is Rounding.NONE:
        return due
    local = due.astimezone(zone)
    if rule.rounding is Rounding.END_OF_YEAR:
        boundary = datetime(local.year + 1, 1, 1)
    else:
        boundary = add_months(datetime(local.year, local.month, 1), 1)
    return boundary.replace(tzinfo=zone).astimezone(UTC)
