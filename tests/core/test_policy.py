from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.vocabulary import Category, Channel, Destination, LegalBasis, Signal
from streams.core.deadlines import RequestKind
from streams.core.periods import Period
from streams.core.policy import (
    DEFAULT_POLICY_PATH,
    ID_PATTERN,
    Controller,
    Erasure,
    Policy,
    PolicyError,
    Purpose,
    load_policy,
    parse_policy,
)
from streams.core.retention import Action, Anchor, Rounding

DOCS = Path(__file__).resolve().parents[2] / "docs" / "policy.md"

VALID = """\
[signals]
gpc = ["tracking", "sale_or_sharing"]
dnt = ["tracking"]

[controllers.acme-se]
name = "Acme Networks AB"

[controllers.acme-se.purposes.newsletter]
legal_basis = "consent"
categories = ["direct_marketing"]
channels = ["email", "sms"]
destinations = ["email", "crm"]
double_opt_in = true

[controllers.acme-se.purposes.analytics]
legal_basis = "legitimate_interest"
categories = ["tracking", "profiling"]
channels = ["web"]
destinations = ["analytics"]
description = "Page views."

[[controllers.acme-se.purposes.analytics.retention]]
period = "P3Y"
anchor = "collected"
action = "erase"

[controllers.acme-se.purposes.invoices]
legal_basis = "legal_obligation"
categories = ["essential"]
channels = ["post", "email"]
destinations = []

[controllers.quiet]
name = "Quiet Ltd"
signals = { dnt = [], gpc = ["sale_or_sharing"] }

[controllers.quiet.purposes.offers]
legal_basis = "legitimate_interest"
categories = ["direct_marketing"]
channels = ["phone"]
destinations = ["crm"]
"""


def line_of(text: str, needle: str) -> int:
    """1-based line of the only line of ``text`` containing ``needle``."""
    hits = [n for n, line in enumerate(text.splitlines(), start=1) if needle in line]
    assert len(hits) == 1, (needle, hits)
    return hits[0]


def failure(text: str, source: str = "bad.toml") -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, source)
    return caught.value


# --- the shipped example ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def example() -> Policy:
    return load_policy()


def test_default_path_is_the_shipped_example(example: Policy) -> None:
    assert DEFAULT_POLICY_PATH.name == "policy.example.toml"
    assert DEFAULT_POLICY_PATH.is_file()
    assert load_policy(DEFAULT_POLICY_PATH) == example


def test_example_has_the_controllers_from_the_notices(example: Policy) -> None:
    assert len(example.controllers) >= 3
    assert set(example.controllers) == {"hms-se", "hms-contact-nl", "sms-tech", "kms-uk"}
    hms = example.controller("hms-se")
    assert hms is not None
    assert hms.name == "HMS Industrial Networks AB"
    for controller_id, controller in example.controllers.items():
        assert controller.id == controller_id
        assert re.fullmatch(ID_PATTERN, controller_id)
        for name, purpose in controller.purposes.items():
            assert purpose.name == name
            assert re.fullmatch(ID_PATTERN, name)


def test_example_mixes_consent_and_legitimate_interest_marketing(example: Policy) -> None:
    marketing = [
        p
        for c in example.controllers.values()
        for p in c.purposes.values()
        if p.has_category(Category.DIRECT_MARKETING)
    ]
    bases = {p.legal_basis for p in marketing}
    assert {LegalBasis.CONSENT, LegalBasis.LEGITIMATE_INTEREST} <= bases
    hms = example.controllers["hms-se"].purposes
    assert hms["customer-marketing"].legal_basis is LegalBasis.LEGITIMATE_INTEREST
    assert hms["newsletter"].legal_basis is LegalBasis.CONSENT
    assert all(
        Destination.EMAIL in p.destinations for p in marketing if Channel.EMAIL in p.channels
    )


def test_example_has_double_opt_in_and_legal_obligation(example: Policy) -> None:
    purposes = [p for c in example.controllers.values() for p in c.purposes.values()]
    double = [p for p in purposes if p.double_opt_in]
    assert double and all(p.legal_basis is LegalBasis.CONSENT for p in double)
    assert example.controllers["hms-se"].purposes["newsletter"].double_opt_in is True
    bookkeeping = example.controllers["hms-se"].purposes["bookkeeping"]
    assert bookkeeping.legal_basis is LegalBasis.LEGAL_OBLIGATION
    assert bookkeeping.categories == (Category.ESSENTIAL,)
    (rule,) = bookkeeping.retention
    assert (str(rule.period), rule.anchor, rule.rounding, rule.action) == (
        "P10Y",
        Anchor.COLLECTED,
        Rounding.END_OF_YEAR,
        Action.ERASE,
    )


