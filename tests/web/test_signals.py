"""Privacy signal headers: which count, for which controller, and their event ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas.vocabulary import EventType, Signal
from streams.core.policy import load_policy
from streams.web.signals import honoured, signal_event, signal_event_id, signals_in

NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


def test_only_the_value_1_is_an_opt_out() -> None:
    assert signals_in({"Sec-GPC": "1", "DNT": "1"}) == [Signal.GPC, Signal.DNT]
    assert signals_in({"Sec-GPC": " 1 "}) == [Signal.GPC]
    assert signals_in({"Sec-GPC": "0", "DNT": "true"}) == []
    assert signals_in({}) == []


def test_dnt_counts_only_where_the_policy_maps_it() -> None:
    policy = load_policy()
    assert honoured(policy, "kms-uk", Signal.DNT)  # global mapping: dnt -> tracking
    assert not honoured(policy, "sms-tech", Signal.DNT)  # its notice ignores DNT
    assert honoured(policy, "sms-tech", Signal.GPC)


def test_one_event_per_subject_signal_and_day() -> None:
    same_day = signal_event_id("kms-uk", "s", Signal.GPC, NOW + timedelta(hours=10))
    assert signal_event_id("kms-uk", "s", Signal.GPC, NOW) == same_day
    assert signal_event_id("kms-uk", "s", Signal.GPC, NOW + timedelta(days=1)) != same_day
    assert signal_event_id("kms-uk", "s", Signal.DNT, NOW) != same_day
    assert signal_event_id("kms-uk", "t", Signal.GPC, NOW) != same_day


def test_signal_event_fits_the_contract() -> None:
    event = signal_event("kms-uk", "s", Signal.GPC, NOW)
    assert (event.type, event.signal, event.purpose, event.channel) == (
        EventType.PRIVACY_SIGNAL,
        Signal.GPC,
        None,
        None,
    )
    assert event.evidence == {"header": "Sec-GPC"}
