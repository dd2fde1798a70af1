"""Reads over the clocks of this worker's active partitions (scope ``read``): subjects whose
consent a notice change superseded, open deadline clocks, and the deadline report.

Each worker answers for the partitions it holds as active (listed in every answer); the CLI
gathers the answers of every worker.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

from aiohttp import web

from schemas.vocabulary import Reason
from streams.core.clocks import Summary
from streams.core.state import SubjectState
from streams.core.statements import to_micros
from streams.web.context import context_of
from streams.web.errors import bad_request, json_response, not_found, unavailable
from streams.web.models import (
    DeadlineReport,
    DeadlineRow,
    OpenClock,
    OpenClocks,
    ReconsentPage,
    ReconsentPair,
    ReconsentSubject,
)
from streams.web.paths import controller_of

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
#: States read per reconsent page at most: a page is answered on the worker's event loop, so
#: it stops after this many (tens of milliseconds) and hands back a cursor.
SCAN_LIMIT = 10_000


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit", str(DEFAULT_LIMIT))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise bad_request(f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return int(raw)


def _cursor(raw: str | None) -> tuple[int, bytes | None]:
    """(partition, last key listed) from an opaque cursor; (-1, None) for the first page."""
    if raw is None:
        return -1, None
    try:
        partition, _, key = base64.urlsafe_b64decode(raw.encode()).partition(b":")
        return int(partition), key
    except ValueError:
        raise bad_request("cursor is not one this API returned") from None


def _next_cursor(partition: int, key: bytes) -> str:
    return base64.urlsafe_b64encode(f"{partition}:".encode() + key).decode()


def _settled_partitions(request: web.Request) -> list[int]:
    backend = context_of(request).backend
    if not backend.settled():
        raise unavailable(
            "partitions are being rebalanced or recovered; retry shortly", "rebalancing"
        )
    return backend.active_partitions()


def _others(request: web.Request, partitions: list[int]) -> dict[int, str | None]:
    """The partitions this worker does not hold, and who does (so one URL leads to all)."""
    backend = context_of(request).backend
    mine = set(partitions)
    return {
        partition: backend.owner_of(partition)
        for partition in range(backend.partition_count())
        if partition not in mine
    }


async def get_reconsent(request: web.Request) -> web.Response:
    ctx = context_of(request)
    controller = controller_of(request)
    purpose = request.query.get("purpose")
    if purpose is not None and purpose not in controller.purposes:
        raise not_found("the controller has no such purpose", "unknown_purpose")
    limit = _limit(request)
    start, after = _cursor(request.query.get("cursor"))
    partitions = _settled_partitions(request)
    now = datetime.now(UTC)
    pairs = [
        pair
        for pair in ctx.engine.plans[controller.id].renewed
        if purpose is None or pair.name == purpose
    ]
    versions = {to_micros(n.effective): n.version for n in controller.notices}
    prefix = f"{controller.id}/".encode()
    found: list[ReconsentSubject] = []
    next_cursor, scanned = None, 0
    for partition in partitions if pairs else ():
        if partition < start:
            continue
        since = after if partition == start else None
        for key, raw in ctx.backend.scan_states(partition, prefix, since):
            scanned += 1
            state = SubjectState.from_bytes(raw)
            hits = []
            for pair in pairs:
                ruling = pair.decide(state, now)
                if ruling.reason is Reason.RECONSENT_REQUIRED and ruling.cause is not None:
                    hits.append(
                        ReconsentPair(
                            purpose=pair.name,
                            channel=pair.channel,
                            notice_version=versions[ruling.cause.at],
                            since=ruling.cause.occurred_at,
                            consent_event_id=ruling.cause.event_id,
                        )
                    )
            if hits:
                subject_id = key[len(prefix) :].decode()
                found.append(ReconsentSubject(subject_id=subject_id, pairs=hits))
            if len(found) == limit or scanned == SCAN_LIMIT:
                next_cursor = _next_cursor(partition, key)
                break
        if next_cursor is not None:
            break
    body = ReconsentPage(
        controller=controller.id,
        purpose=purpose,
        decided_at=now,
        partitions=partitions,
        others=_others(request, partitions),
        subjects=found,
        next_cursor=next_cursor,
    )
    return json_response(body)


async def get_open_clocks(request: web.Request) -> web.Response:
    backend = context_of(request).backend
    controller, rule = request.query.get("controller"), request.query.get("rule")
    limit = _limit(request)
    partitions = _settled_partitions(request)
    now = datetime.now(UTC)
    clocks = sorted(
        (
            clock
            for partition in partitions
            for clock in backend.open_clocks(partition)
            if controller in (None, clock.controller) and rule in (None, clock.rule)
        ),
        key=lambda clock: (clock.deadline, clock.event_id),
    )[:limit]
    listed = [
        OpenClock(
            controller=clock.controller,
            subject_id=clock.subject_id,
            event_id=clock.event_id,
            type=clock.type,
            rule=clock.rule,
            started=clock.started,
            deadline=clock.deadline,
            remaining_seconds=clock.remaining(now).total_seconds(),
            remaining_fraction=clock.remaining(now) / max(clock.allowed, _SECOND),
            awaiting=clock.stop.value,
        )
        for clock in clocks
    ]
    others = _others(request, partitions)
    return json_response(OpenClocks(now=now, partitions=partitions, others=others, clocks=listed))


async def get_deadline_report(request: web.Request) -> web.Response:
    backend = context_of(request).backend
    partitions = _settled_partitions(request)
    now = datetime.now(UTC)
    summaries: dict[tuple[str, str], Summary] = {}
    opened: dict[tuple[str, str], list[int]] = {}
    for partition in partitions:
        for controller, rule, summary in backend.clock_summaries(partition):
            place = (controller, rule)
            summaries[place] = summaries.get(place, Summary()).merge(summary)
        for clock in backend.open_clocks(partition):
            counts = opened.setdefault((clock.controller, clock.rule), [0, 0])
            counts[0] += 1
            counts[1] += clock.deadline < now
    rows = []
    for place in sorted(summaries.keys() | opened.keys()):
        summary = summaries.get(place, Summary())
        open_, overdue = opened.get(place, [0, 0])
        rows.append(
            DeadlineRow(
                controller=place[0],
                rule=place[1],
                count=summary.count,
                met=summary.met,
                missed=summary.missed,
                open=open_,
                overdue=overdue,
                worst_fraction=summary.worst_fraction,
                worst_seconds=summary.worst_seconds,
                p50_seconds=summary.quantile(0.5),
                p99_seconds=summary.quantile(0.99),
                buckets=summary.to_json()["buckets"],
            )
        )
    body = DeadlineReport(
        generated_at=now, partitions=partitions, others=_others(request, partitions), rows=rows
    )
    return json_response(body)


_SECOND = timedelta(seconds=1)
