"""Legal and promised deadlines over per-jurisdiction business-day calendars."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from streams.core.calendars import (
    Jurisdiction,
    add_business_days,
    is_business_day,
    next_business_day,
    zone,
)
from streams.core.deadlines import (
    LEGAL_DEADLINES,
    DeadlineRule,
    LegalDeadline,
    RequestKind,
    deadline,
)
from streams.core.periods import Period
from streams.core.policy import load_policy
from tests.support.examples import examples

moments = st.datetimes(
    min_value=datetime(2015, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
)
jurisdictions = st.sampled_from(Jurisdiction)
business_rules = st.builds(DeadlineRule, business_days=st.integers(1, 30))
calendar_rules = st.builds(
    DeadlineRule,
    within=st.sampled_from(["P2D", "P1M", "P4W", "P30D", "PT48H"]).map(Period.parse),
    end_of_day=st.booleans(),
).flatmap(
    lambda rule: (
        st.just(rule)
        if not rule.end_of_day
        else st.sampled_from([rule, rule.model_copy(update={"to_business_day": True})])
    )
)
rules = st.one_of(business_rules, calendar_rules, st.sampled_from(LegalDeadline))


def local(moment: datetime, jurisdiction: Jurisdiction) -> datetime:
    return moment.astimezone(zone(jurisdiction))


def last_day(due: datetime, jurisdiction: Jurisdiction) -> date:
    """The calendar day a deadline at midnight closes."""
    return local(due - timedelta(microseconds=1), jurisdiction).date()


# --- calendars --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("jurisdiction", "day"),
    [
        (Jurisdiction.SE, date(2026, 6, 19)),  # midsommarafton
        (Jurisdiction.SE, date(2026, 12, 24)),  # julafton
        (Jurisdiction.SE, date(2027, 1, 6)),  # trettondedag jul
        (Jurisdiction.SE, date(2026, 5, 14)),  # Kristi himmelfärdsdag (movable)
        (Jurisdiction.NL, date(2026, 4, 27)),  # Koningsdag
        (Jurisdiction.NL, date(2026, 5, 25)),  # Tweede Pinksterdag (movable)
        (Jurisdiction.GB, date(2023, 5, 8)),  # the coronation: a one-off bank holiday
        (Jurisdiction.GB, date(2026, 8, 31)),  # summer bank holiday
        (Jurisdiction.GB, date(2027, 12, 28)),  # Boxing Day substitute
        (Jurisdiction.US, date(2026, 7, 3)),  # Independence Day observed on the Friday
        (Jurisdiction.US, date(2026, 11, 26)),  # Thanksgiving
        (Jurisdiction.US, date(2026, 6, 19)),  # Juneteenth
        (Jurisdiction.CA, date(2026, 5, 18)),  # Victoria Day
        (Jurisdiction.CA, date(2026, 10, 12)),  # Thanksgiving
    ],
)
def test_public_holidays_are_not_business_days(jurisdiction: Jurisdiction, day: date) -> None:
    assert day.weekday() < 5
    assert not is_business_day(day, jurisdiction)


def test_weekends_and_ordinary_days() -> None:
    for jurisdiction in Jurisdiction:
        assert not is_business_day(date(2026, 3, 14), jurisdiction)  # Saturday
        assert not is_business_day(date(2026, 3, 15), jurisdiction)  # Sunday
        assert is_business_day(date(2026, 3, 16), jurisdiction)
    assert next_business_day(date(2026, 12, 24), Jurisdiction.SE) == date(2026, 12, 28)
    assert add_business_days(date(2026, 12, 23), 1, Jurisdiction.GB) == date(2026, 12, 24)
    assert add_business_days(date(2026, 12, 23), 1, Jurisdiction.SE) == date(2026, 12, 28)


# --- deadlines: worked examples ---------------------------------------------------------------

FRIDAY_BEFORE_CHRISTMAS = datetime(2026, 12, 18, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kind", "jurisdiction", "due"),
    [
        # 48 hours, whatever the calendar says
        (LegalDeadline.BULK_SENDER_UNSUBSCRIBE, Jurisdiction.US, datetime(2026, 12, 20, 15)),
        # 21-24, 28-31 Dec, 4-5 Jan (25 Dec and 1 Jan are federal holidays): end of 5 Jan in
        # New York
        (LegalDeadline.CAN_SPAM_OPT_OUT, Jurisdiction.US, datetime(2027, 1, 6, 5)),
        # Canada also closes 28 Dec (Boxing Day observed): end of 6 Jan in Ottawa
        (LegalDeadline.CASL_UNSUBSCRIBE, Jurisdiction.CA, datetime(2027, 1, 7, 5)),
        (LegalDeadline.CCPA_OPT_OUT, Jurisdiction.US, datetime(2027, 1, 13, 5)),
        # one month: 18 Jan 2027, a Monday, in Sweden ...
        (LegalDeadline.GDPR_REQUEST, Jurisdiction.SE, datetime(2027, 1, 18, 23)),
        # ... but Martin Luther King Day in the US, so the next business day
        (LegalDeadline.GDPR_REQUEST, Jurisdiction.US, datetime(2027, 1, 20, 5)),
    ],
)
def test_legal_deadlines(kind: LegalDeadline, jurisdiction: Jurisdiction, due: datetime) -> None:
    assert deadline(kind, FRIDAY_BEFORE_CHRISTMAS, jurisdiction) == due.replace(tzinfo=UTC)


def test_gdpr_month_ending_on_a_weekend_moves_to_monday() -> None:
    # 30 Jan 2027 + one month = 28 Feb 2027 (Sunday) -> end of Monday 1 March, Amsterdam time.
    start = datetime(2027, 1, 30, 9, tzinfo=UTC)
    due = deadline(LegalDeadline.GDPR_REQUEST, start, Jurisdiction.NL)
    assert due == datetime(2027, 3, 1, 23, tzinfo=UTC)


def test_the_seed_controllers_promises() -> None:
    policy = load_policy()
    sms, nl = policy.controllers["sms-tech"], policy.controllers["hms-contact-nl"]
    start = datetime(2026, 12, 23, 16, tzinfo=UTC)
    # "returned within three working days": 24 Dec, then 29 and 30 Dec (25-28 are closed)
    data_return = sms.promises[RequestKind.DATA_RETURN]
    assert deadline(data_return, start, Jurisdiction.GB) == datetime(2026, 12, 31, tzinfo=UTC)
    # "within thirty (30) days"
    requests = sms.promises[RequestKind.REQUESTS]
    assert deadline(requests, start, Jurisdiction.GB) == datetime(2027, 1, 22, 16, tzinfo=UTC)
    # "within four weeks at the latest"
    promise = nl.promises[RequestKind.REQUESTS]
    assert deadline(promise, start, Jurisdiction.NL) == datetime(2027, 1, 20, 16, tzinfo=UTC)


def test_a_weekend_request_counts_from_monday() -> None:
    saturday = datetime(2026, 3, 14, 10, tzinfo=UTC)
    friday = datetime(2026, 3, 13, 22, tzinfo=UTC)  # already Saturday in Stockholm
    one_day = DeadlineRule(business_days=1)
    assert deadline(one_day, saturday, Jurisdiction.GB) == datetime(2026, 3, 17, tzinfo=UTC)
    assert deadline(one_day, friday, Jurisdiction.SE) == datetime(2026, 3, 16, 23, tzinfo=UTC)


def test_rule_shape_is_checked() -> None:
    with pytest.raises(ValidationError, match="either business_days or within"):
        DeadlineRule()
    with pytest.raises(ValidationError, match="either business_days or within"):
        DeadlineRule(business_days=3, within=Period.parse("P3D"))
    with pytest.raises(ValidationError, match="needs end_of_day"):
        DeadlineRule(within=Period.parse("P1M"), to_business_day=True)
    with pytest.raises(ValidationError, match="apply to within"):
        DeadlineRule(business_days=3, end_of_day=True)
    with pytest.raises(ValidationError, match="longer than zero"):
        DeadlineRule(within=Period.parse("P0D"))
    with pytest.raises(ValueError, match="timezone-aware"):
        deadline(LegalDeadline.GDPR_REQUEST, datetime(2026, 1, 1), Jurisdiction.SE)


def test_every_legal_deadline_has_a_rule() -> None:
    assert set(LEGAL_DEADLINES) == set(LegalDeadline)


# --- deadlines: properties --------------------------------------------------------------------


@settings(max_examples=examples(300), deadline=None)
@given(rule=st.one_of(business_rules, calendar_rules), start=moments, where=jurisdictions)
def test_deadline_is_after_the_start(
    rule: DeadlineRule, start: datetime, where: Jurisdiction
) -> None:
    due = deadline(rule, start, where)
    assert due.tzinfo is UTC
    assert due > start
    if rule.within is not None and rule.end_of_day:
        # whole calendar days on the jurisdiction's wall clock (a DST day has 23 or 25 hours)
        last = rule.within.after(local(start, where).replace(tzinfo=None)).date()
        assert last_day(due, where) >= last
        assert last_day(due, where) == last or rule.to_business_day
    elif rule.within is not None:
        assert start + rule.within.shortest() <= due <= start + rule.within.longest()


@settings(max_examples=examples(300), deadline=None)
@given(rule=business_rules, start=moments, where=jurisdictions)
def test_business_day_deadlines_close_a_business_day(
    rule: DeadlineRule, start: datetime, where: Jurisdiction
) -> None:
    assert rule.business_days is not None
    due = deadline(rule, start, where)
    closed = last_day(due, where)
    assert local(due, where).time() == datetime.min.time()
    assert is_business_day(closed, where)
    counted = [
        day
        for n in range(1, (closed - local(start, where).date()).days + 1)
        if is_business_day(day := local(start, where).date() + timedelta(days=n), where)
    ]
    assert len(counted) == rule.business_days


@settings(max_examples=examples(300), deadline=None)
@given(start=moments, where=jurisdictions)
def test_gdpr_month_ends_on_a_business_day(start: datetime, where: Jurisdiction) -> None:
    due = deadline(LegalDeadline.GDPR_REQUEST, start, where)
    assert is_business_day(last_day(due, where), where)


@settings(max_examples=examples(300), deadline=None)
@given(rule=rules, first=moments, second=moments, where=jurisdictions)
def test_deadline_is_monotone_in_the_start(
    rule: DeadlineRule | LegalDeadline, first: datetime, second: datetime, where: Jurisdiction
) -> None:
    first, second = sorted((first, second))
    assert deadline(rule, first, where) <= deadline(rule, second, where)
