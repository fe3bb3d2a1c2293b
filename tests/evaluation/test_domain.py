"""The moving-shapes classifier and the offline metrics built on it (evaluation/domain.py)."""

import numpy as np
import pytest
import torch
from conftest import fit_fixed_batch

from cmdvideo.cli import main
from cmdvideo.config import load_config
from cmdvideo.data import collate_videos
from cmdvideo.data.moving_shapes import MOTIONS, MovingShapes, caption_for, parse_caption
from cmdvideo.evaluation.domain import (
    domain_accuracy,
    fd_moving_shapes,
    feature_stats,
    head_accuracy,
)
from cmdvideo.models.classifier import (
    SHIPPED_CLASSIFIER,
    MovingShapesClassifier,
    factor_targets,
    load_classifier,
)
from cmdvideo.training.stages import ClassifierStage


def test_parse_caption_inverts_caption_for():
    data = MovingShapes(num_videos=300, seed=5, max_shapes=3)
    for i in range(len(data)):
        f = data.factors(i)
        asked = parse_caption(caption_for(f))
        assert asked["motion"] == f.motion.name
        assert asked["background"] == f.appearance.background
        assert asked["shapes"] == [(s.color, s.kind) for s in f.appearance.shapes]
    free = parse_caption("Two RED circles, bouncing on a cyan background!")
    assert free == {"shapes": [("red", "circle")], "background": "cyan", "motion": "bounce"}


def test_targets_and_heads_have_the_right_shapes():
    items = [MovingShapes(num_videos=4, seed=0)[i] for i in range(4)]
    batch = collate_videos(items)
    targets = factor_targets(batch["factors"])
    assert targets["motion"].tolist() == batch["label"].tolist()
    for i, item in enumerate(items):  # multi-hot rows name exactly the shapes present
        shapes = item["factors"]["appearance"]["shapes"]
        assert targets["shape_colors"][i].sum() == len({s["color"] for s in shapes})
        assert targets["shape_kinds"][i].sum() == len({s["kind"] for s in shapes})
    model = MovingShapesClassifier(widths=(8, 8, 8, 8), feature_dim=16)
    full = MovingShapesClassifier(
        widths=(8, 8, 8, 8), feature_dim=16, stem_stride=1, pooling="mean+max"
    )
    assert full.features(batch["video"]).shape == (4, 16)
    with pytest.raises(ValueError, match="pooling"):
        MovingShapesClassifier(pooling="max")
    logits = model(batch["video"])
    assert {k: tuple(v.shape) for k, v in logits.items()} == {
        "motion": (4, 10),
        "background": (4, 10),
        "shape_colors": (4, 10),
        "shape_kinds": (4, 3),
    }
    assert model.features(batch["video"]).shape == (4, 16)


def test_classifier_loss_falls_on_a_fixed_batch():
    config = load_config("moving-shapes-classifier", ["classifier.widths=[8,16,16,16]"])
    batch = collate_videos([MovingShapes(num_videos=8, seed=0)[i] for i in range(8)])
    losses = fit_fixed_batch(ClassifierStage(config), batch, steps=40, lr=3e-3)
    assert losses[-1] < 0.5 * losses[0]


def _predictions(motion, background, colors, kinds):
    return {
        "motion": motion,
        "background": background,
        "shape_colors": colors,
        "shape_kinds": kinds,
    }


def test_domain_accuracy_arithmetic():
    prompts = [
        "a red circle moving left on a blue background",
        "a green square rotating on a white background",
        "a red circle and a blue square growing on a yellow background",
        "a cyan triangle bouncing on a black background",
    ]
    pred = _predictions(
        motion=["left", "rotate", "shrink", "bounce"],
        background=["blue", "white", "yellow", "gray"],
        colors=[{"red"}, {"green", "blue"}, {"red", "blue"}, {"cyan"}],
        kinds=[{"circle"}, {"square"}, {"circle", "square"}, {"triangle"}],
    )
    seen = [
        {"background": "blue", "foreground": "red", "kind": "circle"},
        {"background": "white", "foreground": "blue", "kind": "square"},
        {"background": "yellow", "foreground": "red", "kind": "circle"},
        {"background": "gray", "foreground": "cyan", "kind": "triangle"},
    ]
    acc = domain_accuracy(None, None, prompts=prompts, predictions=pred, appearance=seen)
    assert acc["motion_accuracy"] == 0.75
    assert acc["by_class"] == {"left": 1.0, "rotate": 1.0, "grow": 0.0, "bounce": 1.0}
    assert acc["background_accuracy"] == 0.75
    assert acc["num_single_shape"] == 3
    assert acc["shape_color_accuracy"] == pytest.approx(2 / 3)  # green square came out blue
    assert acc["shape_kind_accuracy"] == 1.0
    assert acc["all_accuracy"] == pytest.approx(1 / 3)  # only the first is right in all four

    by_label = domain_accuracy(None, None, labels=[0, 6, 9, 9], predictions=pred)
    assert by_label["motion_accuracy"] == 0.75  # asked left, rotate, bounce, bounce: 3rd wrong
    assert "background_accuracy" not in by_label
    renamed = domain_accuracy(
        None,
        None,
        labels=[1],
        class_names=["x", "left"],
        predictions=_predictions(["left"], ["red"], [set()], [set()]),
    )
    assert renamed["motion_accuracy"] == 1.0


