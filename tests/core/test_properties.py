"""Properties over random event sets: order and duplicates never change the outcome."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.reference import erasures_owed, told_right
from schemas.events import ConsentEvent
from schemas.vocabulary import EventType
from streams.core.engine import Engine
from streams.core.state import EMPTY, SubjectState
from tests.support.core import NOW
from tests.support.examples import examples

from .reference import reference_apply
from .strategies import event_sets


def final_decisions(engine: Engine, state: SubjectState) -> list[tuple[str, str, str, str | None]]:
    return [
        (d.purpose.name, d.channel.value, d.reason.value, d.cause.event_id if d.cause else None)
        for d in engine.decide_all(state, "acme")
    ]


def fold_all(events: list[ConsentEvent]) -> SubjectState:
    state = EMPTY
    for e in events:
        state = state.fold(e)
    return state


@settings(max_examples=examples(300), deadline=None)
@given(data=st.data(), events=event_sets)
def test_decisions_depend_only_on_the_set_of_events(
    engine: Engine, data: st.DataObject, events: list[ConsentEvent]
) -> None:
    shuffled = data.draw(st.permutations(events))
    duplicated = shuffled + data.draw(st.lists(st.sampled_from(events), max_size=10))
    expected = final_decisions(engine, fold_all(events))
    assert final_decisions(engine, fold_all(shuffled)) == expected
    assert final_decisions(engine, fold_all(duplicated)) == expected


@settings(max_examples=examples(300), deadline=None)
@given(data=st.data(), events=event_sets)
def test_last_message_per_pair_matches_the_final_decision(
    engine: Engine, data: st.DataObject, events: list[ConsentEvent]
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
    # The decision over the set, folded afresh (not the verdicts apply memoised on the way).
    for decision in engine.decide_all(fold_all(arrival), "acme"):
        for destination in decision.purpose.destinations:
            told = last.get((destination.value, decision.purpose.name, decision.channel.value))
            assert told_right(decision, told), (destination, decision, told)


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
        state = (
            SubjectState.from_bytes(outcome.state.to_bytes()) if len(arrival) % 2 else outcome.state
        )


@settings(max_examples=examples(300), deadline=None)
@given(data=st.data(), events=event_sets)
def test_every_erasure_is_sent_where_it_applies_and_followed_by_the_decision(
    engine: Engine, data: st.DataObject, events: list[ConsentEvent]
) -> None:
    arrival = data.draw(st.permutations(events)) + data.draw(
        st.lists(st.sampled_from(events), max_size=5)
    )
    state = EMPTY
    erased: set[tuple[str, ...]] = set()
    for e in arrival:
        outcome = engine.apply(state, e, NOW)
        state = outcome.state
        assert outcome.shred is (e.type is EventType.ERASURE_REQUESTED)
        sent = [(m.destination.value, orjson.loads(m.value)) for m in outcome.messages]
        for n, (destination, value) in enumerate(sent):
            pair = (destination, value["purpose"], value["channel"])
            if value["action"] != "erase":
                continue
            if value["reason"] == "erasure":  # a clock's erase (reason expired) is owed elsewhere
                erased.add(
                    (destination, "acme", "subject-1", *pair[1:], value["caused_by_event_id"])
                )
            # The decision follows for the same destination and pair, in the same outcome.
            after = [
                v["action"] for d, v in sent[n + 1 :] if (d, v["purpose"], v["channel"]) == pair
            ]
            assert after and after[0] in ("allow", "suppress"), (pair, after)
    owed = erasures_owed(engine.policy, [e.model_dump(mode="json") for e in events])
    assert erased == owed


@settings(max_examples=examples(200), deadline=None)
@given(data=st.data(), events=event_sets)
def test_a_redelivered_erasure_restates_its_erase_instructions_with_the_same_ids(
    engine: Engine, data: st.DataObject, events: list[ConsentEvent]
) -> None:
    arrival = data.draw(st.permutations(events))
    state = EMPTY
    for e in arrival:
        first = engine.apply(state, e, NOW)
        state = first.state
        if e.type is EventType.ERASURE_REQUESTED:
            again = engine.apply(state, e, NOW)
            assert again.duplicate and again.shred and again.state == state
            erases = [m for m in first.messages if orjson.loads(m.value)["action"] == "erase"]
            assert erases and [m for m in again.messages if m in erases] == erases
            assert [m for m in again.messages if m not in first.messages] == []
