"""Owners: the lock that serialises what one owner does at once."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.models import Owner


def lock(session: Session, owner_id: str) -> None:
    """Hold the owner's row until commit (Postgres), so two claims or two uploads of one owner cannot both
    pass a capacity or quota check; SQLite runs one writer at a time anyway."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(Owner.id).where(Owner.id == owner_id).with_for_update())
