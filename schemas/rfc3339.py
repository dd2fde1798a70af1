"""The one date-time form the contract accepts: RFC 3339 with an offset, a real calendar date.

The same pattern validates the models and is published in the JSON Schema, so both agree even
with validators that ignore ``format``. ASCII classes only: ``\\d`` means more in some dialects.
"""

from __future__ import annotations

import re

_YEAR = "(?:[0-9]{3}[1-9]|[0-9]{2}[1-9][0-9]|[0-9][1-9][0-9]{2}|[1-9][0-9]{3})"  # 0001-9999
_LEAP_YEAR = "(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)"
_MONTH_DAY = (
    "(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    "|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
    "|02-(?:0[1-9]|1[0-9]|2[0-8]))"
)
_DATE = f"(?:{_YEAR}-{_MONTH_DAY}|{_LEAP_YEAR}-02-29)"
_TIME = "(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:[.][0-9]+)?"
_OFFSET = "(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"

DATE_TIME = re.compile(f"^{_DATE}[Tt]{_TIME}{_OFFSET}$")
DATE_TIME_MESSAGE = (
    "Input should be an RFC 3339 date-time with a timezone offset, e.g. 2026-11-22T10:00:00+01:00"
)
