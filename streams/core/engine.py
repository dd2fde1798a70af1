"""The decision engine: fold one event into a subject's state and say what to propagate.

Pure: no I/O, no clocks (the caller passes ``now``), no Faust or Kafka. ``apply`` is the hot
path: it decides only the pairs a changed slot can affect, with plain tuples, and never
mutates the state it is given.
"""

from __future__ import annotations

from datetime import datetime
from hashlib import blake2b
from typing import NamedTuple

from orjson import OPT_UTC_Z, dumps

from schemas.deadletter import FieldError
from schemas.events import ACCESS_TYPES, ConsentEvent
from schemas.vocabulary import Action, Channel, Destination, EventType, Reason
from streams.core.admission import policy_errors
from streams.core.decisions import (
    STATE_OF,
    ControllerPlan,
    PairState,
    Ruling,
    compile_policy,
    subject_clock,
)
from streams.core.erasure import with_erasure
from streams.core.ledger import Effect
from streams.core.policy import Policy
from streams.core.propagation import Change, action_of, transition
from streams.core.state import SubjectState, event_digest, remembers
from streams.core.statements import (
    DENIAL_REASON,
    RETENTION_END,
    Statement,
    from_micros,
    placements,
    retention_scope,
    slot_key,
)


def subject_key(controller: str, subject_id: str) -> str:
    """Table and partitioning key; controller ids never contain '/'."""
    return f"{controller}/{subject_id}"


class Outbound(NamedTuple):
    """One message for one destination topic."""

    destination: Destination
    key: bytes
    value: bytes


class Outcome(NamedTuple):
    state: SubjectState
    messages: tuple[Outbound, ...]
    duplicate: bool
    #: the event erases the subject's personal data: the pipeline destroys its data key (true
    #: for every delivery of an erasure request, redeliveries included, and for no other event)
    shred: bool = False
    #: the instructions in ``messages``, one per suppression id with the destinations told, as
    #: the ledger records them (tests read the same back from the message values)
    effects: tuple[Effect, ...] = ()


_TRANSITION = {(a, b): transition(a, b) for a in PairState for b in PairState}
# Plain strings for messages (enum attribute access is slow on a hot path).
_VERB = {action: action.value for action in Action}
# Instruction JSON parts (see _messages): the action's, after the suppression id; the reason's.
_ACTION_JSON = {action: b'","action":' + dumps(action.value) for action in Action}
_REASON_JSON = {reason: dumps(reason.value) for reason in Reason}
_new = tuple.__new__
#: Types of the statements that can suppress a pair (DENIAL_REASON's), as stored.
_DENYING = frozenset(str(kind) for kind in DENIAL_REASON)
_SUPPRESSED = PairState.SUPPRESSED
_SUPPRESS = Action.SUPPRESS
_ERASURE = EventType.ERASURE_REQUESTED
_ACCESS = ACCESS_TYPES