def test_example_web_analytics_and_retention(example: Policy) -> None:
    analytics = example.controllers["hms-se"].purposes["web-analytics"]
    assert analytics.categories == (Category.TRACKING,)
    assert analytics.channels == (Channel.WEB,)
    assert analytics.destinations == (Destination.ANALYTICS,)
    assert [str(rule.period) for rule in analytics.retention] == ["P3Y"]
    (chat,) = example.controllers["hms-se"].purposes["live-chat"].retention
    assert (str(chat.period), chat.anchor) == ("P45D", Anchor.COLLECTED)
    (newsletter,) = example.controllers["hms-contact-nl"].purposes["newsletter"].retention
    assert str(newsletter.period) == "P2Y"
    assert "telephone-number" in newsletter.data


def test_example_signals(example: Policy) -> None:
    # SMS Tech's notice says it ignores Do Not Track; everyone else follows the global table.
    assert example.signal_categories("sms-tech", Signal.DNT) == frozenset()
    assert example.signal_categories("sms-tech", Signal.GPC) == {
        Category.TRACKING,
        Category.SALE_OR_SHARING,
    }
    assert example.signal_categories("hms-se", Signal.DNT) == {Category.TRACKING}


def test_docs_list_every_example_purpose(example: Policy) -> None:
    docs = DOCS.read_text(encoding="utf-8")
    for controller in example.controllers.values():
        assert f"`{controller.id}`" in docs
        for name, purpose in controller.purposes.items():
            row = f"| `{controller.id}` | `{name}` | {purpose.legal_basis} |"
            assert row in docs, row


def test_docs_format_example_parses_and_its_error_is_the_one_shown() -> None:
    docs = DOCS.read_text(encoding="utf-8")
    block = re.search(r"```toml\n(.*?)```", docs, re.S)
    assert block
    acme = parse_policy(block.group(1), "policy.toml").controllers["acme-se"]
    assert acme.notices[1].material == ("newsletter",)
    bad = block.group(1).replace("effective = 2024-06-01", "effective = 2023-01-01")
    assert failure(bad, "policy.toml").problems[0] in docs


def test_docs_show_each_seed_promise_next_to_its_encoding(example: Policy) -> None:
    rows = [line for line in DOCS.read_text(encoding="utf-8").splitlines() if line.count("|") == 5]
    for controller in example.controllers.values():
        mine = [row for row in rows if row.startswith(f"| `{controller.id}` |")]
        for name, purpose in controller.purposes.items():
            for rule in purpose.retention:
                encoding = f"`{rule.period}`, `{rule.anchor}`"
                assert any(f"`{name}`" in row and encoding in row for row in mine), (name, rule)
        for kind, promise in controller.promises.items():
            (row,) = [row for row in mine if f"`promises.{kind}`" in row]
            if promise.business_days:
                assert f"business_days = {promise.business_days}" in row
            else:
                written = re.search(r'within = "(P\w+)"', row)
                assert written and Period.parse(written.group(1)) == promise.within, row
        for notice in controller.notices:
            assert any(f"version `{notice.version}`" in row for row in mine), notice


# --- behaviour of a valid policy --------------------------------------------------------------


def test_parse_valid_policy_fills_names_and_defaults() -> None:
    policy = parse_policy(VALID)
    acme = policy.controllers["acme-se"]
    assert acme.id == "acme-se"
    assert acme.signals is None
    newsletter = acme.purposes["newsletter"]
    assert newsletter.name == "newsletter"
    assert newsletter.channels == (Channel.EMAIL, Channel.SMS)
    assert newsletter.description == ""
    assert newsletter.retention == ()
    assert newsletter.consent_lifetime is None
    assert acme.notices == () and acme.promises == {} and acme.jurisdiction is None
    assert acme.purposes["invoices"].destinations == ()
    assert acme.purposes["invoices"].double_opt_in is False
    assert acme.purposes["analytics"].has_category(Category.PROFILING)
    assert not acme.purposes["analytics"].has_category(Category.DIRECT_MARKETING)


def test_signal_categories_override_and_global() -> None:
    policy = parse_policy(VALID)
    assert policy.signal_categories("acme-se", Signal.GPC) == {
        Category.TRACKING,
        Category.SALE_OR_SHARING,
    }
    assert policy.signal_categories("acme-se", Signal.DNT) == {Category.TRACKING}
    assert policy.signal_categories("quiet", Signal.DNT) == frozenset()
    assert policy.signal_categories("quiet", Signal.GPC) == {Category.SALE_OR_SHARING}
    assert policy.signal_categories("unknown", Signal.DNT) == {Category.TRACKING}


