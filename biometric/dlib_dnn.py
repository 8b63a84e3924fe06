"""Reading the weights of a dlib DNN file (``dlib::serialize`` of a ``dlib::add_loss_layer``)
in plain Python and numpy, with no C++ build and nothing downloaded.

dlib writes a network from the outside in: the loss layer's details, then the version numbers
of every wrapper, then the input layer, then each layer's details on the way back out, so the
layer records follow each other in the file from the input to the output. Between two records
sit the wrapper's own fields (three booleans written as ``'0'``/``'1'`` characters and three
cleared tensors), which carry no weights. A tag or skip layer writes only a version number:
the file names no topology, so the graph builder (``biometric/resnet_onnx.py``) supplies it.

The encodings (dlib/serialize.h, dlib/dnn/tensor.h, dlib/dnn/layers.h, read for this module):

- an integer is one control byte (its low nibble the byte count, bit 7 the sign) and that many
  little-endian magnitude bytes;
- a string is an integer length and the bytes;
- a float outside a tensor is two integers, mantissa and exponent: ``mantissa * 2**exponent``;
- a tensor (version 2) is the version, num_samples, k, nr, nc, and then the values as raw
  little-endian IEEE float32;
- an ``alias_tensor`` (version 1) is the version and its four dimensions, no values.

Each layer starts with a version string (``con_4``, ``affine_``, ``fc_2``...); only the layers
the face-recognition ResNet uses are understood, and anything else is an error rather than a
guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wajah.biometric.errors import ModelFilesMissing

# The longest run of wrapper fields seen between two layer records in
# dlib_face_recognition_resnet_model_v1.dat is 35 bytes (three booleans, three empty tensors
# and nested version numbers); a gap far beyond that means the file is not what we think.
_MAX_GAP_BYTES = 4096


class DlibFormatError(ModelFilesMissing):
    """The weight file is not a dlib network this reader understands."""


@dataclass(frozen=True)
class InputLayer:
    """``input_rgb_image_sized<N>``: value = (channel - mean) / 256, channels R, G, B."""

    mean_rgb: tuple[float, float, float]
    rows: int
    columns: int


@dataclass(frozen=True)
class ConvLayer:
    filters: np.ndarray  # (out, in, rows, columns) float32, cross-correlation as in cuDNN
    bias: np.ndarray  # (out,) float32
    stride: tuple[int, int]  # (y, x)
    padding: tuple[int, int]  # (y, x), zeros on both sides


@dataclass(frozen=True)
class AffineLayer:
    """Batch norm folded at training end: value = x * gamma + beta per channel."""

    gamma: np.ndarray  # (channels,) float32
    beta: np.ndarray  # (channels,) float32


@dataclass(frozen=True)
class ReluLayer:
    pass


@dataclass(frozen=True)
class PoolLayer:
    """``max_pool_`` / ``avg_pool_``; ``window == (0, 0)`` pools the whole plane."""

    kind: str  # "max" or "avg"
    window: tuple[int, int]  # (rows, columns)
    stride: tuple[int, int]
    padding: tuple[int, int]

    @property
    def is_global(self) -> bool:
        return self.window == (0, 0)


@dataclass(frozen=True)
class AddPrevLayer:
    """``add_prev_``: the sum of its input and a tagged earlier output; where the two differ
    in size the missing values count as zeros (dlib's tt::add)."""


@dataclass(frozen=True)
class FullyConnectedLayer:
    weights: np.ndarray  # (inputs, outputs) float32: output = input @ weights
    bias: np.ndarray | None  # (outputs,) float32, None for fc_no_bias


@dataclass(frozen=True)
class MetricLoss:
    margin: float
    distance_threshold: float


DlibLayer = (
    InputLayer
    | ConvLayer
    | AffineLayer
    | ReluLayer
    | PoolLayer
    | AddPrevLayer
    | FullyConnectedLayer
)


@dataclass(frozen=True)
class DlibNetwork:
    loss: MetricLoss
    layers: tuple[DlibLayer, ...]  # input first, in the order data flows


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.view = memoryview(data)
        self.position = 0

    def _need(self, size: int) -> None:
        if self.position + size > len(self.data):
            raise DlibFormatError(f"the file ends inside a record at byte {self.position}")

    def integer(self) -> int:
        self._need(1)
        control = self.data[self.position]
        size = control & 0x0F
        if size == 0 or size > 8:
            raise DlibFormatError(f"bad integer control byte {control:#x} at {self.position}")
        self._need(1 + size)
        start = self.position + 1
        magnitude = int.from_bytes(self.data[start : start + size], "little")
        self.position = start + size
        return -magnitude if control & 0x80 else magnitude

    def real(self) -> float:
        mantissa = self.integer()
        exponent = self.integer()
        return float(np.ldexp(float(mantissa), exponent))

    def text(self) -> str:
        length = self.integer()
        self._need(length)
        start = self.position
        self.position += length
        try:
            return self.data[start : self.position].decode("ascii")
        except UnicodeDecodeError as error:
            raise DlibFormatError(f"a version string that is not text at byte {start}") from error

    def tensor(self) -> np.ndarray:
        version = self.integer()
        if version != 2:
            raise DlibFormatError(f"tensor version {version} at {self.position} (expected 2)")
        shape = tuple(self.integer() for _ in range(4))
        count = shape[0] * shape[1] * shape[2] * shape[3]
        self._need(4 * count)
        values = np.frombuffer(self.view, dtype="<f4", count=count, offset=self.position)
        self.position += 4 * count
        return values.astype(np.float32).reshape(shape)

    def alias_shape(self) -> tuple[int, int, int, int]:
        version = self.integer()
        if version != 1:
            raise DlibFormatError(f"alias_tensor version {version} at {self.position}")
        n, k, rows, columns = (self.integer() for _ in range(4))
        return n, k, rows, columns

    def seek_record(self, names: tuple[bytes, ...]) -> str | None:
        """Move to the next layer record (a length-prefixed known version string); None at the
        end of the file."""
        best = -1
        for name in names:
            marker = bytes([0x01, len(name)]) + name
            found = self.data.find(marker, self.position, self.position + _MAX_GAP_BYTES)
            if found >= 0 and (best < 0 or found < best):
                best = found
        if best < 0:
            return None
        self.position = best
        return self.text()


_LAYER_NAMES = (
    b"input_rgb_image_sized",
    b"con_4",
    b"affine_",
    b"relu_",
    b"max_pool_2",
    b"avg_pool_2",
    b"add_prev_",
    b"fc_2",
)


def _read_conv(reader: _Reader) -> ConvLayer:
    params = reader.tensor().reshape(-1)
    filter_count, rows, columns = reader.integer(), reader.integer(), reader.integer()
    stride = (reader.integer(), reader.integer())
    padding = (reader.integer(), reader.integer())
    filter_shape = reader.alias_shape()
    bias_shape = reader.alias_shape()
    for _ in range(4):  # learning-rate and weight-decay multipliers: training only
        reader.real()
    filter_size = int(np.prod(filter_shape))
    if filter_shape[0] != filter_count or filter_shape[2:] != (rows, columns):
        raise DlibFormatError(f"con_ filter shape {filter_shape} does not match its fields")
    if filter_size + int(np.prod(bias_shape)) != params.size:
        raise DlibFormatError("con_ parameter count does not match its filters and biases")
    return ConvLayer(
        filters=params[:filter_size].reshape(filter_shape).copy(),
        bias=params[filter_size:].copy(),
        stride=stride,
        padding=padding,
    )


def _read_affine(reader: _Reader) -> AffineLayer:
    params = reader.tensor().reshape(-1)
    gamma_shape = reader.alias_shape()
    reader.alias_shape()  # beta: the same shape, right after gamma
    mode = reader.integer()
    if mode != 0:  # dlib's layer_mode: CONV_MODE = 0 (one gamma/beta per channel), FC_MODE = 1
        raise DlibFormatError(f"affine_ mode {mode} (only CONV_MODE = 0 is understood)")
    channels = int(np.prod(gamma_shape))
    if params.size != 2 * channels:
        raise DlibFormatError("affine_ parameter count is not 2 x channels")
    return AffineLayer(gamma=params[:channels].copy(), beta=params[channels:].copy())


def _read_pool(reader: _Reader, kind: str) -> PoolLayer:
    window = (reader.integer(), reader.integer())
    stride = (reader.integer(), reader.integer())
    padding = (reader.integer(), reader.integer())
    return PoolLayer(kind=kind, window=window, stride=stride, padding=padding)


def _read_fc(reader: _Reader) -> FullyConnectedLayer:
    outputs, inputs = reader.integer(), reader.integer()
    params = reader.tensor().reshape(-1)
    weight_shape = reader.alias_shape()
    reader.alias_shape()  # biases
    bias_mode = reader.integer()  # FC_HAS_BIAS = 0, FC_NO_BIAS = 1
    for _ in range(4):
        reader.real()
    if weight_shape[:2] != (inputs, outputs):
        raise DlibFormatError(f"fc_ weight shape {weight_shape} is not ({inputs}, {outputs})")
    weights = params[: inputs * outputs].reshape(inputs, outputs).copy()
    bias = None if bias_mode == 1 else params[inputs * outputs :].copy()
    if bias is not None and bias.size != outputs:
        raise DlibFormatError("fc_ bias size does not match its outputs")
    return FullyConnectedLayer(weights=weights, bias=bias)


def _read_input(reader: _Reader) -> InputLayer:
    mean = (reader.real(), reader.real(), reader.real())
    rows, columns = reader.integer(), reader.integer()
    return InputLayer(mean_rgb=mean, rows=rows, columns=columns)


def parse_network(data: bytes) -> DlibNetwork:
    """The layer records of a dlib ``loss_metric`` network file, input first."""
    reader = _Reader(data)
    if reader.integer() != 1 or reader.text() != "loss_metric_2":  # add_loss_layer version 1
        raise DlibFormatError("not a dlib loss_metric network (no loss_metric_2 record)")
    loss = MetricLoss(margin=reader.real(), distance_threshold=reader.real())
    # After the loss come the wrappers' version numbers, one per layer: skip to the input.
    reader.position = data.find(b"\x01\x15input_rgb_image_sized", reader.position)
    if reader.position < 0:
        raise DlibFormatError("no input_rgb_image_sized record")
    layers: list[DlibLayer] = []
    while (name := reader.seek_record(_LAYER_NAMES)) is not None:
        layer: DlibLayer
        if name == "input_rgb_image_sized":
            layer = _read_input(reader)
        elif name == "con_4":
            layer = _read_conv(reader)
        elif name == "affine_":
            layer = _read_affine(reader)
        elif name == "relu_":
            layer = ReluLayer()
        elif name == "max_pool_2":
            layer = _read_pool(reader, "max")
        elif name == "avg_pool_2":
            layer = _read_pool(reader, "avg")
        elif name == "add_prev_":
            layer = AddPrevLayer()
        else:
            layer = _read_fc(reader)
        layers.append(layer)
    if not layers or not isinstance(layers[0], InputLayer):
        raise DlibFormatError("the first layer record is not the input layer")
    if len(data) - reader.position > _MAX_GAP_BYTES:
        raise DlibFormatError(f"{len(data) - reader.position} unread bytes after the last layer")
    return DlibNetwork(loss=loss, layers=tuple(layers))


def read_network(path: Path) -> DlibNetwork:
    return parse_network(path.read_bytes())
