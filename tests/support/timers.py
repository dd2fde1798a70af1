"""A policy whose clocks run out within a test, and the settings of a worker that fires them."""

from __future__ import annotations

from pathlib import Path


def clocked_policy(lifetime: int, window: int, reminder: int | None = None) -> str:
    """Controller ``clocked``: a consent to ``offers`` lasts ``lifetime`` seconds (a reminder
    ``reminder`` seconds before it ends, if given); ``newsletter`` is double opt-in, to be
    confirmed within ``window`` seconds."""
    remind = f'\nrenewal_reminder = "PT{reminder}S"' if reminder is not None else ""
    return f"""
[controllers.clocked]
name = "Clocked AB"

[controllers.clocked.purposes.offers]
legal_basis = "consent"
categories = ["direct_marketing"]
channels = ["email"]
destinations = ["email"]
consent_lifetime = "PT{lifetime}S"{remind}

[controllers.clocked.purposes.newsletter]
legal_basis = "consent"
categories = ["direct_marketing"]
channels = ["email"]
destinations = ["email"]
double_opt_in = true
confirmation_window = "PT{window}S"
consent_lifetime = "PT1H"
"""


def timers_on(directory: Path, policy: str, interval: float) -> dict[str, str]:
    """Worker settings: ``policy`` (written into ``directory``), timers on, due clocks looked
    for every ``interval`` seconds."""
    path = directory / "policy.toml"
    path.write_text(policy)
    return {
        "CONSENT_POLICY_FILE": str(path),
        "CONSENT_TIMERS": "true",
        "CONSENT_TIMER_INTERVAL": str(interval),
    }