def test_controller_override_falls_back_per_signal() -> None:
    text = VALID.replace(
        'signals = { dnt = [], gpc = ["sale_or_sharing"] }', "signals = { dnt = [] }"
    )
    policy = parse_policy(text)
    assert policy.signal_categories("quiet", Signal.DNT) == frozenset()
    assert policy.signal_categories("quiet", Signal.GPC) == {
        Category.TRACKING,
        Category.SALE_OR_SHARING,
    }


def test_signals_default_when_absent_or_partial() -> None:
    only_dnt = parse_policy(VALID.replace('gpc = ["tracking", "sale_or_sharing"]\n', "", 1))
    assert only_dnt.signal_categories("acme-se", Signal.GPC) == {
        Category.TRACKING,
        Category.SALE_OR_SHARING,
    }
    assert only_dnt.signal_categories("acme-se", Signal.DNT) == {Category.TRACKING}

    without_signals = VALID.split("[signals]", 1)[0] + VALID.split('dnt = ["tracking"]\n', 1)[1]
    defaults = parse_policy(without_signals)
    assert defaults.signals == {
        Signal.GPC: (Category.TRACKING, Category.SALE_OR_SHARING),
        Signal.DNT: (),
    }
    assert defaults.signal_categories("acme-se", Signal.DNT) == frozenset()


def test_pairs_follow_file_order() -> None:
    policy = parse_policy(VALID)
    assert policy.pairs("acme-se") == (
        ("newsletter", Channel.EMAIL),
        ("newsletter", Channel.SMS),
        ("analytics", Channel.WEB),
        ("invoices", Channel.POST),
        ("invoices", Channel.EMAIL),
    )
    assert policy.pairs("quiet") == (("offers", Channel.PHONE),)
    assert policy.pairs("unknown") == ()
    assert policy.controller("unknown") is None


@given(
    st.lists(
        st.tuples(
            st.from_regex(r"[a-z0-9][a-z0-9_-]{0,10}", fullmatch=True),
            st.lists(st.sampled_from(list(Channel)), min_size=1, max_size=5, unique=True),
        ),
        min_size=1,
        max_size=6,
        unique_by=lambda item: item[0],
    )
)
def test_pairs_enumerate_every_purpose_channel(purposes: list[tuple[str, list[Channel]]]) -> None:
    text = '[controllers.c]\nname = "C"\n'
    for name, channels in purposes:
        listed = ", ".join(f'"{c}"' for c in channels)
        text += (
            f'[controllers.c.purposes."{name}"]\nlegal_basis = "contract"\n'
            f'categories = ["essential"]\nchannels = [{listed}]\ndestinations = []\n'
        )
    expected = tuple((name, channel) for name, channels in purposes for channel in channels)
    assert parse_policy(text).pairs("c") == expected


def test_models_are_frozen() -> None:
    policy = parse_policy(VALID)
    with pytest.raises(ValidationError):
        policy.controllers["acme-se"].purposes["newsletter"].double_opt_in = False  # type: ignore[misc]
    with pytest.raises(ValidationError):
        policy.controllers["acme-se"].name = "Other"  # type: ignore[misc]


def test_models_can_be_built_in_code() -> None:
    purpose = Purpose(
        name="orders",
        legal_basis=LegalBasis.CONTRACT,
        categories=(Category.ESSENTIAL,),
        channels=(Channel.EMAIL,),
        destinations=(),
    )
    controller = Controller(id="shop", name="Shop", purposes={"orders": purpose})
    policy = Policy(controllers={"shop": controller})
    assert policy.pairs("shop") == (("orders", Channel.EMAIL),)
    with pytest.raises(ValidationError, match="table key"):
        Policy(controllers={"other": controller})


# --- invalid input ----------------------------------------------------------------------------


def test_bad_legal_basis() -> None:
    text = VALID.replace('legal_basis = "legal_obligation"', 'legal_basis = "because"')
    error = failure(text)
    line = line_of(text, '"because"')
    assert f"bad.toml:{line}: controllers.acme-se.purposes.invoices.legal_basis:" in str(error)
    assert "'consent', 'legitimate_interest', 'contract' or 'legal_obligation'" in str(error)
    assert "(got 'because')" in str(error)
    assert error.source == "bad.toml"
    assert len(error.problems) == 1


