"""Who is asking: the owner behind an API key, and whether it may see everything."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    owner_id: str
    key_id: str
    is_admin: bool = False
