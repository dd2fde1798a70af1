"""Legal and promised deadlines: when an opt-out or a request must have been honoured.

A :class:`DeadlineRule` is either a count of business days in a jurisdiction ("10 business
days") or a calendar period ("one month", "within four weeks"). The statutory ones are in
:data:`LEGAL_DEADLINES`; a controller's own promises come from its policy (``promises``).
:func:`deadline` is pure: the start is given, never read from a clock.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from streams.core.calendars import (
    Jurisdiction,
    add_business_days,
    is_business_day,
    next_business_day,
    zone,
)
from streams.core.periods import Period, PeriodField


class DeadlineRule(BaseModel):
    """How long a clock runs: ``business_days``, or a calendar period ``within``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Business days after the day of receipt; the deadline is the end of the last one.
    business_days: Annotated[int, Field(gt=0, strict=True)] | None = None
    #: A calendar period (ISO 8601 duration) from the moment of receipt.
    within: PeriodField | None = None
    #: With ``within``: the period runs to the end of its last day.
    end_of_day: StrictBool = False
    #: With ``within`` and ``end_of_day``: a last day that is not a business day moves to the
    #: next business day (as EU Regulation 1182/71 does for a GDPR month).
    to_business_day: StrictBool = False
    #: Where the rule comes from, in the source's own words.
    note: str = ""

    @model_validator(mode="after")
    def _one_measure(self) -> Self:
        if (self.business_days is None) == (self.within is None):
            raise ValueError("give either business_days or within, not both or neither")
        if self.within is not None and self.within.is_zero():
            raise ValueError("within must be longer than zero")
        if self.business_days is not None and (self.end_of_day or self.to_business_day):
            raise ValueError("end_of_day and to_business_day apply to within, not business_days")
        if self.to_business_day and not self.end_of_day:
            raise ValueError("to_business_day needs end_of_day = true")
        return self


class RequestKind(StrEnum):
    """What a controller's own deadline promise is about."""

    #: Any request about one's personal data (access, correction, erasure, objection).
    REQUESTS = "requests"
    #: Handing customer data back on request (a processor's promise).
    DATA_RETURN = "data_return"


class LegalDeadline(StrEnum):
    """Deadlines set by law or by the mailbox providers, whoever the controller is."""

    #: Gmail and Yahoo bulk sender rules: unsubscribe honoured within 2 days.
    BULK_SENDER_UNSUBSCRIBE = "bulk_sender_unsubscribe"
    #: CAN-SPAM (15 U.S.C. 7704(a)(4)): opt-out honoured within 10 business days.
    CAN_SPAM_OPT_OUT = "can_spam_opt_out"
    #: CASL s. 11(3): unsubscribe given effect within 10 business days.
    CASL_UNSUBSCRIBE = "casl_unsubscribe"
    #: CCPA regulations s. 7026(f): opt-out of sale/sharing (GPC too) within 15 business days.
    CCPA_OPT_OUT = "ccpa_opt_out"
    #: GDPR art. 12(3): access, erasure and the other rights answered within one month.
    GDPR_REQUEST = "gdpr_request"
    #: CCPA s. 1798.130(a)(2) and regulations s. 7021(b): a request to know answered within
    #: 45 calendar days (the Virginia, Colorado and Connecticut laws give the same).
    CCPA_REQUEST_TO_KNOW = "ccpa_request_to_know"


LEGAL_DEADLINES: dict[LegalDeadline, DeadlineRule] = {
    LegalDeadline.BULK_SENDER_UNSUBSCRIBE: DeadlineRule(
        within=Period.parse("P2D"), note="Gmail and Yahoo bulk sender requirements: 2 days"
    ),
    LegalDeadline.CAN_SPAM_OPT_OUT: DeadlineRule(business_days=10, note="CAN-SPAM"),
    LegalDeadline.CASL_UNSUBSCRIBE: DeadlineRule(business_days=10, note="CASL"),
    LegalDeadline.CCPA_OPT_OUT: DeadlineRule(business_days=15, note="CCPA, incl. GPC"),
    LegalDeadline.GDPR_REQUEST: DeadlineRule(
        within=Period.parse("P1M"),
        end_of_day=True,
        to_business_day=True,
        note="GDPR art. 12(3), counted as EU Regulation 1182/71 counts a month",
    ),
    LegalDeadline.CCPA_REQUEST_TO_KNOW: DeadlineRule(
        within=Period.parse("P45D"),
        end_of_day=True,
        note="CCPA s. 1798.130(a)(2): 45 calendar days to answer a request to know",
    ),
}


def deadline(
    kind: DeadlineRule | LegalDeadline, start: datetime, jurisdiction: Jurisdiction
) -> datetime:
    """When a clock of ``kind`` started at ``start`` runs out, as an aware UTC time.

    Business days are counted on the jurisdiction's calendar after the day of receipt (so a
    Saturday receipt's first day is Monday); the deadline is midnight after the last one.
    """
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    rule = LEGAL_DEADLINES[kind] if isinstance(kind, LegalDeadline) else kind
    tz = zone(jurisdiction)
    local = start.astimezone(tz)
    if rule.business_days is not None:
        return _end_of(add_business_days(local.date(), rule.business_days, jurisdiction), tz)
    assert rule.within is not None
    if not rule.end_of_day:
        return rule.within.after(start.astimezone(UTC))
    last = rule.within.after(local.replace(tzinfo=None)).date()
    if rule.to_business_day and not is_business_day(last, jurisdiction):
        last = next_business_day(last, jurisdiction)
    return _end_of(last, tz)


def _end_of(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=tz).astimezone(UTC)
