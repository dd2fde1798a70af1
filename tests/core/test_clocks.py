"""Deadline clocks: the rule chosen per event, and the summary an auditor reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.events import ConsentEvent
from streams.core.clocks import (
    Clock,
    ClockRules,
    Stop,
    Summary,
    applicable,
    bucket_bound,
    bucket_of,
    clock_for,
    fulfils,
)
from streams.core.policy import Controller, Policy, load_policy

SEEDS: Policy = load_policy()
# Friday 2026-11-06 10:00 UTC.
FRIDAY = datetime(2026, 11, 6, 10, tzinfo=UTC)


def event(type: str, controller: str = "kms-uk", **fields: Any) -> ConsentEvent:
    data = {
        "event_id": f"e-{type}",
        "type": type,
        "occurred_at": fields.pop("occurred_at", FRIDAY),
        "controller": controller,
        "subject_id": "s-1",
        **fields,
    }
    return ConsentEvent.model_validate(data, context={"now": FRIDAY + timedelta(days=999)})


def us_controller() -> Controller:
    kms = SEEDS.controllers["kms-uk"]
    return kms.model_copy(update={"jurisdiction": None, "promises": {}})


def test_an_email_unsubscribe_runs_against_the_two_day_bulk_sender_rule() -> None:
    clock = clock_for(event("unsubscribed"), SEEDS.controllers["kms-uk"])
    assert clock is not None
    names = [name for name, _, _ in applicable(event("unsubscribed"), SEEDS.controllers["kms-uk"])]
    assert names == ["bulk_sender_unsubscribe", "gdpr_request"]
    assert (clock.rule, clock.deadline, clock.stop) == (
        "bulk_sender_unsubscribe",
        FRIDAY + timedelta(days=2),
        Stop.SENT,
    )


def test_an_sms_unsubscribe_in_the_us_has_no_email_rule_and_no_gdpr() -> None:
    found = event("unsubscribed", channel="sms", jurisdiction="US-NY")
    assert clock_for(found, us_controller()) is None  # CAN-SPAM is about email only
    email = clock_for(event("unsubscribed", jurisdiction="US-NY"), us_controller())
    assert email is not None and email.rule == "bulk_sender_unsubscribe"
    names = [n for n, _, _ in applicable(event("unsubscribed", jurisdiction="US"), us_controller())]
    assert names == ["bulk_sender_unsubscribe", "can_spam_opt_out"]


def test_casl_reaches_sms_marketing_in_canada() -> None:
    found = event("unsubscribed", channel="sms", jurisdiction="CA-ON")
    clock = clock_for(found, us_controller())
    assert clock is not None and clock.rule == "casl_unsubscribe"
    # Ten business days after Friday 6 November: Remembrance Day (11th) is a federal holiday.
    assert clock.deadline == datetime(2026, 11, 24, 5, tzinfo=UTC)  # Monday 23rd, Toronto


def test_gpc_runs_the_ccpa_clock_in_us_business_days() -> None:
    clock = clock_for(event("privacy.signal", signal="gpc"), us_controller())
    assert clock is not None and clock.rule == "ccpa_opt_out"
    # 15 business days after Friday 6 Nov: Veterans Day (11th) and Thanksgiving (26th) skipped,
    # so the last is Tuesday 1 December, ending at midnight in New York.
    assert clock.deadline == datetime(2026, 12, 2, 5, tzinfo=UTC)


def test_gdpr_month_is_the_strictest_for_a_gpc_signal_in_an_eu_controller_only_if_shorter() -> None:
    clock = clock_for(
        event("privacy.signal", signal="gpc", controller="hms-se"), SEEDS.controllers["hms-se"]
    )
    assert clock is not None and clock.rule == "ccpa_opt_out"  # 15 business days < one month


def test_an_erasure_request_runs_the_gdpr_month_and_stops_when_sent() -> None:
    clock = clock_for(event("erasure.requested", controller="hms-se"), SEEDS.controllers["hms-se"])
    assert clock is not None
    # The worker erases in the batch: the data key is destroyed with the erase instructions.
    assert (clock.rule, clock.stop) == ("gdpr_request", Stop.SENT)
    # One month on from Friday 6 November is Sunday 6 December: the next business day, Monday
    # the 7th, ends at midnight in Stockholm.
    assert clock.deadline == datetime(2026, 12, 7, 23, tzinfo=UTC)


def test_a_controller_promise_stricter_than_the_law_wins() -> None:
    nl = SEEDS.controllers["hms-contact-nl"]
    clock = clock_for(event("restriction.requested", controller="hms-contact-nl"), nl)
    assert clock is not None
    assert (clock.rule, clock.deadline) == ("promise_requests", FRIDAY + timedelta(weeks=4))


def test_a_subject_in_the_eea_brings_the_gdpr_to_a_controller_without_a_jurisdiction() -> None:
    found = event("erasure.requested", jurisdiction="DE")
    clock = clock_for(found, us_controller())
    assert clock is not None and clock.rule == "gdpr_request"
    assert clock.deadline == FRIDAY.replace(month=12)  # exact month, no calendar to round on


def test_an_access_request_runs_the_gdpr_month_and_waits_for_its_fulfilment() -> None:
    clock = clock_for(event("access.requested", controller="hms-se"), SEEDS.controllers["hms-se"])
    assert clock is not None
    # The export is handed over outside the worker: the clock stays open until confirmed.
    assert (clock.rule, clock.type, clock.stop) == (
        "gdpr_request",
        "access.requested",
        Stop.CONFIRMED,
    )
    assert clock.deadline == datetime(2026, 12, 7, 23, tzinfo=UTC)  # as for an erasure


@pytest.mark.parametrize(
    ("controller", "rule", "deadline"),
    [
        # "within four weeks at the latest": before the month.
        ("hms-contact-nl", "promise_requests", FRIDAY + timedelta(weeks=4)),
        # "within thirty (30) days": Sunday 6 December, 10:00, before the month ends on
        # Monday the 7th (midnight in London).
        ("sms-tech", "promise_requests", FRIDAY + timedelta(days=30)),
        # "within a reasonable time" and no promise: the law's month.
        ("kms-uk", "gdpr_request", datetime(2026, 12, 8, tzinfo=UTC)),
    ],
)
def test_an_access_request_runs_against_a_promise_shorter_than_the_month(
    controller: str, rule: str, deadline: datetime
) -> None:
    found = clock_for(event("access.requested", controller), SEEDS.controllers[controller])
    assert found is not None
    assert (found.rule, found.deadline, found.stop) == (rule, deadline, Stop.CONFIRMED)


def test_an_access_request_in_the_us_has_45_calendar_days() -> None:
    found = event("access.requested", jurisdiction="US-CA")
    names = [name for name, _, _ in applicable(found, us_controller())]
    assert names == ["ccpa_request_to_know"]
    clock = clock_for(found, us_controller())
    assert clock is not None and clock.rule == "ccpa_request_to_know"
    # 45 calendar days after Friday 6 November is Monday 21 December, to midnight in New York.
    assert clock.deadline == datetime(2026, 12, 22, 5, tzinfo=UTC)
    # A US subject at a UK controller: both apply, and the GDPR month runs out first.
    both = event("access.requested", controller="kms-uk", jurisdiction="US-NY")
    assert [n for n, _, _ in applicable(both, SEEDS.controllers["kms-uk"])] == [
        "ccpa_request_to_know",
        "gdpr_request",
    ]
    found_both = clock_for(both, SEEDS.controllers["kms-uk"])
    assert found_both is not None and found_both.rule == "gdpr_request"


def test_an_access_request_no_law_covers_and_a_fulfilment_start_no_clock() -> None:
    assert clock_for(event("access.requested", jurisdiction="JP"), us_controller()) is None
    fulfilled = event("access.fulfilled", controller="hms-se", request_id="e-access.requested")
    assert clock_for(fulfilled, SEEDS.controllers["hms-se"]) is None


def test_a_fulfilment_stops_only_the_access_request_it_names() -> None:
    hms = SEEDS.controllers["hms-se"]
    requested = clock_for(event("access.requested", controller="hms-se"), hms)
    assert requested is not None
    done = event("access.fulfilled", controller="hms-se", request_id="e-access.requested")
    assert fulfils(done, requested)
    assert not fulfils(done.model_copy(update={"request_id": "e-other"}), requested)
    assert not fulfils(done.model_copy(update={"subject_id": "s-2"}), requested)
    erasure = clock_for(event("erasure.requested", controller="hms-se"), hms)
    assert erasure is not None
    assert not fulfils(done.model_copy(update={"request_id": erasure.event_id}), erasure)
    assert not fulfils(event("access.requested", controller="hms-se"), requested)


def test_grants_and_lifts_start_no_clock() -> None:
    kms = SEEDS.controllers["kms-uk"]
    assert clock_for(event("consent.granted", purpose="marketing-email"), kms) is None
    assert clock_for(event("restriction.lifted"), kms) is None


def test_withdrawing_a_non_marketing_consent_has_only_the_gdpr_clock() -> None:
    hms = SEEDS.controllers["hms-se"]
    found = event("consent.withdrawn", controller="hms-se", purpose="live-chat")
    clock = clock_for(found, hms)
    assert clock is not None and clock.rule == "gdpr_request"


def clock(allowed: timedelta = timedelta(days=2)) -> Clock:
    return Clock("c", "s", "e", "unsubscribed", "bulk_sender_unsubscribe", FRIDAY, FRIDAY + allowed)


def test_a_summary_counts_met_and_missed_and_the_worst() -> None:
    summary = Summary().record(clock(), FRIDAY + timedelta(hours=1))
    summary = summary.record(clock(), FRIDAY + timedelta(days=2))  # at the deadline: met
    summary = summary.record(clock(), FRIDAY + timedelta(days=3))
    assert (summary.count, summary.met, summary.missed) == (3, 2, 1)
    assert summary.worst_fraction == 1.5
    assert summary.worst_seconds == 3 * 86_400
    assert Summary.from_json(summary.to_json()) == summary


def test_quantiles_are_the_bucket_bound_within_nine_percent() -> None:
    summary = Summary()
    for minutes in range(1, 101):
        summary = summary.record(clock(), FRIDAY + timedelta(minutes=minutes))
    p50, p99 = summary.quantile(0.5), summary.quantile(0.99)
    assert p50 is not None and 50 * 60 <= p50 <= 50 * 60 * 1.0905
    assert p99 is not None and 99 * 60 <= p99 <= 100 * 60
    assert Summary().quantile(0.5) is None


def test_merging_is_recording_into_one() -> None:
    one = Summary().record(clock(), FRIDAY + timedelta(hours=1))
    two = Summary().record(clock(), FRIDAY + timedelta(days=3))
    both = (
        Summary()
        .record(clock(), FRIDAY + timedelta(hours=1))
        .record(clock(), FRIDAY + timedelta(days=3))
    )
    assert one.merge(two) == both


@given(st.floats(min_value=0.001, max_value=1e9))
def test_a_duration_is_at_most_its_bucket_bound(seconds: float) -> None:
    index = bucket_of(seconds)
    assert bucket_bound(index - 1) < seconds * (1 + 1e-9)
    assert seconds <= bucket_bound(index) * (1 + 1e-9)


@pytest.mark.parametrize("start", [FRIDAY, FRIDAY + timedelta(days=1, hours=3)])
def test_the_deadline_never_precedes_the_start(start: datetime) -> None:
    for controller in SEEDS.controllers.values():
        found = clock_for(event("erasure.requested", controller.id, occurred_at=start), controller)
        assert found is not None and found.deadline > start


def test_a_month_from_the_31st_ends_on_the_last_day_of_february_then_the_next_business_day() -> (
    None
):
    start = datetime(2027, 1, 31, 12, tzinfo=UTC)
    clock = clock_for(
        event("erasure.requested", "hms-se", occurred_at=start), SEEDS.controllers["hms-se"]
    )
    # 28 February 2027 is a Sunday: Monday 1 March, to midnight in Stockholm.
    assert clock is not None and clock.deadline == datetime(2027, 3, 1, 23, tzinfo=UTC)


@pytest.mark.parametrize("jurisdiction", ["US", "CA-ON", None])
def test_an_event_at_the_edge_of_the_calendar_starts_no_clock_it_cannot_count(
    jurisdiction: str | None,
) -> None:
    start = datetime(1, 1, 1, tzinfo=UTC)
    extra = {"jurisdiction": jurisdiction} if jurisdiction else {}
    found = event("privacy.signal", "kms-uk", occurred_at=start, signal="gpc", **extra)
    clock = clock_for(found, us_controller())
    assert clock is None or clock.deadline > start  # never an exception


RULES = ClockRules(SEEDS)
KINDS = [
    ("unsubscribed", {}),
    ("unsubscribed", {"channel": "sms"}),
    ("consent.withdrawn", {"purpose": "newsletter"}),
    ("objection.raised", {"objection": "direct_marketing"}),
    ("privacy.signal", {"signal": "gpc"}),
    ("erasure.requested", {}),
    ("restriction.requested", {}),
    ("access.requested", {}),
]


@given(
    st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2026, 11, 30), timezones=st.just(UTC)
    ),
    st.sampled_from(sorted(SEEDS.controllers)),
    st.sampled_from(KINDS),
    st.sampled_from([None, "US-CA", "CA-QC", "DE", "SE", "JP"]),
)
def test_the_workers_remembering_rules_give_the_same_clocks(
    start: datetime, controller: str, kind: tuple[str, dict[str, str]], jurisdiction: str | None
) -> None:
    type_, extra = kind
    fields = dict(extra)
    if "purpose" in fields and fields["purpose"] not in SEEDS.controllers[controller].purposes:
        fields["purpose"] = next(iter(SEEDS.controllers[controller].purposes))
    if jurisdiction:
        fields["jurisdiction"] = jurisdiction
    found = event(type_, controller, occurred_at=start, **fields)
    assert RULES.clock_for(found) == clock_for(found, SEEDS.controllers[controller])
