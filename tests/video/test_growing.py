"""Per-frame series grow while views of them are alive (split's times and scores)."""

import array

import numpy as np
import pytest

from curate.video.growing import Growing


def test_an_array_array_cannot_grow_under_a_view_which_is_why_growing_exists():
    values = array.array("d", [0.0])
    view = np.frombuffer(values, np.float64)
    with pytest.raises(BufferError):
        values.extend([1.0] * 10_000)
    del view


def test_views_taken_before_growth_keep_their_values_and_appending_never_fails():
    series = Growing(np.float64, capacity=2)
    views = []
    for i in range(10):
        series.append(i)
        views.append(series.view())
    series.extend([10, 11])
    series.extend(np.arange(12, 20))
    assert series.view().tolist() == list(range(20)) and len(series) == 20 and series[-1] == 19
    assert views[3].tolist() == [0, 1, 2, 3] and views[9].tolist() == list(range(10))
    assert series.view().dtype == np.float64
