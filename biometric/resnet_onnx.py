"""dlib's face-recognition ResNet as an ONNX graph, built from the weights of the installed
``dlib_face_recognition_resnet_model_v1.dat`` (read by :mod:`wajah.biometric.dlib_dnn`).

The topology is dlib's ``anet_type`` (examples/dnn_face_recognition_ex.cpp): a 7x7/2 stem with
a 3x3/2 max pool, then residual blocks ``conv3x3 -> affine -> relu -> conv3x3 -> affine`` whose
output is added to the block's input and passed through a relu; a down-sampling block strides
its first convolution by 2 (no padding, as dlib pads only stride-1 layers) and adds a 2x2/2
average pool of its input instead. Where the two addends differ in size (more channels after a
down-sampling block; 3x3 against 4x4 and 1x1 against 2x2 in the last two levels) dlib adds
with zeros in place of the missing values, at the end of each axis: the graph pads the smaller
addend the same way. A global average pool and a 256 -> 128 product without bias finish it.

The graph takes the aligned chips as they come, (N, 150, 150, 3) uint8 RGB, and applies dlib's
``input_rgb_image_sized`` normalisation inside: (value - channel mean) / 256 with the means
stored in the file (122.782, 117.001, 104.298). Each ``affine`` (dlib's frozen batch norm) is
folded into the convolution before it. The output is dlib's raw descriptor, (N, 128) float32.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from wajah.biometric.dlib_dnn import (
    AddPrevLayer,
    AffineLayer,
    ConvLayer,
    DlibFormatError,
    DlibLayer,
    DlibNetwork,
    FullyConnectedLayer,
    InputLayer,
    PoolLayer,
    ReluLayer,
)

INPUT_NAME = "chips"  # (N, rows, columns, 3) uint8 RGB
OUTPUT_NAME = "descriptors"  # (N, 128) float32, dlib's raw descriptor
ONNX_OPSET = 17
INPUT_SCALE = 1.0 / 256.0  # dlib's input_rgb_image_sized divides by 256 after the mean


@dataclass(frozen=True)
class GraphSummary:
    """What the builder made, for the benchmark's compute floor."""

    multiply_adds_per_chip: int  # convolutions and the final product
    parameter_count: int


class _Graph:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.counter = 0
        self.multiply_adds = 0
        self.parameters = 0

    def name(self, stem: str) -> str:
        self.counter += 1
        return f"{stem}_{self.counter}"

    def constant(self, stem: str, value: np.ndarray) -> str:
        name = self.name(stem)
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def node(self, op: str, inputs: list[str], stem: str, **attributes: Any) -> str:
        output = self.name(stem)
        self.nodes.append(helper.make_node(op, inputs, [output], **attributes))
        return output


@dataclass(frozen=True)
class _Value:
    name: str
    shape: tuple[int, int, int]  # (channels, rows, columns) per chip


_Layer = TypeVar("_Layer", bound=DlibLayer)


def _expect(layers: Iterator[DlibLayer], kind: type[_Layer], where: str) -> _Layer:
    layer = next(layers, None)
    if not isinstance(layer, kind):
        raise DlibFormatError(f"{where}: expected {kind.__name__}, found {layer!r:.80}")
    return layer


def _conv(graph: _Graph, value: _Value, conv: ConvLayer, affine: AffineLayer) -> _Value:
    out_channels, in_channels, rows, columns = conv.filters.shape
    if in_channels != value.shape[0] or affine.gamma.shape != (out_channels,):
        raise DlibFormatError(f"conv {conv.filters.shape} does not fit its input {value.shape}")
    # dlib's affine after a convolution: y = conv(x) * gamma + beta, folded in float64.
    gamma = affine.gamma.astype(np.float64)
    filters = (conv.filters.astype(np.float64) * gamma[:, None, None, None]).astype(np.float32)
    bias = (conv.bias.astype(np.float64) * gamma + affine.beta).astype(np.float32)
    (stride_y, stride_x), (pad_y, pad_x) = conv.stride, conv.padding
    out_rows = (value.shape[1] + 2 * pad_y - rows) // stride_y + 1
    out_columns = (value.shape[2] + 2 * pad_x - columns) // stride_x + 1
    name = graph.node(
        "Conv",
        [value.name, graph.constant("w", filters), graph.constant("b", bias)],
        "conv",
        kernel_shape=[rows, columns],
        strides=[stride_y, stride_x],
        pads=[pad_y, pad_x, pad_y, pad_x],
    )
    graph.multiply_adds += out_channels * out_rows * out_columns * in_channels * rows * columns
    graph.parameters += filters.size + bias.size
    return _Value(name, (out_channels, out_rows, out_columns))


def _relu(graph: _Graph, value: _Value) -> _Value:
    return _Value(graph.node("Relu", [value.name], "relu"), value.shape)


def _pool(graph: _Graph, value: _Value, pool: PoolLayer) -> _Value:
    if pool.padding != (0, 0):
        raise DlibFormatError("padded pooling is not in this network")
    (rows, columns), (stride_y, stride_x) = pool.window, pool.stride
    op = "MaxPool" if pool.kind == "max" else "AveragePool"
    name = graph.node(
        op, [value.name], "pool", kernel_shape=[rows, columns], strides=[stride_y, stride_x]
    )
    out_rows = (value.shape[1] - rows) // stride_y + 1
    out_columns = (value.shape[2] - columns) // stride_x + 1
    return _Value(name, (value.shape[0], out_rows, out_columns))