class Engine:
    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.plans: dict[str, ControllerPlan] = compile_policy(policy)
        # Bounded by the policy: event types x purposes x channels, objections, signals.
        self._placed: dict[tuple[object, ...], tuple[str, ...]] = {}

    def admit(self, event: ConsentEvent) -> list[FieldError]:
        return policy_errors(event, self.policy)

    def decide(
        self,
        state: SubjectState,
        controller: str,
        purpose: str,
        channel: Channel,
        now: datetime | None = None,
    ) -> Ruling:
        """The decision at ``now`` (reads), or at the subject's clock (what was emitted)."""
        return self.plans[controller].by_pair[(purpose, channel)].decide(state, now)

    def decide_all(
        self, state: SubjectState, controller: str, now: datetime | None = None
    ) -> list[Ruling]:
        return [pair.decide(state, now) for pair in self.plans[controller].pairs]

    def _placements(self, event: ConsentEvent) -> tuple[str, ...]:
        """:func:`placements`, remembered per kind of statement (few per policy)."""
        scope = (event.type, event.purpose, event.channel, event.objection, event.signal)
        found = self._placed.get(scope)
        if found is None:
            found = self._placed[scope] = placements(event)
        return found

    def apply(self, state: SubjectState, event: ConsentEvent, now: datetime) -> Outcome:
        """Fold an admitted event into ``state``; the messages its changes require."""
        plan = self.plans[event.controller]
        digest = event_digest(event.event_id)
        if event.type in _ACCESS:
            # Runs a deadline clock (the pipeline's) and decides nothing: only remembered, so
            # that a redelivery is known; its identifiers are in the ledger, not the state.
            if remembers(state.seen, digest):
                return Outcome(state, (), True)
            after = state.with_statement(Statement.of(event), (), None, digest, unseen=True)[0]
            return Outcome(after, (), False)
        if remembers(state.seen, digest):
            if event.type is _ERASURE:  # said again in full, and the data key destroyed again
                erasure = Statement.of(event)
                restated = with_erasure(plan, state, erasure, [])
                messages, effects = _messages(event, state, restated, erasure, now)
                return Outcome(state, messages, True, True, effects)
            messages, effects = _restate(plan, state, event, now)
            return Outcome(state, messages, True, False, effects)
        statement = Statement.of(event)
        after, changed, gained = state.with_statement(
            statement,
            self._placements(event),
            event.identifiers,
            digest,
            unseen=True,
            notice=event.notice_version,
        )
        changes: list[Change] = []
        pairs = plan.affected(changed) if changed else ()
        renewed = plan.renewed
        before_at = after_at = 0
        if renewed:
            # Decisions that depend on time are emitted as of the subject's clock (its latest
            # event time), so the output is a function of the events: when the clock passes a
            # material notice change, the consents it superseded are decided again.
            before_at = subject_clock(state)
            after_at = max(before_at, statement.at)
            if plan.renewals_between(before_at, after_at):
                pairs = tuple(p for p in plan.pairs if p in pairs or p in renewed)
        if pairs:
            # Only pairs that read a slot this event changed can change their decision; the
            # others keep theirs, memoised.
            memo = after.verdicts
            memo.update(state.verdicts)
            now_get = after.slots.get
            for pair in pairs:
                reason, cause = memo[pair.serial] = pair.verdict(now_get)
                was = pair.verdict_of(state)[0]
                if pair.notices:
                    was = pair.reconsidered(state, (was, None), before_at)[0]
                    reason, cause = pair.reconsidered(after, (reason, cause), after_at)
                action = _TRANSITION[STATE_OF[was], STATE_OF[reason]]
                if action is not None:
                    changes.append((pair, reason, cause, action))
        if gained:
            # A new or changed identifier: every suppressed pair is sent again with it (under a
            # new id), so a consumer that deduplicates by id learns the address.
            changes = _with_suppressed(plan, after, changes)
        if event.type is _ERASURE:  # rare: a test per event, nothing more on the hot path
            changes = with_erasure(plan, after, statement, changes)
            messages, effects = _messages(event, after, changes, statement, now)
            return Outcome(after, messages, False, True, effects)
        if changed and statement.type in _PURGING:  # a clock ran out: erase, then the decision
            changes = _with_purges(plan, after, event, statement, changes)
        if not changes:
            return Outcome(after, (), False)
        messages, effects = _messages(event, after, changes, statement, now)
        return Outcome(after, messages, False, False, effects)

    def replayed(self, outcome: Outcome, event: ConsentEvent, now: datetime) -> Outcome:
        """``outcome`` of an event an earlier owner of its partition may have folded before it
        was killed, maybe in another order with the subject's other events, and with some of
        that fold's messages delivered: each pair the event reaches (and each pair a notice
        change can re-decide) is told its decision as it stands, after ``outcome``'s own
        messages. Whatever that earlier fold told a pair is then followed by the decision.

        A decision "not allowed" is restated as ``suppress``; one with no cause (a default)
        names the event as its cause.
        """
        if event.type in _ACCESS:
            return outcome
        plan = self.plans[event.controller]
        state = outcome.state
        told = {(e.purpose, e.channel) for e in outcome.effects if e.action != _ERASE_VERB}
        reached = {p.serial for p in plan.affected(self._placements(event))}
        reached.update(p.serial for p in plan.renewed)
        restated: list[Change] = []
        for pair in plan.pairs:  # policy order
            if pair.serial not in reached or not pair.destinations:
                continue
            if (pair.name, pair.channel_name) in told:
                continue
            ruling = pair.decide(state)
            action = action_of(STATE_OF[ruling.reason]) or _SUPPRESS
            restated.append((pair, ruling.reason, ruling.cause, action))
        if not restated:
            return outcome
        messages, effects = _messages(event, state, restated, Statement.of(event), now)
        return outcome._replace(
            messages=outcome.messages + messages, effects=outcome.effects + effects
        )


def _restate(
    plan: ControllerPlan, state: SubjectState, event: ConsentEvent, now: datetime
) -> tuple[tuple[Outbound, ...], tuple[Effect, ...]]:
    """A redelivery: restate what this event still decides, with the same ids."""
    restated: list[Change] = []
    for pair in plan.affected(placements(event)):
        ruling = pair.decide(state)
        reason, cause = ruling.reason, ruling.cause
        action = action_of(STATE_OF[reason])
        if action is not None and cause is not None and cause.event_id == event.event_id:
            restated.append((pair, reason, cause, action))
    statement = Statement.of(event)
    if statement.type in _PURGING:
        restated = _with_purges(plan, state, event, statement, restated)
    if not restated:
        return (), ()
    return _messages(event, state, restated, statement, now)


_PURGING = frozenset({EventType.CONFIRMATION_LAPSED.value, EventType.RETENTION_DUE.value})
_ERASE = Action.ERASE
_ERASE_VERB = _VERB[_ERASE]
_EXPIRED = Reason.EXPIRED


