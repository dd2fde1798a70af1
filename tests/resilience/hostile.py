"""Hostile input for ``consent.events``: records that break the contract in every way we know of,
and valid events at the edges of it. Everything is drawn from a ``random.Random``."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from tests.resilience.workload import RawRecord

Record = tuple[bytes | None, bytes | None]
CONTROLLER = "kms-uk"  # an unsubscribe there requires suppressions on the email and crm topics


def valid_event(n: int, subject_id: str | None = None, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": f"hv-{n}",
        "type": "unsubscribed",
        "occurred_at": "2025-03-03T09:00:00Z",
        "controller": CONTROLLER,
        "subject_id": subject_id or f"hv-subject-{n}",
        **fields,
    }


def _keyed(event: dict[str, Any]) -> RawRecord:
    return str(event["subject_id"]).encode(), orjson.dumps(event)


# -- malformed records, by category --------------------------------------------------------------

_BAD_UTF8 = (b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\xc0\xaf", b"\x80")


def broken_utf8(rng: random.Random, n: int) -> Record:
    key, value = _keyed(valid_event(n))
    marker = rng.choice((b'"hv-subject-', b'"unsubscribed', b'"kms-uk'))
    return key, value.replace(marker, marker[:2] + rng.choice(_BAD_UTF8) + marker[2:], 1)


_WRONG: dict[str, tuple[Any, ...]] = {
    "event_id": (123, 1.5, True, None, [], {}, ""),
    "type": (1, None, [], "consent", "UNSUBSCRIBED", ""),
    "occurred_at": (True, None, [], {}, "yesterday"),
    "controller": (1, None, [], "Has Space", ""),
    "subject_id": (1, None, [], {}, ""),
    "identifiers": ("a@example.org", 1, [], {"email": 5}, {"email": "no-at-sign"}),
    "evidence": ("text", 1, [1], True),
    "schema_version": (2, 0, None, "v1"),
    "channel": (5, "fax", "EMAIL"),
    "source": (1, "", "x" * 200),
}


def wrong_type(rng: random.Random, n: int) -> Record:
    name = rng.choice(sorted(_WRONG))
    event = valid_event(n)
    event[name] = rng.choice(_WRONG[name])
    return f"hv-subject-{n}".encode(), orjson.dumps(event)


def huge(rng: random.Random, n: int) -> Record:
    variant = rng.randrange(4)
    if variant == 0:  # a subject id over its 256-character limit
        subject = "s" * rng.randint(257, 5000)
        return _keyed(valid_event(n, subject_id=subject))
    if variant == 1:  # an event id over its limit
        return _keyed({**valid_event(n), "event_id": "e" * rng.randint(129, 2000)})
    if variant == 2:  # a record over the 64 KiB limit, up to ten times that
        size = rng.choice((65_537, 70_000, 200_000, rng.randint(66_000, 600_000)))
        return _keyed(valid_event(n, evidence={"blob": "x" * size}))
    keys = {f"k{i}": i for i in range(rng.randint(6_000, 20_000))}
    return _keyed(valid_event(n, evidence=keys))


def deep_nesting(rng: random.Random, n: int) -> Record:
    depth = rng.choice((200, 256, 1000, 5000))
    variant = rng.randrange(3)
    if variant == 0:
        nested = b'{"a":' * depth + b"1" + b"}" * depth
        key, value = _keyed(valid_event(n))
        return key, value[:-1] + b',"evidence":' + nested + b"}"
    if variant == 1:
        return f"hv-subject-{n}".encode(), b"[" * depth + b"]" * depth
    inner: Any = "a@example.org"
    for _ in range(rng.randint(2, 50)):
        inner = {"email": inner}
    return _keyed(valid_event(n, identifiers=inner))


def unknown_field(rng: random.Random, n: int) -> Record:
    event = valid_event(n)
    if rng.random() < 0.7:
        name = rng.choice(("unexpected", "__proto__", "EventID", "purpose_", "consent", "ttl"))
        event[name] = rng.choice(("x", 1, None, [], {"nested": True}))
    else:
        event["identifiers"] = {"email": "a@example.org", rng.choice(("fax", "ssn")): "1"}
    return _keyed(event)


def _future() -> str:
    return (datetime.now(UTC) + timedelta(minutes=30)).isoformat()


_BAD_TIMES: tuple[str | int | Callable[[], str], ...] = (
    1_741_000_000,  # epoch seconds: not RFC 3339 (contract 1.1)
    "2025-03-03T09:00:00+0200",
    "2025-13-01T00:00:00Z",
    "2025-02-30T00:00:00Z",
    "2025-03-03T09:00:00",
    "2025-03-03 09:00",
    "2025-03-03T25:00:00Z",
    "2025-03-03T09:00:00+25:00",
    "0000-01-01T00:00:00Z",
    "0001-01-01T00:00:00+00:01",  # before year 1 once converted to UTC
    "2999-01-01T00:00:00Z",
    "",
    "now",
    "2025-03-03T09:00:00Zjunk",
    _future,
)


def bad_timestamp(rng: random.Random, n: int) -> Record:
    choice = rng.choice(_BAD_TIMES)
    value = choice() if callable(choice) else choice
    return _keyed(valid_event(n, occurred_at=value))


def wrong_key(rng: random.Random, n: int) -> Record:
    key = rng.choice(
        (f"hv-subject-{n + 1}".encode(), b"", b"\xff\xfe", f"kms-uk/hv-subject-{n}".encode())
    )
    return key, orjson.dumps(valid_event(n))


def not_json(rng: random.Random, n: int) -> Record:
    good = orjson.dumps(valid_event(n))
    value = rng.choice(
        (
            b"",
            b"null",
            b"[]",
            b"{}",
            b'"a string"',
            b"123",
            bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 200))),
            good[: rng.randint(1, len(good) - 1)],
            good + b" trailing",
            b"\xef\xbb\xbf" + good,
            good.replace(b'"', b"'"),
            good[:-1] + b',"evidence":NaN}',
            b"/* comment */" + good,
        )
    )
    return f"hv-subject-{n}".encode(), value


def against_policy(rng: random.Random, n: int) -> Record:
    variant = rng.randrange(3)
    if variant == 0:
        return _keyed({**valid_event(n), "controller": "nobody-ltd"})
    if variant == 1:
        return _keyed(valid_event(n, purpose="no-such-purpose"))
    return _keyed(valid_event(n, purpose="marketing-email", channel="sms"))


def type_rules(rng: random.Random, n: int) -> Record:
    event = valid_event(n)
    variant = rng.randrange(5)
    if variant == 0:
        event["type"] = "consent.granted"  # without a purpose
    elif variant == 1:
        event["type"] = "objection.raised"  # without an objection
    elif variant == 2:
        event.update(type="erasure.requested", purpose="marketing-email")
    elif variant == 3:
        event["type"] = "privacy.signal"  # without a signal
    else:
        event["objection"] = "profiling"  # on an unsubscribe
    return _keyed(event)


def no_value(rng: random.Random, n: int) -> Record:
    return f"hv-subject-{n}".encode(), None


MALFORMED: dict[str, Callable[[random.Random, int], Record]] = {
    "broken_utf8": broken_utf8,
    "wrong_type": wrong_type,
    "huge": huge,
    "deep_nesting": deep_nesting,
    "unknown_field": unknown_field,
    "bad_timestamp": bad_timestamp,
    "wrong_key": wrong_key,
    "not_json": not_json,
    "against_policy": against_policy,
    "type_rules": type_rules,
    "no_value": no_value,
}


def malformed(rng: random.Random, n: int) -> tuple[str, Record]:
    category = rng.choice(sorted(MALFORMED))
    return category, MALFORMED[category](rng, n)


# -- valid events at the edges of the contract ---------------------------------------------------


def edge_cases(start: int) -> list[Record]:
    """Valid, if unusual: each must be processed like any other event."""
    n = start
    out: list[Record] = []

    def add(event: dict[str, Any], keyed: bool = True) -> None:
        nonlocal n
        n += 1
        key = str(event["subject_id"]).encode() if keyed else None
        out.append((key, orjson.dumps(event)))

    add(valid_event(n, subject_id=f"ünïcødé ✓ {n}"))
    add(valid_event(n, subject_id=f"nul\u0000inside-{n}"))
    add(valid_event(n, subject_id=f"with/slash/{n}"))
    add(valid_event(n, subject_id=f"{n}-" + "m" * (256 - len(f"{n}-"))))
    add(valid_event(n, subject_id=f"emoji-\U0001f600-{n}"))
    add(valid_event(n), keyed=False)
    add(valid_event(n, occurred_at="0001-01-01T00:00:00Z"))
    add(valid_event(n, occurred_at="0001-01-01T00:00:00-01:00"))
    add(valid_event(n, occurred_at="2025-03-03T09:00:00.123456789Z"))
    add(valid_event(n, evidence=_nested(150)))
    add(
        valid_event(
            n,
            identifiers={
                "email": "x@example.org",
                "phone": "+46 (0)70-123 45 67",
                "cookie_id": "c" * 256,
                "crm_id": "crm-1",
            },
        )
    )
    event = valid_event(n)
    n += 1
    raw = orjson.dumps(event)
    # The same key twice: JSON parsers keep the last one.
    out.append((event["subject_id"].encode(), raw[:-1] + b',"source":"first","source":"second"}'))
    return out


def _nested(depth: int) -> dict[str, Any]:
    inner: dict[str, Any] = {"leaf": True}
    for _ in range(depth - 1):
        inner = {"a": inner}
    return inner
