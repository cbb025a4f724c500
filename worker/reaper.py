"""The reaper thread every worker runs: it hands on jobs whose worker vanished, re-sends tasks the
broker lost and dispatches waiting jobs (service.lifecycle.reap), and leaves a sign of life."""

from __future__ import annotations

import logging
import threading

from service import lifecycle
from service.runtime import Runtime
from worker.alive import mark_alive

log = logging.getLogger(__name__)


class Reaper(threading.Thread):
    def __init__(self, rt: Runtime) -> None:
        super().__init__(name="reaper", daemon=True)
        self.rt = rt
        self._done = threading.Event()

    def run(self) -> None:
        mark_alive(self.rt.settings.worker_alive_file)
        while not self._done.wait(self.rt.settings.reaper_seconds):
            try:
                lifecycle.reap(self.rt)
            except Exception:
                log.exception("reaper pass failed")
            else:
                mark_alive(self.rt.settings.worker_alive_file)

    def stop(self) -> None:
        self._done.set()
