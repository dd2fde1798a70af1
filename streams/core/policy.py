"""The policy catalogue: controllers, their purposes, and what each privacy signal opts out of.

A policy is a TOML file (see ``docs/policy.md``). It is parsed with :mod:`tomllib` and validated
into frozen pydantic models; anything wrong is reported as one :class:`PolicyError` that names
the file, the dotted path of each offending key and, where it can be found, its line.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from schemas.vocabulary import Category, Channel, Destination, LegalBasis, Signal
from streams.core.calendars import Jurisdiction
from streams.core.deadlines import DeadlineRule, RequestKind
from streams.core.notices import NoticeVersion
from streams.core.periods import Period, PeriodField
from streams.core.retention import RetentionRule

#: The example policy shipped with the package; used when no policy file is configured.
DEFAULT_POLICY_PATH: Path = Path(__file__).resolve().parent.parent / "policy.example.toml"

#: Controller ids and purpose names. No "/" (ids are joined with "/" into keys elsewhere).
ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"

#: What each signal opts out of when the policy has no ``[signals]`` entry for it.
DEFAULT_SIGNALS: Mapping[Signal, tuple[Category, ...]] = {
    Signal.GPC: (Category.TRACKING, Category.SALE_OR_SHARING),
    Signal.DNT: (),
}

_T = TypeVar("_T")


class Erasure(StrEnum):
    """Whether an erasure request (GDPR Art 17) reaches a purpose."""

    #: the request stops the purpose and its destinations are told to erase the person's data
    APPLIES = "applies"
    #: the data is kept while the contract or the legal obligation needs it (Art 17(1)(a),
    #: 17(3)(b)); the purpose keeps its decision and its retention rules end it
    EXEMPT = "exempt"


#: What an erasure request cannot override, per legal basis, and why (the policy's error text).
_NO_EXEMPTION: Mapping[LegalBasis, str] = {
    LegalBasis.CONSENT: (
        "a purpose on consent cannot be exempt from erasure: erasure applies once consent is "
        "withdrawn (GDPR Art 17(1)(b)); data a contract or the law needs belongs to a purpose "
        "on that legal basis"
    ),
    LegalBasis.LEGITIMATE_INTEREST: (
        "a purpose on legitimate interest cannot be exempt from erasure: whether an interest "
        "overrides an erasure request is weighed per request (GDPR Art 17(1)(c)), not in the "
        "policy; data a contract or the law needs belongs to a purpose on that legal basis"
    ),
}


class Located(ValueError):
    """A validation problem inside the value being validated: ``where`` is the path below the
    field (list positions and keys), so the error can name the exact field and its line."""

    def __init__(self, message: str, *where: str | int):
        super().__init__(message)
        self.where = where


def _no_duplicates(values: tuple[_T, ...]) -> tuple[_T, ...]:
    repeated = sorted({str(v) for i, v in enumerate(values) if v in values[:i]})
    if repeated:
        raise ValueError(f"duplicate entries: {', '.join(repeated)}")
    return values


def _not_essential(values: tuple[Category, ...]) -> tuple[Category, ...]:
    if Category.ESSENTIAL in values:
        raise ValueError("a privacy signal cannot opt out of essential processing")
    return values


Categories = Annotated[tuple[Category, ...], Field(min_length=1), AfterValidator(_no_duplicates)]
Channels = Annotated[tuple[Channel, ...], Field(min_length=1), AfterValidator(_no_duplicates)]
Destinations = Annotated[tuple[Destination, ...], AfterValidator(_no_duplicates)]
SignalCategories = Annotated[
    tuple[Category, ...], AfterValidator(_no_duplicates), AfterValidator(_not_essential)
]
SignalMap = dict[Signal, SignalCategories]


def _name_after_keys(data: Any, table: str, attribute: str) -> Any:
    """Give each entry of ``data[table]`` its table key as ``attribute`` unless it has one."""
    if not isinstance(data, Mapping) or not isinstance(data.get(table), Mapping):
        return data
    entries = {
        key: {attribute: key, **value} if isinstance(value, Mapping) else value
        for key, value in data[table].items()
    }
    return {**data, table: entries}


class Purpose(BaseModel):
    """Why a controller processes personal data, on which legal basis and through which channels."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=ID_PATTERN)
    legal_basis: LegalBasis
    categories: Categories
    channels: Channels
    destinations: Destinations
    double_opt_in: StrictBool = False
    description: str = ""
    #: A few words naming the purpose to the person, in the controller's language (link pages).
    title: str | None = Field(default=None, min_length=1, max_length=80)
    #: How long an unconfirmed double opt-in may wait before the sign-up lapses.
    confirmation_window: PeriodField | None = None
    #: How long a consent lasts before it expires and must be given again.
    consent_lifetime: PeriodField | None = None
    #: How long before the consent expires a renewal reminder goes to the notification topic.
    renewal_reminder: PeriodField | None = None
    retention: tuple[RetentionRule, ...] = ()
    #: Whether an erasure request reaches the purpose; unset: exempt on legal obligation only.
    erasure: Erasure | None = None

    @field_validator("double_opt_in")
    @classmethod
    def _double_opt_in_needs_consent(cls, value: bool, info: ValidationInfo) -> bool:
        basis = info.data.get("legal_basis")
        if value and basis is not None and basis is not LegalBasis.CONSENT:
            raise ValueError(
                f'double opt-in confirms a consent, so it needs legal_basis = "consent", '
                f'not "{basis}"'
            )
        return value

    @field_validator("confirmation_window")
    @classmethod
    def _window_needs_double_opt_in(cls, value: Period, info: ValidationInfo) -> Period:
        if value.is_zero():
            raise ValueError("the confirmation window must be longer than zero")
        if info.data.get("double_opt_in") is not True:
            raise ValueError("a confirmation window needs double_opt_in = true")
        return value

    @field_validator("consent_lifetime")
    @classmethod
    def _lifetime_outlasts_window(cls, value: Period, info: ValidationInfo) -> Period:
        if value.is_zero():
            raise ValueError("a consent lifetime must be longer than zero")
        basis = info.data.get("legal_basis")
        if basis is not None and basis is not LegalBasis.CONSENT:
            raise ValueError(f'a consent lifetime needs legal_basis = "consent", not "{basis}"')
        window = info.data.get("confirmation_window")
        if window is not None and value.shortest() < window.longest():
            raise ValueError(
                f"a consent lasting {value} can end before the {window} confirmation window "
                "does; the lifetime must be longer"
            )
        return value

    @field_validator("renewal_reminder")
    @classmethod
    def _reminder_within_lifetime(cls, value: Period, info: ValidationInfo) -> Period:
        if value.is_zero():
            raise ValueError("a renewal reminder must come more than zero before the expiry")
        if "consent_lifetime" not in info.data:
            return value  # the lifetime itself is invalid, and reported
        lifetime = info.data["consent_lifetime"]
        if lifetime is None:
            raise ValueError("a renewal reminder needs a consent_lifetime")
        if value.longest() >= lifetime.shortest():
            raise ValueError(
                f"a reminder {value} before the expiry can come before a {lifetime} consent is "
                "given; it must be shorter than the lifetime"
            )
        return value

    @field_validator("retention", mode="before")
    @classmethod
    def _no_free_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            raise ValueError(
                "retention is a list of rules now: write [[...retention]] tables with period, "
                "anchor and action, and keep the text as their note"
            )
        return value

    @field_validator("retention")
    @classmethod
    def _one_rule_per_data(cls, rules: tuple[RetentionRule, ...]) -> tuple[RetentionRule, ...]:
        seen: set[str] = set()
        for index, rule in enumerate(rules):
            for data in rule.data or ("(all data)",):
                if data in seen:
                    field = "data" if rule.data else "period"
                    raise Located(f"{data} already has a retention rule", index, field)
                seen.add(data)
        return rules

    @field_validator("erasure")
    @classmethod
    def _exempt_only_while_needed(cls, value: Erasure, info: ValidationInfo) -> Erasure:
        basis = info.data.get("legal_basis")
        if value is Erasure.EXEMPT and isinstance(basis, LegalBasis) and basis in _NO_EXEMPTION:
            raise ValueError(_NO_EXEMPTION[basis])
        return value

    def has_category(self, category: Category) -> bool:
        return category in self.categories

    @property
    def erasable(self) -> bool:
        """Whether an erasure request stops this purpose and erases its data downstream."""
        if self.erasure is None:
            return self.legal_basis is not LegalBasis.LEGAL_OBLIGATION
        return self.erasure is Erasure.APPLIES


