"""The bundled pipeline's outputs through every entry point (text, class, image-to-video,
motion transfer, both edits, a long video) against the ones recorded in
tests/fixtures/golden.npz: a refactoring changes none of them. Rewrite the fixture only with a
new bundle (``python tests/golden_outputs.py``)."""

import numpy as np
import pytest
from golden_outputs import bundle_outputs, load

from cmdvideo.hub import BUNDLED_PIPELINES


@pytest.mark.skipif(not BUNDLED_PIPELINES["moving-shapes-tiny"].is_dir(), reason="no bundle")
def test_the_bundle_makes_what_it_made():
    expected = load()
    got = bundle_outputs()
    assert sorted(got) == sorted(expected)
    for name in expected:
        # bit-identical on the machine that recorded them; other CPUs may round differently
        # in the last bits of a float, so a tolerance far below one 8-bit level (1/255)
        np.testing.assert_allclose(got[name], expected[name], rtol=0, atol=1e-4, err_msg=name)
