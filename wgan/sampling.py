"""Deterministic sampling from a checkpoint's generator."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from wgan.checkpoint import (
    GENERATOR,
    GENERATOR_EMA,
    CheckpointError,
    VerifiedFiles,
    load_checkpoint,
    read_manifest,
)
from wgan.config import TrainSpec
from wgan.networks import build_generator, model_data_shape

# The generator always runs on batches of exactly this many rows (the last one padded), so a
# sample's value never depends on how many were asked for: GEMM kernels pick their blocking
# by the number of rows, and that changes the last bits of the result.
SAMPLE_CHUNK = 64

# What runs a sampler's passes: torch itself, or on the CPU the generator's ONNX graph on onnxruntime
# (wgan.onnx_generator). The two agree to rounding, not bit for bit: a request always gets the bits of
# the runtime its sampler was loaded with.
SamplingRuntime = Literal["torch", "onnxruntime"]
Forward = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class Sampler:
    """A generator ready to sample from: eval mode, on its device, gradients off; its passes run by
    `forward` (the generator itself, or its ONNX graph on onnxruntime: `runtime`)."""

    generator: nn.Module
    spec: TrainSpec
    step: int
    device: torch.device
    runtime: SamplingRuntime
    forward: Forward

    @property
    def is_images(self) -> bool:
        return self.spec.model.image_size is not None


def load_sampler(
    manifest: Path,
    device: torch.device | None = None,
    verified: VerifiedFiles | None = None,
    runtime: SamplingRuntime = "torch",
    threads: int = 1,
) -> Sampler:
    """Load only the generator that samples (its moving average, if kept), not the critic or optimizer state.
    With runtime onnxruntime its passes run on `threads` threads of onnxruntime's (the CPU only)."""
    device = device or torch.device("cpu")
    if runtime == "onnxruntime" and device.type != "cpu":
        raise ValueError(f"onnxruntime samples on the CPU here, not on {device.type}")
    prefix = GENERATOR_EMA if read_manifest(manifest)["spec"].get("generator_ema") else GENERATOR
    checkpoint = load_checkpoint(manifest, prefixes=(prefix,), verified=verified)
    shape = model_data_shape(checkpoint.spec.model)
    generator = build_generator(checkpoint.spec.model, shape)
    try:
        generator.load_state_dict(checkpoint.part(prefix))
    except RuntimeError as exc:
        raise CheckpointError(f"the checkpoint's generator does not fit its spec: {exc}") from exc
    generator.to(device).eval().requires_grad_(False)
    if runtime == "onnxruntime":
        # Imported here: `import onnx` takes about a second, which the workers, the CLI and the GPU checks,
        # which sample in torch, need not pay (the API has it imported by its export route at start-up).
        from wgan.onnx_generator import OnnxForward, generator_graph

        assert checkpoint.spec.model.latent_dim is not None
        forward = OnnxForward(generator_graph(generator, checkpoint.spec.model.latent_dim, shape), threads)
        return Sampler(generator, checkpoint.spec, checkpoint.step, device, runtime, forward)
    if checkpoint.spec.model.image_size is not None:
        # A DCGAN's transposed convolutions run 1.1-1.2x faster in NHWC than in NCHW on the CPU (oneDNN),
        # measured at 16, 32 and 64 px on one and two threads. The samples agree with NCHW's to rounding,
        # and a request still gets the same bytes every time: it always runs on this layout.
        # Module.to takes memory_format (torch docs) though its typed overloads omit it.
        generator.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return Sampler(generator, checkpoint.spec, checkpoint.step, device, "torch", generator)


def latent(seed: int, n: int, dim: int) -> np.ndarray:
    """The latent codes for `seed`: row i is the same whatever `n` is (numpy fills in order)."""
    # Any integer is a valid seed: negative ones get their own entropy pool.
    entropy = [0, seed] if seed >= 0 else [1, -seed]
    return np.random.default_rng(np.random.SeedSequence(entropy)).standard_normal((n, dim), dtype=np.float32)


class SamplingStopped(RuntimeError):
    """`should_stop` said so between two chunks (the caller's deadline, or its client gone)."""


