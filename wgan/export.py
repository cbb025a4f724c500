"""A trained generator to take away: as ONNX (any runtime, a dynamic batch axis), as safetensors (the
generator's weights alone), and a model card saying how to sample from it exactly as the service does."""

from __future__ import annotations

import json
from typing import Any

import safetensors.torch

from wgan.networks import model_data_shape
from wgan.onnx_generator import INPUT, ONNX_OPSET, OUTPUT, generator_graph
from wgan.sampling import SAMPLE_CHUNK, Sampler


def onnx_bytes(sampler: Sampler) -> bytes:
    """The sampling generator (its moving average, when the job keeps one) as an ONNX model:
    input `z` float32 [batch, latent_dim], output `x` float32 [batch, *shape] in [-1, 1]. On the CPU the
    service samples with this graph (WGAN_SAMPLE_RUNTIME onnxruntime)."""
    assert sampler.spec.model.latent_dim is not None
    shape = model_data_shape(sampler.spec.model)
    return generator_graph(sampler.generator, sampler.spec.model.latent_dim, shape).SerializeToString()


def safetensors_bytes(sampler: Sampler) -> bytes:
    """The sampling generator's weights alone, keyed as wgan.networks.build_generator names them, with
    the job's spec in the metadata (the file rebuilds the generator with nothing else)."""
    tensors = {name: value.detach().cpu().contiguous() for name, value in sampler.generator.state_dict().items()}
    return safetensors.torch.save(tensors, metadata={"spec": sampler.spec.model_dump_json()})


def model_card(sampler: Sampler) -> dict[str, Any]:
    """What a user of the exported generator needs to know, as data."""
    spec = sampler.spec
    shape = list(model_data_shape(spec.model))
    images = sampler.is_images
    return {
        "architecture": spec.model.arch,
        "trained_steps": sampler.step,
        "loss": spec.loss.kind,
        "weights": "the moving average of the generator's weights" if spec.generator_ema else "the generator's weights",
        "latent": {
            "dimension": spec.model.latent_dim,
            "distribution": "standard normal, float32",
            "service_seeding": "row i of seed s is row i of numpy.random.default_rng(numpy.random.SeedSequence("
            "[0, s] if s >= 0 else [1, -s])).standard_normal((n, dimension), dtype=numpy.float32)",
        },
        "output": {
            "shape": shape,
            "layout": "N×C×H×W, channels first" if images else "N×2 points",
            "range": [-1.0, 1.0] if images else None,
            "meaning": "pixel values in [-1, 1]: (x + 1) / 2 · 255 gives 8-bit pixels"
            if images
            else "points in the coordinates of the data the job trained on",
        },
        "onnx": {"input": INPUT, "output": OUTPUT, "opset": ONNX_OPSET, "batch_axis": "dynamic"},
        "service_sampling": {
            "runtime": sampler.runtime,
            "chunk_rows": SAMPLE_CHUNK,
            "how": f"latents in chunks of {SAMPLE_CHUNK} rows, the last padded with zero rows, each chunk "
            + (
                "through this ONNX graph on onnxruntime's CPU provider with one intra-op thread: the same call "
                "gives the service's samples bit for bit on the same onnxruntime version and CPU"
                if sampler.runtime == "onnxruntime"
                else "through the generator in torch: this ONNX graph gives the same samples to rounding"
            ),
        },
        "batch_norm": "in eval mode (running statistics): each sample depends on its own latent only",
    }


def card_json(card: dict[str, Any]) -> bytes:
    return json.dumps(card, indent=1, sort_keys=True).encode()
