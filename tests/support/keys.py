"""API keys of every scope and the token secret the HTTP tests configure their workers with."""

from __future__ import annotations

from streams.security.apikeys import hash_key
from streams.web.demo_credentials import DEMO_API_KEY, DEMO_RECEIPT_KEY

READ_KEY = "cs_test-read-0123456789"
WRITE_KEY = "cs_test-write-0123456789"
TOKENS_KEY = "cs_test-tokens-0123456789"
EXPORT_KEY = "cs_test-export-0123456789"
ALL_KEY = "cs_test-all-0123456789"
SECRET = "test-secret-" + "0" * 32

API_ENV = {
    "CONSENT_API_KEYS": ",".join(
        f"{name}:{scopes}:{hash_key(key)}"
        for name, scopes, key in (
            ("reader", "read", READ_KEY),
            ("writer", "write", WRITE_KEY),
            ("mailer", "tokens", TOKENS_KEY),
            ("archivist", "export", EXPORT_KEY),
            ("admin", "read+write+tokens+export", ALL_KEY),
            ("demo", "read+write+tokens+export", DEMO_API_KEY),  # docs/api.md examples
        )
    ),
    "CONSENT_TOKEN_SECRET": SECRET,
    "CONSENT_RECEIPT_KEYS": DEMO_RECEIPT_KEY,
    # Links point at the worker's own http:// address in tests.
    "CONSENT_ALLOW_INSECURE_LINKS": "1",
}
