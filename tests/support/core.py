"""The pure-core tests' compact policy (every legal basis and category), clock and events."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.events import ConsentEvent

POLICY_TOML = """
[signals]
gpc = ["tracking", "sale_or_sharing"]
dnt = ["tracking"]

[controllers.acme]
name = "Acme AB"

[controllers.acme.purposes.newsletter]
legal_basis = "consent"
categories = ["direct_marketing"]
channels = ["email", "sms"]
destinations = ["email", "crm"]
double_opt_in = true
confirmation_window = "PT2M"
consent_lifetime = "PT4M"

[controllers.acme.purposes.offers]
legal_basis = "consent"
categories = ["direct_marketing"]
channels = ["email", "sms"]
destinations = ["email", "crm"]
consent_lifetime = "PT3M"
renewal_reminder = "PT1M"

[controllers.acme.purposes.customer-marketing]
legal_basis = "legitimate_interest"
categories = ["direct_marketing"]
channels = ["email", "post"]
destinations = ["email", "crm"]

[controllers.acme.purposes.personalisation]
legal_basis = "legitimate_interest"
categories = ["profiling"]
channels = ["web"]
destinations = ["analytics"]

[controllers.acme.purposes.analytics]
legal_basis = "consent"
categories = ["tracking"]
channels = ["web"]
destinations = ["analytics"]

[controllers.acme.purposes.orders]
legal_basis = "contract"
categories = ["essential"]
channels = ["email", "post"]
destinations = ["crm"]
erasure = "exempt"

[[controllers.acme.purposes.orders.retention]]
period = "PT5M"
anchor = "last_contact"
action = "erase"

[controllers.acme.purposes.bookkeeping]
legal_basis = "legal_obligation"
categories = ["essential"]
channels = ["post"]
destinations = ["crm"]

[controllers.beta]
name = "Beta Ltd"
signals = { dnt = [] }

[controllers.beta.purposes.newsletter]
legal_basis = "consent"
categories = ["direct_marketing"]
channels = ["email"]
destinations = ["email"]

[controllers.beta.purposes.analytics]
legal_basis = "consent"
categories = ["tracking"]
channels = ["web"]
destinations = ["analytics"]
"""

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)

MakeEvent = Callable[..., ConsentEvent]


def make_event(type: str, minute: int = 0, **fields: Any) -> ConsentEvent:
    """An event ``minute`` minutes after T0; ``event_id`` defaults to something unique."""
    data: dict[str, Any] = {
        "event_id": fields.pop("event_id", f"{type}-{minute}-{sorted(fields.items())}"),
        "type": type,
        "occurred_at": T0 + timedelta(minutes=minute),
        "controller": fields.pop("controller", "acme"),
        "subject_id": fields.pop("subject_id", "subject-1"),
        **fields,
    }
    return ConsentEvent.model_validate(data, context={"now": NOW})
