"""When retention ends: the seed notices' promises, and properties of the calculation."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.core.calendars import zone
from streams.core.periods import Period
from streams.core.policy import Policy, load_policy
from streams.core.retention import Action, Anchor, RetentionRule, Rounding, retention_due

STOCKHOLM = ZoneInfo("Europe/Stockholm")
moments = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)
rules = st.builds(
    RetentionRule,
    period=st.sampled_from(["P45D", "P6M", "P3Y", "P7Y", "P10Y", "P14D", "P1Y1M", "PT48H"]),
    anchor=st.sampled_from(Anchor),
    action=st.sampled_from(Action),
    rounding=st.sampled_from(Rounding),
)


@pytest.fixture(scope="module")
def example() -> Policy:
    return load_policy()


def rule_of(example: Policy, controller: str, purpose: str, index: int = 0) -> RetentionRule:
    return example.controllers[controller].purposes[purpose].retention[index]


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("controller", "purpose", "anchor_time", "due"),
    [
        # "seven years after your last contact ... deleted at the end of that year"
        ("hms-se", "order-handling", at(2024, 3, 5, 12), at(2031, 12, 31, 23)),
        # "at most ten years + the current year"
        ("hms-se", "bookkeeping", at(2024, 12, 30), at(2034, 12, 31, 23)),
        # "no traffic on the account for seven years" (Feb 29 has no match seven years on)
        ("hms-se", "cloud-services", at(2024, 2, 29, 8), at(2031, 2, 28, 8)),
        ("hms-se", "customer-relationship", at(2024, 5, 1, 10), at(2031, 5, 1, 10)),
        ("hms-se", "technical-support", at(2024, 5, 1, 10), at(2031, 5, 1, 10)),
        ("hms-se", "web-analytics", at(2024, 5, 1, 10), at(2027, 5, 1, 10)),
        ("hms-se", "server-logs", at(2024, 5, 1, 8), at(2024, 11, 1, 8)),
        ("hms-se", "live-chat", at(2024, 1, 1, 10), at(2024, 2, 15, 10)),
        ("hms-se", "event-attendance", at(2024, 9, 12, 16), at(2024, 9, 13, 16)),
        ("hms-contact-nl", "newsletter", at(2024, 2, 29, 10), at(2026, 2, 28, 10)),
        ("sms-tech", "enquiries", at(2024, 8, 31, 10), at(2025, 2, 28, 10)),
        ("sms-tech", "cloud-data", at(2024, 12, 20, 17), at(2025, 1, 3, 17)),
    ],
)
def test_seed_promises(
    example: Policy, controller: str, purpose: str, anchor_time: datetime, due: datetime
) -> None:
    jurisdiction = example.controllers[controller].jurisdiction
    assert jurisdiction is not None
    rule = rule_of(example, controller, purpose)
    assert retention_due(rule, anchor_time, zone(jurisdiction)) == due


def test_actions_and_data_categories_of_the_seeds(example: Policy) -> None:
    assert rule_of(example, "hms-se", "technical-support").action is Action.ANONYMISE
    assert rule_of(example, "hms-se", "event-attendance").data == ("dietary-preferences",)
    web = rule_of(example, "hms-contact-nl", "web-analytics")
    assert set(web.data) == {
        "ip-address",
        "browser-and-device",
        "website-activity",
        "website-behaviour",
    }
    assert all(not p.retention for p in example.controllers["kms-uk"].purposes.values())


def test_end_of_year_in_utc_and_end_of_month() -> None:
    yearly = RetentionRule(
        period=Period.parse("P7Y"),
        anchor=Anchor.LAST_CONTACT,
        action=Action.ERASE,
        rounding=Rounding.END_OF_YEAR,
    )
    assert retention_due(yearly, at(2024, 12, 31, 23, 30)) == at(2032, 1, 1)
    # 23:30 UTC on 31 December is already 1 January in Stockholm: one more year.
    assert retention_due(yearly, at(2024, 12, 31, 23, 30), STOCKHOLM) == at(2032, 12, 31, 23)
    monthly = yearly.model_copy(
        update={"rounding": Rounding.END_OF_MONTH, "period": Period.parse("P6M")}
    )
    assert retention_due(monthly, at(2024, 8, 31)) == at(2025, 3, 1)
    assert retention_due(monthly, at(2024, 6, 15)) == at(2025, 1, 1)


def test_naive_anchor_is_refused() -> None:
    rule = RetentionRule(period=Period.parse("P1D"), anchor=Anchor.COLLECTED, action=Action.ERASE)
    with pytest.raises(ValueError, match="timezone-aware"):
        retention_due(rule, datetime(2024, 1, 1))


@given(rule=rules, anchor_time=moments)
def test_due_is_the_period_after_the_anchor_then_rounded_up(
    rule: RetentionRule, anchor_time: datetime
) -> None:
    due = retention_due(rule, anchor_time)
    plain = rule.period.after(anchor_time)
    assert due.tzinfo is UTC
    if rule.rounding is Rounding.NONE:
        assert due == plain
    else:
        assert plain < due
        assert due.time() == datetime.min.time() and due.day == 1
        if rule.rounding is Rounding.END_OF_YEAR:
            assert (due.month, due.year) == (1, plain.year + 1)
        else:
            assert due - plain <= Period.parse("P1M").longest()


@given(rule=rules, first=moments, second=moments)
def test_due_is_monotone_in_the_anchor(
    rule: RetentionRule, first: datetime, second: datetime
) -> None:
    first, second = sorted((first, second))
    for tz in (UTC, STOCKHOLM):
        assert retention_due(rule, first, tz) <= retention_due(rule, second, tz)


@given(rule=rules, anchor_time=moments)
def test_due_never_comes_before_the_shortest_period(
    rule: RetentionRule, anchor_time: datetime
) -> None:
    for tz in (UTC, STOCKHOLM):
        assert retention_due(rule, anchor_time, tz) >= anchor_time + rule.period.shortest()
