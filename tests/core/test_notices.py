"""Notice versions: a material change makes earlier consents to the purpose stop counting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.core.notices import NoticeVersion, reconsent_required, version_at
from streams.core.policy import parse_policy

from .test_policy import CLOCKS

NOTICES = parse_policy(CLOCKS).controllers["acme-se"].notices
CHANGE = datetime(2024, 5, 31, 22, tzinfo=UTC)  # 2024-06-01 in Sweden: newsletter changed
BEFORE, AFTER = CHANGE - timedelta(seconds=1), CHANGE + timedelta(days=1)

moments = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
)


def test_version_at() -> None:
    assert version_at(NOTICES, datetime(2020, 1, 1, tzinfo=UTC)) is None
    assert version_at(NOTICES, BEFORE) == NOTICES[0]
    assert version_at(NOTICES, CHANGE) == NOTICES[1]


def test_consent_under_the_old_version_stops_counting_from_the_change() -> None:
    assert not reconsent_required(NOTICES, "newsletter", BEFORE, version="2023-03-30")
    assert reconsent_required(NOTICES, "newsletter", CHANGE, version="2023-03-30")
    assert not reconsent_required(NOTICES, "newsletter", AFTER, version="2024-06-01")


def test_only_materially_changed_purposes_need_asking_again() -> None:
    assert not reconsent_required(NOTICES, "orders", AFTER, version="2023-03-30")


def test_consent_time_decides_when_the_version_is_not_named_or_unknown() -> None:
    old = datetime(2024, 1, 1, tzinfo=UTC)
    assert reconsent_required(NOTICES, "newsletter", AFTER, given_at=old)
    assert reconsent_required(NOTICES, "newsletter", AFTER, version="draft", given_at=old)
    assert not reconsent_required(NOTICES, "newsletter", AFTER, given_at=CHANGE)
    with pytest.raises(ValueError, match="unknown"):
        reconsent_required(NOTICES, "newsletter", AFTER, version="draft")


def test_no_versions_means_nothing_to_ask_again() -> None:
    assert not reconsent_required((), "newsletter", AFTER, given_at=BEFORE)


@given(given_at=moments, now=moments, later=st.timedeltas(timedelta(0), timedelta(days=3000)))
def test_once_required_always_required(given_at: datetime, now: datetime, later: timedelta) -> None:
    if reconsent_required(NOTICES, "newsletter", now, given_at=given_at):
        assert reconsent_required(NOTICES, "newsletter", now + later, given_at=given_at)


@given(given_at=moments, now=moments)
def test_required_exactly_when_given_before_a_material_change_in_force(
    given_at: datetime, now: datetime
) -> None:
    expected = given_at < CHANGE <= now
    assert reconsent_required(NOTICES, "newsletter", now, given_at=given_at) is expected
    named = version_at(NOTICES, given_at)
    if named is not None:
        by_name = reconsent_required(NOTICES, "newsletter", now, version=named.version)
        assert by_name is (named.effective < CHANGE <= now)


def test_effective_date_is_midnight_utc() -> None:
    notice = NoticeVersion.model_validate({"version": "v1", "effective": "2024-01-01"})
    assert notice.effective == datetime(2024, 1, 1, tzinfo=UTC)
