"""How many examples a property test draws: every one in `make test`, a few in `make quick`.

`make quick` sets CONSENT_QUICK=1; the assertions are the same, only the search is shorter.
"""

from __future__ import annotations

import os

from hypothesis import settings

QUICK = os.environ.get("CONSENT_QUICK") == "1"
QUICK_EXAMPLES = 25

settings.register_profile("quick", max_examples=QUICK_EXAMPLES)
if QUICK:
    settings.load_profile("quick")  # for the tests that keep Hypothesis' default count


def examples(full: int) -> int:
    """``full`` examples, or a few of them in the quick loop."""
    return min(full, QUICK_EXAMPLES) if QUICK else full
