from __future__ import annotations

import numpy as np

from wajah.matcher.config import DENSE_ID_SLACK
from wajah.matcher.storage import TemplateRows


def test_dense_ids_map_to_rows_and_unknown_ids_to_minus_one() -> None:
    rows = TemplateRows()
    rows.assign(np.array([5, 1, 300]), np.array([0, 1, 2]))
    assert len(rows) == 3
    np.testing.assert_array_equal(
        rows.rows(np.array([[1, 5], [300, 2], [-1, 99_999]])), [[1, 0], [2, -1], [-1, -1]]
    )
    assert rows.contains(5) and not rows.contains(4) and not rows.contains(10**9)
    rows.assign(np.array([5]), np.array([7]))  # a moved row: same id, no new entry
    assert len(rows) == 3 and rows.rows(np.array([5]))[0] == 7
    rows.discard(np.array([1, 1, 42]))  # repeats and unknown ids are ignored
    assert len(rows) == 2 and not rows.contains(1)
    assert rows.memory_bytes() == 8 * 1024  # an array (initial capacity), not a dict


def test_a_far_id_turns_the_map_sparse_and_keeps_every_entry() -> None:
    rows = TemplateRows()
    rows.assign(np.arange(10), np.arange(10) + 100)
    far = DENSE_ID_SLACK * 1_000_000
    rows.assign(np.array([far]), np.array([10]))
    assert len(rows) == 11
    assert rows.memory_bytes() < 8 * far  # no array up to the far id
    np.testing.assert_array_equal(rows.rows(np.array([0, 9, far, 11, -1])), [100, 109, 10, -1, -1])
    rows.discard(np.array([far, 3]))
    assert len(rows) == 9 and not rows.contains(far) and not rows.contains(3)
    np.testing.assert_array_equal(rows.held(np.array([2, 3, far])), [True, False, False])