def test_unknown_category() -> None:
    text = VALID.replace('["tracking", "profiling"]', '["tracking", "spying"]')
    message = str(failure(text))
    line = line_of(text, '"spying"')
    assert f"bad.toml:{line}: controllers.acme-se.purposes.analytics.categories[1]:" in message
    assert "(got 'spying')" in message


def test_unknown_key_is_rejected() -> None:
    text = VALID.replace('"Page views."', '"Page views."\nretension = "typo"')
    message = str(failure(text))
    line = line_of(text, "retension")
    assert f"bad.toml:{line}: controllers.acme-se.purposes.analytics.retension:" in message
    assert "Extra inputs are not permitted" in message


def test_unknown_top_level_and_controller_keys() -> None:
    text = VALID.replace('name = "Quiet Ltd"', 'name = "Quiet Ltd"\nwebsite = "quiet.example"')
    text = "version = 2\n" + text
    error = failure(text)
    assert len(error.problems) == 2
    assert "bad.toml:1: version: Extra inputs are not permitted" in str(error)
    line = line_of(text, "website")
    assert f"bad.toml:{line}: controllers.quiet.website: Extra inputs" in str(error)


def test_double_opt_in_needs_consent() -> None:
    text = VALID.replace("double_opt_in = true\n", "").replace(
        '"Page views."', '"Page views."\ndouble_opt_in = true'
    )
    message = str(failure(text))
    line = line_of(text, "double_opt_in")
    assert f"bad.toml:{line}: controllers.acme-se.purposes.analytics.double_opt_in:" in message
    assert 'needs legal_basis = "consent", not "legitimate_interest"' in message


def test_double_opt_in_must_be_a_boolean() -> None:
    text = VALID.replace("double_opt_in = true", 'double_opt_in = "yes"')
    message = str(failure(text))
    line = line_of(text, "double_opt_in")
    assert f"bad.toml:{line}: controllers.acme-se.purposes.newsletter.double_opt_in:" in message
    assert "valid boolean" in message


def test_duplicate_channels() -> None:
    text = VALID.replace('channels = ["email", "sms"]', 'channels = ["email", "sms", "email"]')
    message = str(failure(text))
    line = line_of(text, '"sms", "email"')
    assert f"bad.toml:{line}: controllers.acme-se.purposes.newsletter.channels:" in message
    assert "duplicate entries: email" in message


def test_duplicate_destinations_and_categories() -> None:
    text = VALID.replace(
        'destinations = ["analytics"]', 'destinations = ["analytics", "analytics"]'
    )
    text = text.replace('["tracking", "profiling"]', '["tracking", "tracking"]')
    error = failure(text)
    assert len(error.problems) == 2
    assert "analytics.categories: duplicate entries: tracking" in str(error)
    assert "analytics.destinations: duplicate entries: analytics" in str(error)


def test_empty_channels_and_categories() -> None:
    text = VALID.replace('channels = ["phone"]', "channels = []")
    message = str(failure(text))
    line = line_of(text, "channels = []")
    assert f"bad.toml:{line}: controllers.quiet.purposes.offers.channels:" in message
    assert "at least 1 item" in message


def test_controller_id_with_slash() -> None:
    text = VALID.replace("[controllers.quiet]", '[controllers."acme/quiet"]').replace(
        "[controllers.quiet.purposes.offers]", '[controllers."acme/quiet".purposes.offers]'
    )
    message = str(failure(text))
    line = line_of(text, '[controllers."acme/quiet"]')
    assert f'bad.toml:{line}: controllers."acme/quiet".id: String should match pattern' in message
    assert "(got 'acme/quiet')" in message


def test_bad_purpose_name() -> None:
    text = VALID.replace("purposes.offers]", "purposes.Offers]")
    message = str(failure(text))
    line = line_of(text, "purposes.Offers]")
    assert (
        f"bad.toml:{line}: controllers.quiet.purposes.Offers.name: String should match" in message
    )


def test_purpose_name_must_be_its_key() -> None:
    text = VALID.replace('channels = ["phone"]', 'channels = ["phone"]\nname = "deals"')
    message = str(failure(text))
    line = line_of(text, "[controllers.quiet.purposes.offers]")
    assert f"bad.toml:{line}: controllers.quiet.purposes:" in message
    assert "purpose 'offers' is named 'deals'" in message


def test_empty_purposes() -> None:
    text = VALID.replace('name = "Quiet Ltd"', 'name = "Quiet Ltd"\npurposes = {}')
    text = text.split("[controllers.quiet.purposes.offers]")[0]
    message = str(failure(text))
    line = line_of(text, "purposes = {}")
    assert f"bad.toml:{line}: controllers.quiet.purposes:" in message
    assert "at least 1 item" in message