def _with_purges(
    plan: ControllerPlan,
    state: SubjectState,
    event: ConsentEvent,
    statement: Statement,
    changes: list[Change],
) -> list[Change]:
    """``changes`` with the erase instructions a clock that ran out calls for (``statement`` is
    in ``state``), each followed by the pair's decision as it stands (as an erasure request's
    are: the last message per pair is always a decision), in policy order.

    A lapsed double opt-in: the unconfirmed sign-up's data goes, for each pair the lapse made
    expired. A retention end: the purpose's data goes, for each of its pairs (on the event's
    channel, if it names one), when its retention rule for all data says erase.
    """
    if statement.type == EventType.CONFIRMATION_LAPSED:
        affected = plan.affected(placements(event))
        purged = {p.serial for p in affected if p.verdict_of(state) == (_EXPIRED, statement)}
    else:
        purpose = event.purpose
        if state.slots.get(slot_key(retention_scope(purpose or ""), RETENTION_END)) != statement:
            return changes
        purged = {
            p.serial
            for p in plan.pairs
            if p.name == purpose
            and p.erased_at_retention_end
            and (event.channel is None or p.channel is event.channel)
        }
    if not purged:
        return changes
    changed = {change[0].serial: change for change in changes}
    out: list[Change] = []
    for pair in plan.pairs:
        change = changed.get(pair.serial)
        if pair.serial in purged:
            out.append((pair, _EXPIRED, statement, _ERASE))
            if change is None:
                reason, cause = pair.verdict_of(state)
                allowed = STATE_OF[reason] is PairState.ALLOWED
                change = (pair, reason, cause, Action.ALLOW if allowed else _SUPPRESS)
        if change is not None:
            out.append(change)
    return out


def _with_suppressed(
    plan: ControllerPlan, state: SubjectState, changes: list[Change]
) -> list[Change]:
    """``changes`` plus a suppress for every other suppressed pair, in policy order."""
    changed = {change[0].serial: change for change in changes}
    # A pair is suppressed only by a denial (or a restriction request) in one of its slots:
    # the others are not decided again.
    by_slot = plan.by_slot
    denied = {
        pair.serial
        for key, statement in state.slots.items()
        if statement.type in _DENYING
        for pair in by_slot.get(key, ())
    }
    out = []
    for pair in plan.pairs:
        change = changed.get(pair.serial)
        if change is None and pair.serial in denied:
            reason, cause = pair.verdict_of(state)
            if STATE_OF[reason] is _SUPPRESSED:
                change = (pair, reason, cause, _SUPPRESS)
        if change is not None:
            out.append(change)
    return out


def _messages(
    event: ConsentEvent,
    state: SubjectState,
    changes: list[Change],
    trigger: Statement,
    now: datetime,
) -> tuple[tuple[Outbound, ...], tuple[Effect, ...]]:
    """The messages of ``changes``, and their effects as the ledger records them (known here:
    the ledger need not read them back from the values).

    Each value is what :func:`schemas.codec.suppression_record` encodes (same bytes), joined
    from parts encoded once per policy, per event and per cause."""
    controller, subject_id = event.controller, event.subject_id
    identifiers = state.known_identifiers()
    # The parts of each suppression id that are the same for every pair of this event.
    head = f"{controller}\x1f{subject_id}\x1f"
    tail = "".join(f"\x1f{kind}={value}" for kind, value in identifiers.items())
    key = subject_id.encode()
    who = b"".join(
        (b',"controller":', dumps(controller), b',"subject_id":', dumps(subject_id), b',"purpose":')
    )
    end = b"".join(
        (
            b',"identifiers":',
            dumps(identifiers),
            b',"emitted_at":',
            dumps(now, option=OPT_UTC_Z),
            b',"schema_version":1}',
        )
    )
    out: list[Outbound] = []
    effects: list[Effect] = []
    caused: dict[Statement, bytes] = {}  # cause -> its effective_at and caused_by_event_id
    for pair, reason, cause, action in changes:
        if not pair.destinations:
            continue  # nothing to send, nothing to record
        cause = cause or trigger
        because = caused.get(cause)
        if because is None:
            because = caused[cause] = b"".join(
                (
                    dumps(from_micros(cause.at), option=OPT_UTC_Z),
                    b',"caused_by_event_id":',
                    dumps(cause.event_id),
                )
            )
        verb = _VERB[action]
        material = f"{head}{pair.id_part}\x1f{verb}\x1f{cause.event_id}{tail}"
        suppression_id = blake2b(material.encode(), digest_size=16).hexdigest()
        value = b"".join(
            (
                b'{"suppression_id":"',
                suppression_id.encode(),
                _ACTION_JSON[action],
                who,
                pair.json_pair,
                _REASON_JSON[reason],
                pair.json_basis,
                because,
                end,
            )
        )
        out += [_new(Outbound, (d, key, value)) for d in pair.destinations]
        effects.append(
            Effect(pair.name, pair.channel_name, verb, suppression_id, pair.destination_names)
        )
    return tuple(out), tuple(effects)
