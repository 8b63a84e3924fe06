"""Every domain error crosses a process boundary intact: face work runs in worker processes,
and an error that pickle cannot rebuild would break the pool for every later request."""

from __future__ import annotations

import inspect
import pickle
from typing import Any

import pytest

import wajah.api.http.errors as api_errors
import wajah.enrollment.errors as enrollment_errors
import wajah.matcher.errors as matcher_errors
from wajah.biometric.errors import ImageTooLarge, WajahError


def all_error_classes() -> list[type[WajahError]]:
    assert api_errors and enrollment_errors and matcher_errors  # their classes register below
    found: list[type[WajahError]] = []
    pending: list[type[WajahError]] = [WajahError]
    while pending:
        kind = pending.pop()
        found.append(kind)
        pending.extend(kind.__subclasses__())
    return found


def sample_value(parameter: inspect.Parameter) -> Any:
    annotation = str(parameter.annotation)
    if "int" in annotation:
        return 7
    if "float" in annotation:
        return 2.5
    if "Sequence" in annotation or "list" in annotation:
        return [{"name": "sharpness"}]
    return "value"


def make(kind: type[WajahError]) -> WajahError:
    keywords = {
        name: sample_value(parameter)
        for name, parameter in inspect.signature(kind.__init__).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    }
    return kind("what went wrong", **keywords)


def test_the_hierarchy_spans_every_layer() -> None:
    names = {kind.__name__ for kind in all_error_classes()}
    assert {"ImageTooLarge", "SubjectNotFound", "SubjectHasNoTemplates", "LowQuality"} <= names


@pytest.mark.parametrize("kind", all_error_classes(), ids=lambda kind: kind.__name__)
def test_error_survives_pickling(kind: type[WajahError]) -> None:
    error = make(kind)
    rebuilt = pickle.loads(pickle.dumps(error))
    assert type(rebuilt) is kind
    assert str(rebuilt) == str(error) == "what went wrong"
    assert vars(rebuilt) == vars(error)


def test_keyword_attributes_travel() -> None:
    error = ImageTooLarge("too big", limit=10, actual=11, unit="bytes")
    rebuilt = pickle.loads(pickle.dumps(error))
    assert (rebuilt.limit, rebuilt.actual, rebuilt.unit) == (10, 11, "bytes")
