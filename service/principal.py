"""Who is asking: the owner behind an API key, and whether it may see everything."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from service.db import Executor


@dataclass(frozen=True)
class Principal:
    owner_id: str
    key_id: str
    is_admin: bool = False

    def admit(self, session: Executor) -> Principal:
        """Already checked: itself."""
        return self


class Admission(Protocol):
    """Who a request acts for, checked in the session that does its work: a write that checks its
    caller inside its own transaction holds one pooled connection, not a read session and then a
    transaction (the key's read is one more statement on it). A checked Principal is one already."""

    def admit(self, session: Executor) -> Principal: ...