def test_missing_purposes_points_at_the_controller_table() -> None:
    text = VALID.split("[controllers.quiet.purposes.offers]")[0]
    message = str(failure(text))
    line = line_of(text, "[controllers.quiet]")
    assert f"bad.toml:{line}: controllers.quiet.purposes: Field required" in message


def test_missing_controllers() -> None:
    message = str(failure('[signals]\ngpc = ["tracking"]\n'))
    assert "bad.toml: controllers: Field required" in message


def test_bad_signals() -> None:
    text = VALID.replace('dnt = ["tracking"]', 'dnt = ["tracking"]\nbeacon = ["tracking"]')
    text = text.replace('gpc = ["tracking", "sale_or_sharing"]', 'gpc = ["essential"]')
    error = failure(text)
    message = str(error)
    assert len(error.problems) == 2
    assert f"bad.toml:{line_of(text, 'beacon')}: signals.beacon: invalid key:" in message
    assert "'gpc' or 'dnt'" in message
    gpc_line = line_of(text, 'gpc = ["essential"]')
    assert f"bad.toml:{gpc_line}: signals.gpc:" in message
    assert "cannot opt out of essential processing" in message


def test_bad_controller_signal_override() -> None:
    text = VALID.replace('gpc = ["sale_or_sharing"] }', 'gpc = ["selling"] }')
    message = str(failure(text))
    line = line_of(text, "selling")
    assert f"bad.toml:{line}: controllers.quiet.signals.gpc[0]:" in message
    assert "(got 'selling')" in message


def test_several_errors_are_listed_one_per_line() -> None:
    text = (
        VALID.replace('legal_basis = "legal_obligation"', 'legal_basis = "because"')
        .replace('channels = ["web"]', 'channels = ["web", "web"]')
        .replace('destinations = ["crm"]', 'destinations = ["fax"]')
    )
    error = failure(text)
    lines = str(error).splitlines()
    assert lines[0] == "invalid policy bad.toml (3 problems):"
    assert len(lines) == 4
    assert all(line.startswith("  bad.toml:") for line in lines[1:])
    assert [line.strip() for line in lines[1:]] == list(error.problems)
    expected = {line_of(text, '"because"'), line_of(text, '["web", "web"]'), line_of(text, "fax")}
    assert {int(line.split(":")[1]) for line in lines[1:]} == expected


def test_toml_syntax_error_names_file_and_line() -> None:
    text = VALID.replace('name = "Quiet Ltd"', 'name = "Quiet Ltd')
    error = failure(text, "policy.toml")
    line = line_of(text, 'name = "Quiet Ltd')
    assert str(error).startswith("invalid policy policy.toml (1 problem):")
    assert f"policy.toml:{line}: TOML syntax error:" in str(error)
    assert f"(at line {line}," in str(error)


def test_toml_duplicate_table_is_a_syntax_error() -> None:
    text = VALID + '\n[controllers.quiet]\nname = "Again"\n'
    message = str(failure(text))
    assert "TOML syntax error" in message
    assert re.search(r"bad\.toml:\d+: ", message)


