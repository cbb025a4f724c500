"""A generator as an ONNX graph, written layer by layer from its modules, and a forward pass over it on
onnxruntime.

The graph is the one the export endpoint hands out and the one the API samples with on the CPU, so a user
who runs the exported file on onnxruntime gets the service's own function. It is written from the
networks' layers rather than traced by torch.onnx: the TorchScript exporter is deprecated in torch 2.13
and the dynamo one needs onnxscript; a DCGAN's trace took 0.8 s, where writing its graph takes
milliseconds, which a checkpoint's first sample request would otherwise wait for.

On the CPU, onnxruntime ran a 32 px DCGAN generator (width 64, 64 rows) in 30.5 ms where torch took 41.5
in NHWC and 34.5 with its batch norms folded (one thread, AMD EPYC): its graph optimiser folds batch norm
into the transposed convolutions and fuses the activations. And one `run` releases the GIL for the whole
pass, where torch takes it back between operators.
"""

from __future__ import annotations

import onnx
import onnxruntime
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from wgan.networks import DCGANGenerator, MLPGenerator

ONNX_OPSET = 17
# The IR version that opset 17 came with (onnx 1.12): runtimes from onnxruntime 1.12 on read the file,
# where a newer onnx package would stamp its own, newer one.
ONNX_IR_VERSION = 8
INPUT, OUTPUT = "z", "x"
BATCH = "batch"


class UnsupportedLayer(ValueError):
    """A generator with a layer this writer does not know: it has no ONNX graph (sample it in torch)."""


def generator_graph(generator: nn.Module, latent_dim: int, out_shape: tuple[int, ...]) -> onnx.ModelProto:
    """`generator` (eval mode: batch norm on its running statistics) as an ONNX model: input `z` float32
    [batch, latent_dim], output `x` float32 [batch, *out_shape]. Initializers are named as its state_dict."""
    if not isinstance(generator, MLPGenerator | DCGANGenerator):
        raise UnsupportedLayer(f"no ONNX graph for a {type(generator).__name__}")
    writer = _Writer()
    current = INPUT
    if isinstance(generator, DCGANGenerator):
        # z as a 1×1 image of latent_dim channels (DCGANGenerator.forward).
        current = writer.node("Unsqueeze", [current, writer.constant("latent_axes", [2, 3])], "as_image")
    for index, layer in enumerate(generator.net):
        current = writer.layer(f"net.{index}", layer, current)
    if isinstance(generator, MLPGenerator):
        current = writer.node("Reshape", [current, writer.constant("out_shape", [-1, *out_shape])], "shaped")
    writer.nodes.append(helper.make_node("Identity", [current], [OUTPUT], name="output"))
    graph = helper.make_graph(
        writer.nodes,
        "generator",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, [BATCH, latent_dim])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, [BATCH, *out_shape])],
        writer.initializers,
    )
    return helper.make_model(
        graph,
        producer_name="wgan-service",
        opset_imports=[helper.make_opsetid("", ONNX_OPSET)],
        ir_version=ONNX_IR_VERSION,
    )


class _Writer:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def node(self, op: str, inputs: list[str], output: str, **attributes: float | int | list[int]) -> str:
        node = helper.make_node(op, inputs, [output], name=output)
        node.attribute.extend(helper.make_attribute(key, value) for key, value in attributes.items())
        self.nodes.append(node)
        return output

    def weight(self, name: str, tensor: torch.Tensor) -> str:
        array = tensor.detach().to("cpu", torch.float32).contiguous().numpy()
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def constant(self, name: str, values: list[int]) -> str:
        self.initializers.append(helper.make_tensor(name, TensorProto.INT64, [len(values)], values))
        return name

    def weighted(self, name: str, layer: nn.Linear | nn.ConvTranspose2d, current: str) -> list[str]:
        """A weighted layer's inputs: what comes in, its weight, and its bias where it has one."""
        inputs = [current, self.weight(f"{name}.weight", layer.weight)]
        if layer.bias is not None:
            inputs.append(self.weight(f"{name}.bias", layer.bias))
        return inputs

    def layer(self, name: str, layer: nn.Module, current: str) -> str:
        if isinstance(layer, nn.Linear):
            return self.node("Gemm", self.weighted(name, layer, current), name, transB=1)
        if isinstance(layer, nn.ConvTranspose2d):
            inputs = self.weighted(name, layer, current)
            padding = layer.padding
            assert isinstance(padding, tuple), "the networks give transposed convolutions numeric padding"
            return self.node(
                "ConvTranspose",
                inputs,
                name,
                kernel_shape=list(layer.kernel_size),
                strides=list(layer.stride),
                pads=[*padding, *padding],
                dilations=list(layer.dilation),
                output_padding=list(layer.output_padding),
                group=layer.groups,
            )
        if isinstance(layer, nn.BatchNorm1d | nn.BatchNorm2d):
            if layer.running_mean is None or layer.running_var is None or layer.weight is None or layer.bias is None:
                raise UnsupportedLayer(f"{name}: batch norm without running statistics or affine weights")
            inputs = [
                current,
                self.weight(f"{name}.weight", layer.weight),
                self.weight(f"{name}.bias", layer.bias),
                self.weight(f"{name}.running_mean", layer.running_mean),
                self.weight(f"{name}.running_var", layer.running_var),
            ]
            return self.node("BatchNormalization", inputs, name, epsilon=layer.eps)
        if isinstance(layer, nn.ReLU):
            return self.node("Relu", [current], name)
        if isinstance(layer, nn.Tanh):
            return self.node("Tanh", [current], name)
        raise UnsupportedLayer(f"no ONNX operator for the generator's layer {name} ({type(layer).__name__})")


class OnnxForward:
    """One chunk of latents through a generator's ONNX graph on onnxruntime's CPU provider, on `threads`
    threads of the calling thread's own (1: the caller alone), which wait passively (a shared host)."""

    def __init__(self, graph: onnx.ModelProto, threads: int) -> None:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # Without onnxruntime's own arena, which keeps a session's largest pass allocated for good (26 MB for
        # a 64 px DCGAN of width 64), the API's memory is its LRU of generators: a 32 px DCGAN pass took
        # 31.1 ms without it against 30.8 with it.
        options.enable_cpu_mem_arena = False
        self._session = onnxruntime.InferenceSession(
            graph.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        (x,) = self._session.run([OUTPUT], {INPUT: z.numpy()})
        return torch.from_numpy(x)
