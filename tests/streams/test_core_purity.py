"""The decision engine stays pure: importing it loads no Faust, Kafka or web machinery."""

from __future__ import annotations

import subprocess
import sys


def test_core_imports_no_streaming_modules() -> None:
    probe = (
        "import sys, streams.core.engine, streams.core.decisions, streams.core.policy;"
        "print(','.join(sorted(m for m in sys.modules"
        " if m.split('.')[0] in {'faust', 'mode', 'aiokafka', 'kafka', 'aiohttp'})))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == ""
