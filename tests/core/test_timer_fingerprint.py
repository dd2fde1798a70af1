"""What a timer index is built from: changes that move a clock change the fingerprint, words
and routing do not."""

from __future__ import annotations

import pytest

from streams.core.policy import parse_policy
from streams.core.timers import OFF, fingerprint
from tests.support.core import POLICY_TOML


def of(text: str, running: bool = True) -> str:
    return fingerprint(parse_policy(text), running)


def test_the_same_policy_gives_the_same_fingerprint() -> None:
    assert of(POLICY_TOML) == of(POLICY_TOML)
    assert len(of(POLICY_TOML)) == 32


def test_timers_off_index_nothing() -> None:
    assert of(POLICY_TOML, running=False) == OFF != of(POLICY_TOML)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('consent_lifetime = "PT3M"', 'consent_lifetime = "PT30M"'),  # a lifetime
        ('renewal_reminder = "PT1M"', 'renewal_reminder = "PT2M"'),  # a reminder
        ('period = "PT5M"', 'period = "PT6M"'),  # a retention rule
        ('confirmation_window = "PT2M"', 'confirmation_window = "PT3M"'),
        (
            '[controllers.acme]\nname = "Acme AB"',
            '[controllers.acme]\nname = "Acme AB"\njurisdiction = "SE"',
        ),  # retention ends counted in another zone
        ('dnt = ["tracking"]', "dnt = []"),  # what a signal denies decides what is in force
        (
            '[controllers.acme]\nname = "Acme AB"\n',
            '[controllers.acme]\nname = "Acme AB"\n\n[[controllers.acme.notices]]\n'
            'version = "v2"\neffective = 2027-01-01\nmaterial = ["offers"]\n',
        ),  # a notice version
    ],
)
def test_what_moves_a_clock_changes_it(old: str, new: str) -> None:
    assert old in POLICY_TOML
    assert of(POLICY_TOML.replace(old, new, 1)) != of(POLICY_TOML)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('name = "Acme AB"', 'name = "Acme Group AB"'),
        ('destinations = ["email", "crm"]', 'destinations = ["email"]'),
        (
            "[controllers.acme.purposes.offers]\n",
            '[controllers.acme.purposes.offers]\ndescription = "Offers by email"\n'
            'title = "Offers"\n',
        ),
    ],
)
def test_words_and_routing_do_not(old: str, new: str) -> None:
    assert old in POLICY_TOML
    assert of(POLICY_TOML.replace(old, new, 1)) == of(POLICY_TOML)
