"""Properties over random event sets: order and duplicates never change the outcome."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import ConsentEvent
from schemas.vocabulary import LegalBasis
from streams.core.decisions import PairState, decide_all
from streams.core.engine import Engine
from streams.core.policy import Policy
from streams.core.state import EMPTY, SubjectState
from tests.support.examples import examples

from .conftest import NOW
from .reference import reference_apply
from .strategies import event_sets


def final_decisions(policy: Policy, state: SubjectState) -> list[tuple[str, str, str, str | None]]:
    return [
        (d.purpose.name, d.channel.value, d.reason.value, d.cause.event_id if d.cause else None)
        for d in decide_all(policy, "acme", state)
    ]


def fold_all(events: list[ConsentEvent]) -> SubjectState:
    state = EMPTY
    for e in events:
        state = state.fold(e)
    return state


@settings(max_examples=examples(300), deadline=None)
@given(data=st.data(), events=event_sets)
def test_decisions_depend_only_on_the_set_of_events(
    policy: Policy, data: st.DataObject, events: list[ConsentEvent]
) -> None:
    shuffled = data.draw(st.permutations(events))
    duplicated = shuffled + data.draw(st.lists(st.sampled_from(events), max_size=10))
    expected = final_decisions(policy, fold_all(events))
    assert final_decisions(policy, fold_all(shuffled)) == expected
    assert final_decisions(policy, fold_all(duplicated)) == expected


@settings(max_examples=examples(300), deadline=None)
@given(data=st.data(), events=event_sets)
def test_last_message_per_pair_matches_the_final_decision(
    policy: Policy, engine: Engine, data: st.DataObject, events: list[ConsentEvent]
) -> None:
    arrival = data.draw(st.permutations(events)) + data.draw(
        st.lists(st.sampled_from(events), max_size=5)
    )
    state = EMPTY
    last: dict[tuple[str, str, str], str] = {}
    for e in arrival:
        outcome = engine.apply(state, e, NOW)
        state = outcome.state
        for m in outcome.messages:
            value = orjson.loads(m.value)
            last[(m.destination.value, value["purpose"], value["channel"])] = value["action"]
    for decision in decide_all(policy, "acme", state):
        for destination in decision.purpose.destinations:
            told = last.get((destination.value, decision.purpose.name, decision.channel.value))
            if decision.state is PairState.ALLOWED:
                # Never told anything is right only where the legal basis allows by default.
                assert told == "allow" or (
                    told is None and decision.purpose.legal_basis is not LegalBasis.CONSENT
                )
            elif decision.state is PairState.SUPPRESSED:
                assert told == "suppress"
            else:
                assert told in (None, "suppress")


@settings(max_examples=examples(200), deadline=None)
@given(events=event_sets)
def test_redelivery_changes_no_state(engine: Engine, events: list[ConsentEvent]) -> None:
    state = EMPTY
    for e in events:
        state = engine.apply(state, e, NOW).state
    for e in events[-10:]:
        again = engine.apply(state, e, NOW)
        assert again.duplicate and again.state == state
        assert SubjectState.from_bytes(state.to_bytes()) == state


@settings(max_examples=examples(300), deadline=None)
@given(data=st.data(), events=event_sets)
def test_apply_sends_what_the_reference_decides(
    engine: Engine, data: st.DataObject, events: list[ConsentEvent]
) -> None:
    arrival = data.draw(st.permutations(events)) + data.draw(
        st.lists(st.sampled_from(events), max_size=8)
    )
    arrival = data.draw(st.permutations(arrival))
    state = expected = EMPTY
    for e in arrival:
        kept = state.to_bytes()
        outcome = engine.apply(state, e, NOW)
        expected, sent, duplicate = reference_apply(engine, expected, e, NOW)
        assert state.to_bytes() == kept  # the state given is never changed
        assert outcome.duplicate == duplicate and outcome.state == expected
        assert [(m.destination.value, m.key, orjson.loads(m.value)) for m in outcome.messages] == [
            (d, k, orjson.loads(v)) for d, k, v in sent
        ]
        assert [m.action.value for m in outcome.messages] == [
            orjson.loads(v)["action"] for _, _, v in sent
        ]
        state = (
            SubjectState.from_bytes(outcome.state.to_bytes()) if len(arrival) % 2 else outcome.state
        )
