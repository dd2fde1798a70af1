"""Credentials for ``make run`` and the documentation's examples. Demo only: never deploy these.

The demo worker is started with :func:`demo_environment`, so the ``curl`` examples in
docs/api.md work as written against it.
"""

from __future__ import annotations

from streams.security.apikeys import hash_key

DEMO_API_KEY = "demo-key-not-for-production"
DEMO_TOKEN_SECRET = "demo-token-secret-not-for-production-0000"
#: An Ed25519 seed (base64url) signing the demo's consent receipts.
DEMO_RECEIPT_KEY = "ZGVtby1yZWNlaXB0LWtleS1ub3QtZm9yLXByb2R1Y3Q"


def demo_environment() -> dict[str, str]:
    """Environment variables that give the demo worker one all-scope key, a link secret,
    a receipt signing key and permission for http:// links."""
    return {
        "CONSENT_API_KEYS": f"demo:read+write+tokens+export:{hash_key(DEMO_API_KEY)}",
        "CONSENT_TOKEN_SECRET": DEMO_TOKEN_SECRET,
        "CONSENT_RECEIPT_KEYS": DEMO_RECEIPT_KEY,
        # The demo's links point at http://127.0.0.1: fine on one's own machine only.
        "CONSENT_ALLOW_INSECURE_LINKS": "1",
    }
