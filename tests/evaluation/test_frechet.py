"""Fréchet distance: the identities a correct implementation must satisfy."""

import numpy as np
import pytest

from cmdvideo.evaluation.frechet import FeatureStats, frechet_distance, frechet_distance_from_stats


def _stats(x):
    stats = FeatureStats(x.shape[1])
    for chunk in np.array_split(x, 3):  # streamed in pieces
        stats.update(chunk)
    return stats


def test_streamed_statistics_match_numpy():
    x = np.random.default_rng(0).normal(size=(500, 6))
    stats = _stats(x)
    np.testing.assert_allclose(stats.mean, x.mean(0))
    np.testing.assert_allclose(stats.covariance(unbiased=True), np.cov(x, rowvar=False))
    np.testing.assert_allclose(stats.covariance(), np.cov(x, rowvar=False, bias=True))


@pytest.mark.parametrize("sqrt", ["scipy", "svd"])
def test_identities(sqrt):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 5)) @ rng.normal(size=(5, 5))
    a = _stats(x)
    assert frechet_distance_from_stats(a, a, sqrt=sqrt) == pytest.approx(0, abs=1e-6)
    shift = np.array([1.0, -2.0, 0.5, 0.0, 3.0])
    b = _stats(x + shift)  # a pure mean shift: the squared distance of the means
    assert frechet_distance_from_stats(a, b, sqrt=sqrt) == pytest.approx(shift @ shift, rel=1e-6)
    # diagonal covariances: sum((mu1-mu2)^2) + sum((sqrt(s1) - sqrt(s2))^2)
    s1, s2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    mu1, mu2 = np.zeros(3), np.array([1.0, 0.0, 0.0])
    expected = 1.0 + np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2)
    value = frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2), sqrt=sqrt)
    assert value == pytest.approx(expected, rel=1e-6)


def test_square_roots_agree_on_general_covariances():
    rng = np.random.default_rng(2)
    a, b = _stats(rng.normal(size=(300, 8))), _stats(rng.normal(size=(300, 8)) * 2 + 1)
    assert frechet_distance_from_stats(a, b, sqrt="scipy") == pytest.approx(
        frechet_distance_from_stats(a, b, sqrt="svd"), rel=1e-6
    )


def test_bad_inputs():
    with pytest.raises(ValueError, match="at least 2"):
        _stats(np.zeros((1, 3))).covariance()
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        FeatureStats(3).update(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="sqrt method"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.eye(2), sqrt="magic")