def _pad_to(graph: _Graph, value: _Value, shape: tuple[int, int, int]) -> _Value:
    missing = [target - have for target, have in zip(shape, value.shape, strict=True)]
    if not any(missing):
        return value
    pads = np.array([0, 0, 0, 0, 0, *missing], dtype=np.int64)  # begins (N,C,H,W), then ends
    return _Value(graph.node("Pad", [value.name, graph.constant("pads", pads)], "pad"), shape)


def _add_prev(graph: _Graph, shortcut: _Value, block: _Value) -> _Value:
    """dlib's add_prev: sizes may differ; the missing values are zeros at the end of each axis."""
    shape = (
        max(shortcut.shape[0], block.shape[0]),
        max(shortcut.shape[1], block.shape[1]),
        max(shortcut.shape[2], block.shape[2]),
    )
    left, right = _pad_to(graph, shortcut, shape), _pad_to(graph, block, shape)
    return _Value(graph.node("Add", [left.name, right.name], "add"), shape)


def build_resnet_onnx(network: DlibNetwork) -> tuple[onnx.ModelProto, GraphSummary]:
    """The ONNX model of a dlib face-recognition ResNet (the ``anet_type`` pattern)."""
    layers = iter(network.layers)
    graph = _Graph()
    source = _expect(layers, InputLayer, "input")
    mean = np.array(source.mean_rgb, dtype=np.float32).reshape(1, 3, 1, 1)
    as_float = graph.node("Cast", [INPUT_NAME], "cast", to=TensorProto.FLOAT)
    planar = graph.node("Transpose", [as_float], "nchw", perm=[0, 3, 1, 2])
    centred = graph.node("Sub", [planar, graph.constant("mean", mean)], "centred")
    scale = np.array(INPUT_SCALE, dtype=np.float32)
    value = _Value(
        graph.node("Mul", [centred, graph.constant("scale", scale)], "input"),
        (3, source.rows, source.columns),
    )

    stem = _expect(layers, ConvLayer, "stem")
    stem_affine = _expect(layers, AffineLayer, "stem")
    value = _relu(graph, _conv(graph, value, stem, stem_affine))
    _expect(layers, ReluLayer, "stem")
    stem_pool = _expect(layers, PoolLayer, "stem")
    value = _pool(graph, value, stem_pool)

    block_count = 0
    while True:
        layer = next(layers, None)
        if isinstance(layer, PoolLayer) and layer.is_global:
            break
        if not isinstance(layer, ConvLayer):
            raise DlibFormatError(f"block {block_count}: expected a convolution, found {layer!r}")
        where = f"block {block_count}"
        first_affine = _expect(layers, AffineLayer, where)
        block = _relu(graph, _conv(graph, value, layer, first_affine))
        _expect(layers, ReluLayer, where)
        second = _expect(layers, ConvLayer, where)
        second_affine = _expect(layers, AffineLayer, where)
        block = _conv(graph, block, second, second_affine)
        shortcut = value
        joint = next(layers, None)
        if isinstance(joint, PoolLayer):  # residual_down: avg_pool of the block's input
            shortcut = _pool(graph, value, joint)
            joint = next(layers, None)
        if not isinstance(joint, AddPrevLayer):
            raise DlibFormatError(f"{where}: expected add_prev, found {joint!r}")
        _expect(layers, ReluLayer, where)
        value = _relu(graph, _add_prev(graph, shortcut, block))
        block_count += 1

    pooled = graph.node("GlobalAveragePool", [value.name], "global_pool")
    flat = graph.node("Flatten", [pooled], "flat", axis=1)
    product = _expect(layers, FullyConnectedLayer, "head")
    if product.weights.shape[0] != value.shape[0]:
        raise DlibFormatError(f"fc takes {product.weights.shape[0]}, gets {value.shape[0]}")
    inputs = [flat, graph.constant("fc", product.weights)]
    graph.multiply_adds += product.weights.size
    graph.parameters += product.weights.size
    if product.bias is None:
        graph.nodes.append(helper.make_node("MatMul", inputs, [OUTPUT_NAME]))
    else:
        matmul = graph.node("MatMul", inputs, "fc_out")
        graph.parameters += product.bias.size
        bias = graph.constant("fc_bias", product.bias)
        graph.nodes.append(helper.make_node("Add", [matmul, bias], [OUTPUT_NAME]))
    if next(layers, None) is not None:
        raise DlibFormatError("layers left after the fully connected head")

    model = helper.make_model(
        helper.make_graph(
            graph.nodes,
            "dlib_face_recognition_resnet_model_v1",
            [
                helper.make_tensor_value_info(
                    INPUT_NAME, TensorProto.UINT8, ["batch", source.rows, source.columns, 3]
                )
            ],
            [
                helper.make_tensor_value_info(
                    OUTPUT_NAME, TensorProto.FLOAT, ["batch", product.weights.shape[1]]
                )
            ],
            graph.initializers,
        ),
        opset_imports=[helper.make_opsetid("", ONNX_OPSET)],
        producer_name="wajah",
    )
    model.ir_version = 8  # readable by onnxruntime >= 1.14 and OpenCV's DNN
    return model, GraphSummary(graph.multiply_adds, graph.parameters)
