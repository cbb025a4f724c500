"""The compact JSON text the service stores and streams.

An event's data is stored as its stream sends it (service.db's JSON columns, service.events): a replay
passes the stored text on as it is, byte for byte what a live client got, so both write it here.
"""

from __future__ import annotations

import json
from typing import Any

# Built once: json.dumps with any argument but the object builds a new encoder per call, and a submission
# encodes three values this way (bench request-cost).
_COMPACT = json.JSONEncoder(separators=(",", ":"))


def compact(value: Any) -> str:
    """`value` as json.dumps(value, separators=(",", ":")) writes it."""
    return _COMPACT.encode(value)