def generate(generator: Forward, z: torch.Tensor, should_stop: Callable[[], bool] | None = None) -> torch.Tensor:
    """Run `generator` (a module, or a sampler's forward) on `z` in fixed-size chunks; returns float32 on the
    CPU. `should_stop` is asked before each chunk: a long request can be abandoned between chunks, never in
    the middle of one."""
    outputs = []
    for start in range(0, z.shape[0], SAMPLE_CHUNK):
        if should_stop is not None and should_stop():
            raise SamplingStopped(f"stopped after {start} of {z.shape[0]} samples")
        chunk = z[start : start + SAMPLE_CHUNK]
        rows = chunk.shape[0]
        if rows < SAMPLE_CHUNK:
            chunk = torch.cat([chunk, chunk.new_zeros(SAMPLE_CHUNK - rows, chunk.shape[1])])
        outputs.append(generator(chunk)[:rows].float().cpu())
    # Plain NCHW rows for the callers, whatever layout the generator computes in.
    return torch.cat(outputs).contiguous()


def sample(sampler: Sampler, n: int, seed: int, should_stop: Callable[[], bool] | None = None) -> np.ndarray:
    """`n` samples for `seed`: (n, 2) points or (n, C, H, W) images in [−1, 1], float32."""
    assert sampler.spec.model.latent_dim is not None
    return generate_together(sampler, [latent(seed, n, sampler.spec.model.latent_dim)], should_stop)[0]


def last_chunk_start(rows: int) -> int:
    """Where the last chunk of a pass over `rows` latents (rows ≥ 1) begins: the rows before it are whole
    chunks, computed the same alone or before or after it."""
    return (rows - 1) // SAMPLE_CHUNK * SAMPLE_CHUNK


def padding(rows: int) -> int:
    """The rows of padding in the last chunk of a pass over `rows` latents: room that other latents fill for
    free (generate_together)."""
    return -rows % SAMPLE_CHUNK


def generate_together(
    sampler: Sampler, latents: Sequence[np.ndarray], should_stop: Callable[[], bool] | None = None
) -> list[np.ndarray]:
    """The samples of each batch of latents, from one pass over all their rows end to end.

    Each batch gets the bits it would get alone: the first starts at row 0 as it would alone, and a row's
    output does not depend on the rows beside it in its chunk (eval mode: batch norm uses its running
    statistics; checked for every row offset in tests/wgan/test_sampling.py). Those that fit in the
    first's padding (`padding`) cost no extra chunk.
    """
    z = torch.from_numpy(np.concatenate(latents)).to(sampler.device)
    with torch.inference_mode():
        rows = generate(sampler.forward, z, should_stop).numpy()
    return np.split(rows, np.cumsum([len(batch) for batch in latents])[:-1])


WalkPath = Literal["slerp", "lerp"]


def walk_latents(seed_a: int, seed_b: int, frames: int, dim: int, path: WalkPath = "slerp") -> np.ndarray:
    """`frames` latents from seed A's first latent to seed B's, inclusive. slerp follows the great circle
    (White 2016, "Sampling generative networks"): a straight line through a Gaussian latent space passes
    near its centre, where no training latent ever was; lerp is that straight line."""
    a, b = latent(seed_a, 1, dim)[0].astype(np.float64), latent(seed_b, 1, dim)[0].astype(np.float64)
    t = np.linspace(0.0, 1.0, frames)[:, None]
    cosine = float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))
    omega = float(np.arccos(np.clip(cosine, -1.0, 1.0)))
    if path == "lerp" or np.sin(omega) < 1e-6:
        walk = (1 - t) * a + t * b
    else:
        walk = (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)
    return walk.astype(np.float32)


def walk(sampler: Sampler, seed_a: int, seed_b: int, frames: int, path: WalkPath = "slerp") -> np.ndarray:
    """The generator along a latent walk: (frames, 2) points or (frames, C, H, W) images in [−1, 1]."""
    assert sampler.spec.model.latent_dim is not None
    return generate_together(sampler, [walk_latents(seed_a, seed_b, frames, sampler.spec.model.latent_dim, path)])[0]
