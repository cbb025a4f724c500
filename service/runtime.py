"""What a process of the service runs on, made once from its Settings and passed down: the database,
the broker, the event channel, the artifact store and the rate limits. No module makes its own."""

from __future__ import annotations

from dataclasses import dataclass

from service.artifacts import ArtifactStore, store_for
from service.db import Database
from service.events import EventPublisher
from service.queue import TaskQueue
from service.ratelimit import RateLimiter
from service.settings import Settings
from service.slots import Slots


@dataclass
class Runtime:
    settings: Settings
    db: Database
    events: EventPublisher
    tasks: TaskQueue
    store: ArtifactStore
    limiter: RateLimiter
    slots: Slots

    @classmethod
    def start(cls, settings: Settings, db_session_name: str | None = None) -> Runtime:
        """Connections are opened lazily, on first use: starting one costs no round trip. Its database
        sessions carry `db_session_name` (a worker's: service.fencing.session_name)."""
        events = EventPublisher.from_settings(settings)
        return cls(
            settings=settings,
            db=Database.from_settings(settings, db_session_name),
            events=events,
            tasks=TaskQueue(settings, events),
            store=store_for(settings),
            limiter=RateLimiter(settings),
            slots=Slots(settings),
        )

    def close(self) -> None:
        self.db.dispose()
        self.events.close()
        self.tasks.close()
        self.slots.close()
        self.limiter.close()
