"""Hypothesis strategies for consent.events records: valid ones and every near miss we know of."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import strategies as st

from schemas.events import PURPOSE_TYPES
from schemas.vocabulary import Channel, EventType, Objection, Signal

TYPES = [member.value for member in EventType]

# Times: many spellings of many instants, most of them not RFC 3339 as the contract has it.
_SEPARATORS = st.sampled_from(["T", "T", "t", " ", "_", ""])
_OFFSETS = st.one_of(
    st.sampled_from(["Z", "z", "+00:00", "-00:00", "", "+0200", "+02", "+24:00", "-23:59"]),
    st.builds(
        lambda sign, h, m: f"{sign}{h:02d}:{m:02d}",
        st.sampled_from("+-"),
        st.integers(0, 25),
        st.integers(0, 61),
    ),
)
_FRACTIONS = st.one_of(st.just(""), st.text("0123456789", min_size=0, max_size=12).map(".".__add__))


@st.composite
def times(draw: st.DrawFn) -> Any:
    kind = draw(st.integers(0, 9))
    if kind == 0:  # epoch seconds and other JSON that is not a string
        return draw(st.one_of(st.integers(-(2**40), 2**40), st.floats(0, 2e9), st.booleans()))
    # Years 2..9998: the range checks for year 1 and 9999 are not schema rules (see test_temporal)
    year = draw(st.integers(2, 9998))
    month = draw(st.integers(0, 13))
    day = draw(st.integers(0, 32))
    hour, minute, second = (
        draw(st.integers(0, 25)),
        draw(st.integers(0, 61)),
        draw(st.integers(0, 61)),
    )
    if kind == 1:  # calendar edge days
        month, day = draw(st.sampled_from([(2, 28), (2, 29), (2, 30), (4, 30), (4, 31), (12, 31)]))
    if kind <= 4:  # a real instant, so most of these are valid or close to it
        moment = draw(st.datetimes(datetime(2, 1, 1), datetime(9998, 12, 31)))
        year, month, day = moment.year, moment.month, moment.day
        hour, minute, second = moment.hour, moment.minute, moment.second
    date = f"{year:04d}-{month:02d}-{day:02d}"
    if kind == 5:
        date = draw(st.sampled_from([f"{year}{month:02d}{day:02d}", f"{year:05d}-01-01", date]))
    clock = f"{hour:02d}:{minute:02d}" + ("" if kind == 6 else f":{second:02d}")
    return f"{date}{draw(_SEPARATORS)}{clock}{draw(_FRACTIONS)}{draw(_OFFSETS)}"


def _text(min_size: int, max_size: int) -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(min_size=min_size, max_size=max_size),
        st.text("az09.-_", min_size=min_size, max_size=max_size),
    )


def _around(limit: int) -> st.SearchStrategy[str]:
    """Strings at, just under and just over a length limit."""
    return st.builds(
        lambda n, ch: ch * n,
        st.sampled_from([0, 1, limit - 1, limit, limit + 1]),
        st.sampled_from("xé😀"),
    )


_SLUGS = st.one_of(
    st.sampled_from(["newsletter", "hms-se", "a", "a" * 64, "a" * 65, "A", "-x", "x\n", "ab c"]),
    st.from_regex(r"[a-z0-9][a-z0-9._-]{0,63}", fullmatch=True),
    _text(0, 70),
)
_ANY_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=5,
)


def _optional(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A field value, null, or a stray JSON value."""
    return st.one_of(values, values, st.none(), _ANY_JSON)


_IDENTIFIERS = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {},
        optional={
            "email": _optional(
                st.one_of(
                    st.sampled_from(
                        ["anna@example.org", "a@b", "a b@c", "a@b@c", "a\u3000@b", "a@b\n"]
                    ),
                    st.builds(lambda a, b: f"{a}@{b}", _text(0, 8), _text(0, 8)),
                    _around(320),
                )
            ),
            "phone": _optional(
                st.sampled_from(["+46 8 123 456", "12", "123", "+1 (555) 010-9999", "x123"])
            ),
            "cookie_id": _optional(_around(256)),
            "crm_id": _optional(_around(128)),
            "fax": st.just("1"),
        },
    ),
    _ANY_JSON,
)


_VALID_TIMES = st.builds(
    lambda moment, sep, fraction, offset: (
        f"{moment:%Y-%m-%d}{sep}{moment:%H:%M:%S}{fraction}{offset}"
    ),
    st.datetimes(datetime(2, 1, 1), datetime(9998, 12, 31)),
    st.sampled_from("TTt"),
    st.one_of(st.just(""), st.text("0123456789", min_size=1, max_size=12).map(".".__add__)),
    st.one_of(
        st.sampled_from(["Z", "z", "+00:00", "-00:00"]),
        st.builds(
            lambda sign, h, m: f"{sign}{h:02d}:{m:02d}",
            st.sampled_from("+-"),
            st.integers(0, 23),
            st.integers(0, 59),
        ),
    ),
)
_VALID_SLUGS = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,63}", fullmatch=True)
_VALID_TEXT = st.text(min_size=1, max_size=20)