class Controller(BaseModel):
    """An organisation that decides on the processing, with its purposes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1)
    #: Language of the controller's notices and link pages (ISO 639-1; sv, nl, en are translated).
    language: str = Field(default="en", pattern=r"^[a-z]{2}$")
    purposes: dict[str, Purpose] = Field(min_length=1)
    signals: SignalMap | None = None
    #: Whose business days and time zone the controller's own promises are counted in.
    jurisdiction: Jurisdiction | None = None
    #: Deadlines the notice promises, per kind of request.
    promises: dict[RequestKind, DeadlineRule] = Field(default_factory=dict)
    #: The notice's versions, oldest first.
    notices: tuple[NoticeVersion, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _purpose_names_from_keys(cls, data: Any) -> Any:
        return _name_after_keys(data, "purposes", "name")

    @field_validator("purposes")
    @classmethod
    def _purpose_keys_match(cls, purposes: dict[str, Purpose]) -> dict[str, Purpose]:
        for key, purpose in purposes.items():
            if purpose.name != key:
                raise ValueError(
                    f"purpose {key!r} is named {purpose.name!r}; a purpose's name is its table "
                    "key, leave `name` out"
                )
        return purposes

    @field_validator("promises")
    @classmethod
    def _calendar_promises_need_a_jurisdiction(
        cls, promises: dict[RequestKind, DeadlineRule], info: ValidationInfo
    ) -> dict[RequestKind, DeadlineRule]:
        if "jurisdiction" not in info.data:
            return promises  # the jurisdiction itself is invalid, and reported
        for kind, rule in promises.items():
            field = "business_days" if rule.business_days is not None else "end_of_day"
            on_a_calendar = rule.business_days is not None or rule.end_of_day
            if on_a_calendar and info.data["jurisdiction"] is None:
                raise Located(
                    "counting days on a calendar needs the controller's jurisdiction", kind, field
                )
        return promises

    @field_validator("notices")
    @classmethod
    def _notices_in_order(
        cls, notices: tuple[NoticeVersion, ...], info: ValidationInfo
    ) -> tuple[NoticeVersion, ...]:
        purposes = info.data.get("purposes", {})
        versions: set[str] = set()
        for index, notice in enumerate(notices):
            if notice.version in versions:
                raise Located(f"version {notice.version!r} is listed twice", index, "version")
            versions.add(notice.version)
            if index and notice.effective <= notices[index - 1].effective:
                raise Located(
                    f"effective {notice.effective.isoformat()} is not after the previous "
                    f"version's {notices[index - 1].effective.isoformat()}",
                    index,
                    "effective",
                )
            for position, name in enumerate(notice.material):
                if purposes and name not in purposes:
                    raise Located(f"no purpose {name!r}", index, "material", position)
        return notices


class Policy(BaseModel):
    """Every controller and purpose the processor knows, plus the global signal mapping."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    signals: SignalMap = Field(default_factory=lambda: dict(DEFAULT_SIGNALS))
    controllers: dict[str, Controller] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _controller_ids_from_keys(cls, data: Any) -> Any:
        return _name_after_keys(data, "controllers", "id")

    @field_validator("signals", mode="before")
    @classmethod
    def _keep_default_for_unlisted_signals(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {**DEFAULT_SIGNALS, **value}
        return value

    @field_validator("controllers")
    @classmethod
    def _controller_keys_match(cls, controllers: dict[str, Controller]) -> dict[str, Controller]:
        for key, controller in controllers.items():
            if controller.id != key:
                raise ValueError(
                    f"controller {key!r} has id {controller.id!r}; a controller's id is its "
                    "table key, leave `id` out"
                )
        return controllers

    def controller(self, id: str) -> Controller | None:
        return self.controllers.get(id)

    def signal_categories(self, controller_id: str, signal: Signal) -> frozenset[Category]:
        """Categories ``signal`` opts out of: the controller's override if it lists the signal,
        otherwise the global mapping."""
        controller = self.controllers.get(controller_id)
        if controller is not None and controller.signals and signal in controller.signals:
            return frozenset(controller.signals[signal])
        return frozenset(self.signals.get(signal, ()))

    def pairs(self, controller_id: str) -> tuple[tuple[str, Channel], ...]:
        """Every (purpose, channel) of a controller: purposes in file order, channels as listed."""
        controller = self.controllers.get(controller_id)
        if controller is None:
            return ()
        return tuple(
            (purpose.name, channel)
            for purpose in controller.purposes.values()
            for channel in purpose.channels
        )


class PolicyError(ValueError):
    """A policy file cannot be read, is not TOML, or does not validate."""

    def __init__(self, message: str, source: str = "<policy>", problems: Sequence[str] = ()):
        super().__init__(message)
        self.source = source
        self.problems = tuple(problems)


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    """Parse and validate policy TOML; ``source`` names the file in error messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"at line (\d+)", str(exc))
        where = f"{source}:{match.group(1)}" if match else source
        raise _invalid(source, [f"{where}: TOML syntax error: {exc}"]) from None
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        lines = _key_lines(text)
        problems = [_describe(error, source, lines) for error in exc.errors()]
        raise _invalid(source, problems) from None


def load_policy(path: Path | None = None) -> Policy:
    """Load a policy file; ``None`` loads the shipped example."""
    path = DEFAULT_POLICY_PATH if path is None else path
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise PolicyError(
            f"cannot read policy file {path}: {reason}", source=str(path), problems=[reason]
        ) from None
    return parse_policy(text, source=str(path))


def _invalid(source: str, problems: list[str]) -> PolicyError:
    count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
    body = "\n".join(f"  {problem}" for problem in problems)
    return PolicyError(f"invalid policy {source} ({count}):\n{body}", source, problems)


def _describe(error: ErrorDetails, source: str, lines: Mapping[tuple[str, ...], int]) -> str:
    loc = [part for part in error["loc"] if part != "[key]"]
    cause = error.get("ctx", {}).get("error")
    located = isinstance(cause, Located)
    if isinstance(cause, Located):
        loc.extend(cause.where)  # a problem below the field: name the entry and its line
    message = error["msg"].removeprefix("Value error, ")
    if "[key]" in error["loc"]:
        message = f"invalid key: {message}"
    given = None if located else error.get("input")
    if error["type"] != "missing" and isinstance(given, str | int | float | bool):
        message = f"{message} (got {given!r})"
    line = _line_of(loc, lines)
    where = f"{source}:{line}" if line is not None else source
    return f"{where}: {_dotted(loc) or '(top level)'}: {message}"


def _dotted(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            key = part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else json.dumps(part)
            out += f".{key}" if out else key
    return out


def _line_of(loc: Sequence[str | int], lines: Mapping[tuple[str, ...], int]) -> int | None:
    """Line of the deepest key of ``loc`` present in the file (a missing key: its table)."""
    path = tuple(str(part) for part in loc)
    for end in range(len(path), 0, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


_KEY = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_DOTTED_KEY = rf"{_KEY}(?:\s*\.\s*{_KEY})*"
_HEADER = re.compile(rf"^\s*\[\[?\s*({_DOTTED_KEY})\s*\]\]?\s*(?:#.*)?$")
_ASSIGNMENT = re.compile(rf"^\s*({_DOTTED_KEY})\s*=")


def _key_parts(dotted: str) -> tuple[str, ...]:
    parts = []
    for raw in re.findall(_KEY, dotted):
        if raw.startswith('"'):
            try:
                raw = json.loads(raw)
            except ValueError:
                raw = raw[1:-1]
        elif raw.startswith("'"):
            raw = raw[1:-1]
        parts.append(raw)
    return tuple(parts)


def _key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Best effort map of every table and key path in ``text`` to the line it first appears on."""
    found: dict[tuple[str, ...], int] = {}
    entries: dict[tuple[str, ...], int] = {}  # how many [[array]] tables each path has had
    table: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), start=1):
        if header := _HEADER.match(line):
            table = _key_parts(header.group(1))
            if line.lstrip().startswith("[["):
                found.setdefault(table, number)
                index = entries.get(table, 0)
                entries[table] = index + 1
                table = (*table, str(index))
            path = table
        elif assignment := _ASSIGNMENT.match(line):
            path = table + _key_parts(assignment.group(1))
        else:
            continue
        for end in range(1, len(path) + 1):
            found.setdefault(path[:end], number)
    return found
