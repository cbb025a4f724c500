"""Generators loaded from checkpoints, kept in a bounded LRU so each is loaded once."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch

from app.compute_gate import ComputeGate
from app.sample_batches import SampleBatches
from service.artifacts import ArtifactStore, dataset_key
from service.repositories.checkpoints import CheckpointRecord
from wgan.assemble import open_data
from wgan.checkpoint import VerifiedFiles
from wgan.render import reference_layer
from wgan.sampling import Sampler, SamplingRuntime, load_sampler

REFERENCE_POINTS = 4000
REFERENCE_SEED = 0


@dataclass
class Loaded:
    sampler: Sampler
    # For 2-D data: real points and their pre-drawn density, the backdrop of scatter plots.
    reference: np.ndarray | None = None
    backdrop: np.ndarray | None = None


class SamplerCache:
    """The API's generators: loaded once each for `runtime`, and run through `gate`, a few passes at a time,
    sample requests by way of `batches` (sharing passes when `share_passes`)."""

    def __init__(
        self,
        size: int,
        store: ArtifactStore,
        device: torch.device,
        gate: ComputeGate,
        share_passes: bool = True,
        runtime: SamplingRuntime = "torch",
        threads: int = 1,
    ) -> None:
        self.size = size
        self.store = store
        self.device = device
        # What runs the passes (part of every sample's ETag: the runtimes agree to rounding, not bit for
        # bit), on how many threads each.
        self.runtime = runtime
        self.threads = threads
        self.gate = gate
        self.batches = SampleBatches(gate, share_passes)
        self._entries: OrderedDict[str, Loaded] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}
        self.hits = 0
        self.misses = 0
        # A generator evicted and loaded again is not re-hashed when its file has not changed.
        self.verified = VerifiedFiles()

    def loaded(self, checkpoint: CheckpointRecord) -> Loaded | None:
        """The checkpoint's generator if it is loaded already (counted as a hit), else None: no I/O."""
        with self._lock:
            return self._hit(checkpoint)

    def get(self, checkpoint: CheckpointRecord) -> Loaded:
        with self._lock:
            entry = self._hit(checkpoint)
            if entry is not None:
                return entry
            key_lock = self._loading.setdefault(checkpoint.id, threading.Lock())
        # One loader per checkpoint; concurrent requests for it wait instead of loading it again.
        with key_lock:
            with self._lock:
                entry = self._entries.get(checkpoint.id)
            if entry is None:
                entry = self._load(checkpoint)
                with self._lock:
                    self.misses += 1
                    self._entries[checkpoint.id] = entry
                    while len(self._entries) > self.size:
                        self._entries.popitem(last=False)
        with self._lock:
            self._loading.pop(checkpoint.id, None)
        return entry

    def _hit(self, checkpoint: CheckpointRecord) -> Loaded | None:
        entry = self._entries.get(checkpoint.id)
        if entry is not None:
            self._entries.move_to_end(checkpoint.id)
            self.hits += 1
        return entry

    def _load(self, checkpoint: CheckpointRecord) -> Loaded:
        manifest = self.store.fetch_checkpoint(checkpoint.artifact_key)
        sampler = load_sampler(manifest, self.device, self.verified, self.runtime, self.threads)
        if sampler.is_images:
            return Loaded(sampler)
        uploaded = None
        if sampler.spec.dataset.id is not None:
            with np.load(self.store.fetch(dataset_key(sampler.spec.dataset.id)), allow_pickle=False) as archive:
                uploaded = archive["x"]
        source = open_data(sampler.spec, torch.device("cpu"), uploaded)
        reference = source.reference(REFERENCE_POINTS, REFERENCE_SEED).numpy()
        return Loaded(sampler, reference, reference_layer(reference))

    def __len__(self) -> int:
        return len(self._entries)