def test_domain_accuracy_rejects_bad_requests():
    pred = _predictions(["left"], ["red"], [set()], [set()])
    with pytest.raises(ValueError, match="either prompts or labels"):
        domain_accuracy(None, None, predictions=pred)
    with pytest.raises(ValueError, match="2 labels for 1 videos"):
        domain_accuracy(None, None, labels=[0, 1], predictions=pred)
    with pytest.raises(ValueError, match="not moving-shapes classes"):
        domain_accuracy(None, None, labels=[0], class_names=["jump"], predictions=pred)


def test_fd_moving_shapes_is_zero_on_identical_sets_and_grows_with_a_change():
    torch.manual_seed(0)
    model = MovingShapesClassifier(widths=(8, 8, 8, 8), feature_dim=8).eval()
    videos = torch.stack([MovingShapes(num_videos=40, seed=2)[i]["video"] for i in range(40)])
    spread = np.trace(feature_stats(model, videos).covariance())  # scale of this random net
    assert fd_moving_shapes(model, videos, videos) < 1e-6 * spread
    assert fd_moving_shapes(model, videos, -videos) > 0.1 * spread  # colours inverted


def test_save_load_round_trip_and_missing_folder(tmp_path):
    torch.manual_seed(0)
    model = MovingShapesClassifier(widths=(8, 8, 8, 8), feature_dim=8).eval()
    model.save_pretrained(tmp_path / "run" / "classifier")
    loaded = load_classifier(tmp_path / "run")  # a run folder works as well as the model folder
    video = MovingShapes(num_videos=2, seed=0)[0]["video"][None]
    saved, back = model.state_dict(), loaded.state_dict()
    assert saved.keys() == back.keys() and all(torch.equal(saved[k], back[k]) for k in saved)
    # same weights; the loaded copy's memory layout may round differently in the last bits
    torch.testing.assert_close(model.features(video), loaded.features(video), rtol=0, atol=1e-6)
    with pytest.raises(FileNotFoundError, match="cmdvideo train classifier"):
        load_classifier(tmp_path / "nothing")


def test_shipped_classifier_and_checks_read_held_out_real_videos():
    """The packaged weights load by default and read the motion and background of held-out
    real videos; the hand-written appearance checks read colours and shape kinds (the full
    1,000-video figures are in the README; this is a fast floor)."""
    assert (SHIPPED_CLASSIFIER / "config.json").is_file()
    model = load_classifier()
    data = MovingShapes(num_videos=120, seed=1)  # the evaluation seed, never trained on
    items = [data[i] for i in range(len(data))]
    videos = torch.stack([it["video"] for it in items])
    heads = head_accuracy(model, videos, [it["factors"] for it in items])
    assert heads["motion"] > 0.9 and heads["background"] > 0.95
    acc = domain_accuracy(model, videos, prompts=[it["caption"] for it in items])
    assert acc["motion_accuracy"] == heads["motion"]
    assert acc["background_accuracy"] == acc["shape_color_accuracy"] == 1.0
    assert acc["shape_kind_accuracy"] > 0.95 and acc["num_single_shape"] > 40
    assert sorted(acc["by_class"]) == sorted(MOTIONS)


def test_train_classifier_command(tmp_path):
    out = tmp_path / "clf"
    code = main(
        [
            "train",
            "classifier",
            "--out",
            str(out),
            "--max-steps",
            "2",
            "--set",
            "classifier.widths=[8,8,8,8]",
            "--set",
            "train.batch_size=2",
            "--set",
            "train.preview_every=2",
        ]
    )
    assert code == 0
    model = load_classifier(out)
    assert model.config.widths == [8, 8, 8, 8] or tuple(model.config.widths) == (8, 8, 8, 8)