@st.composite
def valid_records(draw: st.DrawFn) -> dict[str, Any]:
    """A record the contract accepts, with every kind of optional content."""
    type_ = draw(st.sampled_from(TYPES))
    record: dict[str, Any] = {
        "event_id": draw(st.one_of(_VALID_TEXT, _around(128).filter(lambda t: 0 < len(t) <= 128))),
        "type": type_,
        "occurred_at": draw(_VALID_TIMES),
        "controller": draw(_VALID_SLUGS),
        "subject_id": draw(_VALID_TEXT.filter(lambda t: t not in (".", ".."))),
    }
    if type_ in PURPOSE_TYPES:
        record["purpose"] = draw(_VALID_SLUGS)
    elif type_ == "unsubscribed" and draw(st.booleans()):
        record["purpose"] = draw(st.none() | _VALID_SLUGS)
    if type_ in PURPOSE_TYPES or type_ == "unsubscribed":
        if draw(st.booleans()):
            record["channel"] = draw(st.none() | st.sampled_from([c.value for c in Channel]))
    elif draw(st.booleans()):
        record.update(purpose=None, channel=None)
    if type_ == "objection.raised":
        record["objection"] = draw(st.sampled_from([o.value for o in Objection]))
    elif draw(st.integers(0, 3)) == 0:
        record["objection"] = None
    if type_ == "privacy.signal":
        record["signal"] = draw(st.sampled_from([s.value for s in Signal]))
    elif draw(st.integers(0, 3)) == 0:
        record["signal"] = None
    if type_ == "access.fulfilled":
        record["request_id"] = draw(
            st.one_of(_VALID_TEXT, _around(128).filter(lambda t: 0 < len(t) <= 128))
        )
    elif draw(st.integers(0, 3)) == 0:
        record["request_id"] = None
    record.update(
        draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "identifiers": st.none()
                    | st.fixed_dictionaries(
                        {},
                        optional={
                            "email": st.none()
                            | st.sampled_from(["anna@example.org", "a@b", "å@ü.se"]),
                            "phone": st.none() | st.sampled_from(["+46 8 123 456", "123"]),
                            "cookie_id": st.none() | _VALID_TEXT,
                            "crm_id": st.none() | _VALID_TEXT,
                        },
                    ),
                    "source": st.none() | _VALID_TEXT,
                    "jurisdiction": st.none() | st.sampled_from(["SE", "US-CA", "NL"]),
                    "notice_version": st.none() | _VALID_TEXT,
                    "evidence": st.none()
                    | st.dictionaries(st.text(max_size=5), _ANY_JSON, max_size=3),
                    "schema_version": st.just(1),
                },
            )
        )
    )
    return record


_WILD: dict[str, st.SearchStrategy[Any]] = {
    "event_id": st.one_of(_around(128), _text(0, 130), _ANY_JSON),
    "type": st.one_of(st.sampled_from(TYPES), st.sampled_from(["consent.lost", "", None, 1])),
    "occurred_at": times(),
    "controller": st.one_of(_SLUGS, _ANY_JSON),
    "subject_id": st.one_of(
        st.sampled_from([".", "..", "...", ". "]), _around(256), _text(0, 20), _ANY_JSON
    ),
    "purpose": _optional(_SLUGS),
    "channel": _optional(st.sampled_from([c.value for c in Channel] + ["fax"])),
    "objection": _optional(st.sampled_from([o.value for o in Objection])),
    "signal": _optional(st.sampled_from([s.value for s in Signal])),
    "identifiers": _IDENTIFIERS,
    "source": _optional(_around(128)),
    "jurisdiction": _optional(st.sampled_from(["SE", "US-CA", "se", "SWE", "US-CAL1", "X"])),
    "notice_version": _optional(_around(128)),
    "evidence": _optional(st.dictionaries(st.text(max_size=5), _ANY_JSON, max_size=3)),
    "request_id": _optional(st.one_of(_around(128), _text(0, 130))),
    "schema_version": st.sampled_from([1, 1.0, True, False, 0, 2, "1", None, 1.5]),
    "extra": st.just("x"),
}


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    """A consent.events value as parsed JSON: valid, or wrong in one to three ways."""
    record = draw(valid_records())
    for name in draw(st.lists(st.sampled_from(sorted(_WILD)), max_size=3)):
        if draw(st.integers(0, 5)) == 0:
            record.pop(name, None)
        else:
            record[name] = draw(_WILD[name])
    return record


#: A clock under which no generated time is in the future: the skew check is not a schema rule.
FAR_FUTURE = datetime(9999, 12, 31, tzinfo=UTC)