def test_load_reports_file_path(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    text = VALID.replace('destinations = ["crm"]', 'destinations = ["fax"]')
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert (
        f"{path}:{line_of(text, 'fax')}: controllers.quiet.purposes.offers.destinations[0]:"
        in str(caught.value)
    )
    assert caught.value.source == str(path)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert str(caught.value) == f"cannot read policy file {path}: No such file or directory"


def test_unreadable_encoding(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[controllers.x]\nname = "Malm\xf6"\n')
    with pytest.raises(PolicyError, match=re.escape(f"cannot read policy file {path}")):
        load_policy(path)


# --- clocks: retention, consent lifetimes, notice versions, promises --------------------------

CLOCKS = """\
[controllers.acme-se]
name = "Acme Networks AB"
jurisdiction = "SE"

[controllers.acme-se.promises.requests]
within = "P4W"

[controllers.acme-se.promises.data_return]
business_days = 3

[[controllers.acme-se.notices]]
version = "2023-03-30"
effective = 2023-03-30

[[controllers.acme-se.notices]]
version = "2024-06-01"
effective = 2024-06-01T00:00:00+02:00
material = ["newsletter"]

[controllers.acme-se.purposes.newsletter]
legal_basis = "consent"
categories = ["direct_marketing"]
channels = ["email"]
destinations = ["email"]
double_opt_in = true
confirmation_window = "P7D"
consent_lifetime = "P13M"

[controllers.acme-se.purposes.orders]
legal_basis = "contract"
categories = ["essential"]
channels = ["email"]
destinations = []

[[controllers.acme-se.purposes.orders.retention]]
period = "P7Y"
anchor = "last_contact"
rounding = "end_of_year"
action = "erase"
note = "seven years after the last contact, deleted at the end of that year"

[[controllers.acme-se.purposes.orders.retention]]
data = ["dietary-preferences"]
period = "P1D"
anchor = "event_end"
action = "anonymise"
"""


def test_clocks_parse() -> None:
    acme = parse_policy(CLOCKS).controllers["acme-se"]
    newsletter = acme.purposes["newsletter"]
    assert str(newsletter.confirmation_window) == "P7D"
    assert str(newsletter.consent_lifetime) == "P1Y1M"
    everything, dietary = acme.purposes["orders"].retention
    assert (everything.anchor, everything.rounding, everything.data) == (
        Anchor.LAST_CONTACT,
        Rounding.END_OF_YEAR,
        (),
    )
    assert (dietary.data, dietary.action) == (("dietary-preferences",), Action.ANONYMISE)
    assert [n.version for n in acme.notices] == ["2023-03-30", "2024-06-01"]
    assert acme.notices[0].effective == datetime(2023, 3, 30, tzinfo=UTC)
    assert acme.notices[1].effective == datetime(2024, 5, 31, 22, tzinfo=UTC)
    assert acme.notices[1].material == ("newsletter",)
    assert acme.promises[RequestKind.DATA_RETURN].business_days == 3
    assert str(acme.promises[RequestKind.REQUESTS].within) == "P28D"


def test_example_promises_and_notices(example: Policy) -> None:
    sms = example.controllers["sms-tech"]
    assert str(sms.promises[RequestKind.REQUESTS].within) == "P30D"
    assert sms.promises[RequestKind.DATA_RETURN].business_days == 3
    nl = example.controllers["hms-contact-nl"]
    assert str(nl.promises[RequestKind.REQUESTS].within) == "P28D"
    assert [n.version for n in example.controllers["kms-uk"].notices] == ["2018-05-23"]
    assert all(c.jurisdiction is not None for c in example.controllers.values())


@pytest.mark.parametrize(
    ("old", "new", "field", "expected"),
    [
        ('period = "P7Y"', 'period = "-P7Y"', "retention[0].period", "not an ISO 8601 duration"),
        ('period = "P7Y"', 'period = "P0D"', "retention[0].period", "longer than zero"),
        ('period = "P7Y"', "period = 7", "retention[0].period", "ISO 8601 duration string"),
        (
            'period = "P7Y"',
            "period = { months = -1 }",
            "retention[0].period",
            "ISO 8601 duration string",
        ),
        ('period = "P1D"', 'period = "7 years"', "retention[1].period", "not an ISO 8601"),
        (
            'anchor = "event_end"',
            'anchor = "birthday"',
            "retention[1].anchor",
            "'collected', 'last_contact'",
        ),
        ('rounding = "end_of_year"', 'rounding = "yearly"', "retention[0].rounding", "'none'"),
        ('action = "anonymise"', 'action = "shred"', "retention[1].action", "'erase'"),
        (
            'data = ["dietary-preferences"]',
            'data = ["Dietary Preferences"]',
            "retention[1].data[0]",
            "should match pattern",
        ),
    ],
)
def test_impossible_retention_is_refused(old: str, new: str, field: str, expected: str) -> None:
    text = CLOCKS.replace(old, new)
    error = failure(text)
    line = line_of(text, new)
    assert len(error.problems) == 1, error.problems
    assert f"bad.toml:{line}: controllers.acme-se.purposes.orders.{field}:" in str(error)
    assert expected in str(error)


def test_free_text_retention_points_to_the_rules() -> None:
    text = VALID.replace("double_opt_in = true\n", 'double_opt_in = true\nretention = "3 years"\n')
    error = failure(text)
    line = line_of(text, 'retention = "3 years"')
    field = "controllers.acme-se.purposes.newsletter.retention"
    assert f"bad.toml:{line}: {field}: retention is a list of rules now" in str(error)
    assert len(error.problems) == 1


def test_two_retention_rules_for_the_same_data_are_refused() -> None:
    text = CLOCKS.replace('data = ["dietary-preferences"]\n', "")
    error = failure(text)
    # The second rule's `period` line: the first key of the second [[...retention]] table.
    line = line_of(text, 'period = "P1D"')
    assert f"bad.toml:{line}: controllers.acme-se.purposes.orders.retention[1].period:" in str(
        error
    )
    assert "(all data) already has a retention rule" in str(error)


def test_notice_version_dated_before_the_previous_is_refused() -> None:
    text = CLOCKS.replace(
        "effective = 2024-06-01T00:00:00+02:00", "effective = 2023-01-01T00:00:00+02:00"
    )
    error = failure(text)
    line = line_of(text, "effective = 2023-01-01")
    assert f"bad.toml:{line}: controllers.acme-se.notices[1].effective:" in str(error)
    assert "is not after the previous version's 2023-03-30T00:00:00+00:00" in str(error)


def test_notice_version_listed_twice_and_unknown_material_purpose() -> None:
    text = CLOCKS.replace('version = "2024-06-01"', 'version = "2023-03-30"')
    error = failure(text)
    second = [n for n, line in enumerate(text.splitlines(), 1) if "2023-03-30" in line][-1]
    assert f"bad.toml:{second}: controllers.acme-se.notices[1].version:" in str(error)
    assert "listed twice" in str(error)
    text = CLOCKS.replace('material = ["newsletter"]', 'material = ["newsletters"]')
    error = failure(text)
    line = line_of(text, "newsletters")
    assert f"bad.toml:{line}: controllers.acme-se.notices[1].material[0]: no purpose" in str(error)


def test_notice_date_time_needs_an_offset() -> None:
    text = CLOCKS.replace("2024-06-01T00:00:00+02:00", "2024-06-01T00:00:00")
    error = failure(text)
    line = line_of(text, "effective = 2024-06-01T00:00:00")
    assert f"bad.toml:{line}: controllers.acme-se.notices[1].effective:" in str(error)
    assert "with an offset" in str(error)


def test_consent_lifetime_shorter_than_the_confirmation_window_is_refused() -> None:
    text = CLOCKS.replace('consent_lifetime = "P13M"', 'consent_lifetime = "P5D"')
    error = failure(text)
    line = line_of(text, "consent_lifetime")
    assert f"bad.toml:{line}: controllers.acme-se.purposes.newsletter.consent_lifetime:" in str(
        error
    )
    assert "a consent lasting P5D can end before the P7D confirmation window" in str(error)
    # A month can be 28 days, so it does not safely outlast a 30-day window either.
    text = CLOCKS.replace('"P7D"', '"P30D"').replace('"P13M"', '"P1M"')
    assert "consent_lifetime" in str(failure(text))
    assert parse_policy(CLOCKS.replace('"P7D"', '"P27D"').replace('"P13M"', '"P1M"'))


def test_lifetimes_need_consent_and_double_opt_in() -> None:
    text = CLOCKS.replace("double_opt_in = true\n", "")
    error = failure(text)
    line = line_of(text, "confirmation_window")
    field = "controllers.acme-se.purposes.newsletter.confirmation_window"
    assert f"bad.toml:{line}: {field}: a confirmation window needs double_opt_in" in str(error)
    text = CLOCKS.replace(
        'legal_basis = "consent"\n', 'legal_basis = "legitimate_interest"\n'
    ).replace('double_opt_in = true\nconfirmation_window = "P7D"\n', "")
    error = failure(text)
    line = line_of(text, "consent_lifetime")
    field = "controllers.acme-se.purposes.newsletter.consent_lifetime"
    assert f'bad.toml:{line}: {field}: a consent lifetime needs legal_basis = "consent"' in str(
        error
    )


def test_promise_in_business_days_needs_a_jurisdiction() -> None:
    text = CLOCKS.replace('jurisdiction = "SE"\n', "")
    error = failure(text)
    line = line_of(text, "business_days")
    field = "controllers.acme-se.promises.data_return.business_days"
    assert f"bad.toml:{line}: {field}: counting days on a calendar needs" in str(error)
    text = text.replace('within = "P4W"', 'within = "P1M"\nend_of_day = true')
    line = line_of(text, "end_of_day")
    field = "controllers.acme-se.promises.requests.end_of_day"
    assert f"bad.toml:{line}: {field}: counting days on a calendar needs" in str(failure(text))
    text = CLOCKS.replace('jurisdiction = "SE"', 'jurisdiction = "XX"')
    assert "controllers.acme-se.jurisdiction: Input should be 'SE', 'NL'" in str(failure(text))


def test_promise_needs_exactly_one_measure() -> None:
    text = CLOCKS.replace("business_days = 3", 'business_days = 3\nwithin = "P3D"')
    error = failure(text)
    assert "controllers.acme-se.promises.data_return: give either business_days or within" in (
        str(error)
    )
    text = CLOCKS.replace('within = "P4W"', 'within = "P4W"\nend_of_day = "yes"')
    line = line_of(text, "end_of_day")
    field = "controllers.acme-se.promises.requests.end_of_day"
    assert f"bad.toml:{line}: {field}: Input should be a valid boolean" in str(failure(text))
    text = CLOCKS.replace("business_days = 3", "business_days = 0")
    line = line_of(text, "business_days = 0")
    field = "controllers.acme-se.promises.data_return.business_days"
    assert f"bad.toml:{line}: {field}: Input should be greater than 0" in str(failure(text))


# --- erasure --------------------------------------------------------------------------------


def test_erasure_applies_by_default_except_to_legal_obligations() -> None:
    acme = parse_policy(VALID).controllers["acme-se"]
    assert acme.purposes["newsletter"].erasure is None
    assert acme.purposes["newsletter"].erasable
    assert acme.purposes["analytics"].erasable
    assert not acme.purposes["invoices"].erasable


def test_erasure_setting_is_read_for_contract_and_legal_obligation() -> None:
    text = VALID.replace("destinations = []\n", 'destinations = []\nerasure = "applies"\n') + (
        "\n[controllers.acme-se.purposes.orders]\n"
        'legal_basis = "contract"\ncategories = ["essential"]\nchannels = ["email"]\n'
        'destinations = ["crm"]\nerasure = "exempt"\n'
    )
    acme = parse_policy(text).controllers["acme-se"]
    assert acme.purposes["orders"].erasure is Erasure.EXEMPT
    assert not acme.purposes["orders"].erasable
    assert acme.purposes["invoices"].erasure is Erasure.APPLIES
    assert acme.purposes["invoices"].erasable


@pytest.mark.parametrize(
    ("purpose", "after", "expected"),
    [
        ("newsletter", "double_opt_in = true\n", "erasure applies once consent is withdrawn"),
        ("analytics", 'description = "Page views."\n', "weighed per request"),
    ],
)
def test_an_exemption_on_consent_or_legitimate_interest_is_refused(
    purpose: str, after: str, expected: str
) -> None:
    text = VALID.replace(after, f'{after}erasure = "exempt"\n', 1)
    error = failure(text)
    assert len(error.problems) == 1, error.problems
    line = [n for n, row in enumerate(text.splitlines(), 1) if row == 'erasure = "exempt"']
    assert f"bad.toml:{line[0]}: controllers.acme-se.purposes.{purpose}.erasure:" in str(error)
    assert expected in str(error)
    assert "belongs to a purpose on that legal basis" in str(error)


def test_an_unknown_erasure_setting_is_refused() -> None:
    text = VALID.replace("destinations = []\n", 'destinations = []\nerasure = "never"\n')
    error = failure(text)
    line = line_of(text, 'erasure = "never"')
    assert f"bad.toml:{line}: controllers.acme-se.purposes.invoices.erasure:" in str(error)
    assert "'applies' or 'exempt'" in str(error)


def test_example_exemptions_are_contracts_and_legal_obligations(example: Policy) -> None:
    exempt = {
        (c.id, name): purpose.legal_basis
        for c in example.controllers.values()
        for name, purpose in c.purposes.items()
        if not purpose.erasable
    }
    assert set(exempt.values()) == {LegalBasis.CONTRACT, LegalBasis.LEGAL_OBLIGATION}
    assert ("sms-tech", "service-messages") in exempt
    assert ("hms-se", "order-handling") in exempt
    assert example.controllers["hms-se"].purposes["event-attendance"].erasable


def test_docs_give_each_example_purpose_its_erasure_setting(example: Policy) -> None:
    rows = DOCS.read_text(encoding="utf-8").splitlines()
    for controller in example.controllers.values():
        for name, purpose in controller.purposes.items():
            if purpose.legal_basis in (LegalBasis.CONTRACT, LegalBasis.LEGAL_OBLIGATION):
                setting = "exempt" if not purpose.erasable else "applies"
                row = f"| `{controller.id}` | `{name}` | {setting} |"
                assert any(line.startswith(row) for line in rows), row


def test_docs_show_the_error_for_an_exempt_consent_purpose() -> None:
    docs = DOCS.read_text(encoding="utf-8")
    block = re.search(r"```toml\n(.*?)```", docs, re.S)
    assert block
    assert not parse_policy(block.group(1)).controllers["acme-se"].purposes["orders"].erasable
    bad = block.group(1).replace(
        "double_opt_in = true\n", 'double_opt_in = true\nerasure = "exempt"\n'
    )
    assert failure(bad, "policy.toml").problems[0] in docs
