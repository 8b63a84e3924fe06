"""The 1:N accuracy benchmark's measures on hand-made templates whose answers are known."""

from __future__ import annotations

import numpy as np

from wajah.benchmarks.identification_accuracy import fusion, tune


def unit(angle_deg: float) -> np.ndarray:
    vector = np.zeros(128, dtype=np.float32)
    vector[0] = np.cos(np.radians(angle_deg))
    vector[1] = np.sin(np.radians(angle_deg))
    return vector


def test_fusion_counts_the_probes_each_rule_places_first() -> None:
    # Person a enrolled at 0 and 33 degrees, b at 25 and 100; a's probe at 30 degrees is
    # nearest b's first photo (5) but a's second (3) under "max of two".
    angles = {"a": (0, 33, 30), "b": (25, 100, 101)}
    vectors = np.stack([unit(a) for name in "ab" for a in angles[name]])
    identities = np.array([name for name in "ab" for _ in range(3)])
    tuned = tune(vectors, identities)
    result = fusion(vectors, identities, tuned)
    assert result["probes"] == 2
    assert result["one photo"]["rank1"]["count"] == 1  # a's probe goes to b (25 vs 0 degrees)
    assert result["max of two"]["rank1"]["count"] == 2
