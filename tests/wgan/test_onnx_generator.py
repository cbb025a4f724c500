"""Generators written as ONNX graphs: every generator the networks build, valid ONNX, the same function as
the module on onnxruntime, weights named as its state_dict, and a clear refusal for a layer it cannot write."""

import onnx
import pytest
import torch
from torch import nn

from tests.wgan.helpers import TINY_DIGITS, TINY_POINTS, tiny_spec
from wgan.config import resolve
from wgan.networks import build_generator, model_data_shape
from wgan.onnx_generator import ONNX_OPSET, OnnxForward, UnsupportedLayer, generator_graph

# Every layer kind the generators use: linear and transposed-convolution stacks, with and without batch
# norm, tanh on images, the 4→7 step of 28 px images, and an MLP that draws images.
CASES = {
    "mlp points": (TINY_POINTS, {}),
    "mlp points, batch norm": (TINY_POINTS, {"model": {"generator_batch_norm": True}}),
    "mlp images": (TINY_DIGITS, {"model": {"arch": "mlp", "hidden_dim": 16}}),
    "dcgan 16 px, batch norm": (TINY_DIGITS, {"model": {"generator_batch_norm": True}}),
    "dcgan 28 px, no batch norm": (TINY_DIGITS, {"model": {"image_size": 28, "generator_batch_norm": False}}),
}


def generator(case: str) -> tuple[nn.Module, int, tuple[int, ...]]:
    base, changes = CASES[case]
    spec = tiny_spec(base, **changes)
    is_points = spec.dataset.name == "8gaussians"
    shape = (2,) if is_points else (1, 8, 8)
    resolved = resolve(spec, "points" if is_points else "images", shape, dataset_label="test")
    data_shape = model_data_shape(resolved.model)
    built = build_generator(resolved.model, data_shape)
    torch.manual_seed(0)
    with torch.no_grad():
        for module in built.modules():
            # Statistics and affine weights far from their defaults, so a batch norm left out would show.
            if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
                module.running_mean.normal_()
                module.running_var.uniform_(0.5, 2.0)
                module.weight.normal_()
                module.bias.normal_()
    assert resolved.model.latent_dim is not None
    return built.eval().requires_grad_(False), resolved.model.latent_dim, data_shape


@pytest.mark.parametrize("case", CASES)
def test_the_graph_is_valid_onnx_and_computes_the_generator(case):
    module, latent_dim, shape = generator(case)
    graph = generator_graph(module, latent_dim, shape)
    onnx.checker.check_model(graph, full_check=True)
    assert graph.opset_import[0].version == ONNX_OPSET
    weights = {name for name in module.state_dict() if not name.endswith("num_batches_tracked")}
    # Named as the state_dict (and the safetensors export) names them; beside them, the reshapes' constants.
    assert {tensor.name for tensor in graph.graph.initializer} - {"latent_axes", "out_shape"} == weights
    forward = OnnxForward(graph, threads=1)
    for rows in (1, 64):  # the batch axis is dynamic
        z = torch.randn(rows, latent_dim, generator=torch.Generator().manual_seed(rows))
        with torch.inference_mode():
            expected = module(z)
        got = forward(z)
        assert got.shape == expected.shape == (rows, *shape)
        # The same function, summed in another order: rounding apart, not a different model.
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_a_layer_without_an_onnx_operator_is_refused_by_name():
    module, latent_dim, shape = generator("mlp points")
    module.net[1] = nn.LeakyReLU(0.2)
    with pytest.raises(UnsupportedLayer, match=r"net\.1 \(LeakyReLU\)"):
        generator_graph(module, latent_dim, shape)
    with pytest.raises(UnsupportedLayer, match="Sequential"):
        generator_graph(nn.Sequential(nn.Linear(latent_dim, 2)), latent_dim, shape)


def test_the_same_generator_always_writes_the_same_bytes():
    # The export endpoint's ETag promises byte-identical files per checkpoint.
    module, latent_dim, shape = generator("dcgan 16 px, batch norm")
    first = generator_graph(module, latent_dim, shape).SerializeToString()
    assert generator_graph(module, latent_dim, shape).SerializeToString() == first
