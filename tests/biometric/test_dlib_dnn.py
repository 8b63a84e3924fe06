"""Reading dlib's serialised ResNet: the real installed file, and real damage done to it."""

from __future__ import annotations

import pytest

from wajah.biometric.dlib_dnn import (
    AddPrevLayer,
    AffineLayer,
    ConvLayer,
    DlibFormatError,
    FullyConnectedLayer,
    InputLayer,
    PoolLayer,
    parse_network,
    read_network,
)
from wajah.biometric.models import find_model_paths


def test_the_installed_resnet_reads_as_dlibs_anet_type() -> None:
    network = read_network(find_model_paths().face_recognition)
    source = network.layers[0]
    assert isinstance(source, InputLayer)
    # dlib's input_rgb_image_sized<150> (dlib/dnn/input.h): these means, then / 256.
    assert (source.rows, source.columns) == (150, 150)
    assert source.mean_rgb == pytest.approx((122.782, 117.001, 104.298), abs=1e-4)
    convs = [layer for layer in network.layers if isinstance(layer, ConvLayer)]
    assert len(convs) == 29  # stem + 14 residual blocks of two
    assert convs[0].filters.shape == (32, 3, 7, 7) and convs[0].stride == (2, 2)
    assert sum(isinstance(layer, AffineLayer) for layer in network.layers) == 29
    assert sum(isinstance(layer, AddPrevLayer) for layer in network.layers) == 14
    pools = [layer for layer in network.layers if isinstance(layer, PoolLayer)]
    assert [p.kind for p in pools] == ["max", "avg", "avg", "avg", "avg", "avg"]
    assert pools[-1].is_global
    head = network.layers[-1]
    assert isinstance(head, FullyConnectedLayer)
    assert head.weights.shape == (256, 128) and head.bias is None
    assert network.loss.distance_threshold == pytest.approx(0.6)


def test_a_truncated_or_foreign_file_is_refused() -> None:
    data = find_model_paths().face_recognition.read_bytes()
    with pytest.raises(DlibFormatError):
        parse_network(data[: len(data) // 2])  # cut inside a tensor
    with pytest.raises(DlibFormatError):
        parse_network(find_model_paths().landmarks_5.read_bytes())  # a shape predictor
