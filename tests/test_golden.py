"""Speed work never changes results: replay the golden trajectories (see tests/golden.py)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.golden import CASES, PATH, trajectory


@pytest.mark.parametrize(("scenario", "protocol"), CASES)
def test_trajectory_matches_golden(scenario, protocol):
    golden = np.load(PATH)
    got = trajectory(scenario, protocol)
    for key, value in got.items():
        expected = golden[f"{scenario}/{protocol}/{key}"]
        if key == "committed":
            np.testing.assert_array_equal(value, expected)
        else:
            np.testing.assert_allclose(value, expected, rtol=1e-9, atol=1e-9, err_msg=key)
