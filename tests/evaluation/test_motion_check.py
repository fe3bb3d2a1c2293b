"""The hand-written motion check recognises the motion of real moving-shapes videos."""

import torch

from cmdvideo.data.moving_shapes import MovingShapes
from cmdvideo.evaluation.motion_check import (
    classify_motion,
    color_accuracy,
    motion_accuracy,
    prompt_colors,
)


def test_motion_check_is_right_on_real_held_out_videos():
    data = MovingShapes(num_videos=300, num_frames=16, height=32, width=32, seed=1)
    items = [data[i] for i in range(300)]
    result = motion_accuracy(
        [it["video"] for it in items], data.classes, [it["label"] for it in items]
    )
    assert result["accuracy"] >= 0.9, result["by_class"]
    for name in ("left", "right", "up", "down", "up-left", "down-right", "grow", "shrink"):
        assert result["by_class"][name] >= 0.9, (name, result["by_class"])


def test_a_still_or_empty_video_is_not_a_translation():
    still = MovingShapes(num_videos=1, num_frames=16, height=32, width=32, seed=3)[0]["video"]
    frozen = still[:, :1].expand_as(still)
    assert classify_motion(frozen) == "rotate"  # nothing moves: the "in place" class
    assert classify_motion(torch.zeros(3, 16, 32, 32)) == "other"  # no foreground at all


def test_color_check_reads_the_named_colors_of_real_videos():
    data = MovingShapes(num_videos=200, num_frames=16, height=32, width=32, seed=2)
    items = [data[i] for i in range(200)]
    result = color_accuracy([it["video"] for it in items], [it["caption"] for it in items])
    assert result["background_accuracy"] >= 0.95 and result["shape_color_accuracy"] >= 0.95
    assert result["num_single_shape"] > 50
    wrong = color_accuracy([items[0]["video"]], ["a red circle on a cyan background"])
    asked = prompt_colors("a red circle and a blue square moving up on a white background")
    assert asked == {"shapes": ["red", "blue"], "background": "white"}
    assert wrong["background_accuracy"] in (0.0, 1.0)


def test_shape_check_reads_the_kind_of_one_shape():
    """The best-fitting ideal shape (area overlap at the foreground's area and centroid, over
    orientations) is exact on held-out real one-shape videos, also blurred by a 3x3 binomial
    filter (the one-pixel edge errors of a decoder), and scores the true kind highest."""
    from cmdvideo.data.moving_shapes import MovingShapes
    from cmdvideo.evaluation.motion_check import shape_check, shape_scores

    data = MovingShapes(num_videos=400, seed=1, max_shapes=1)
    kinds = [
        (data.factors(i).appearance.shapes[0].kind, shape_check(data[i]["video"]))
        for i in range(150)
    ]
    assert {k for k, _ in kinds} == {"circle", "square", "triangle"}
    assert all(k == p for k, p in kinds)
    kernel = torch.tensor([1.0, 2.0, 1.0])
    kernel = (kernel[:, None] * kernel[None]) / 16
    for i in range(40):
        video = data[i]["video"]  # (3, T, H, W)
        blurred = (
            torch.nn.functional.conv2d(
                video.transpose(0, 1).reshape(-1, 1, *video.shape[-2:]),
                kernel[None, None],
                padding=1,
            )
            .reshape(video.shape[1], 3, *video.shape[-2:])
            .transpose(0, 1)
        )
        kind = data.factors(i).appearance.shapes[0].kind
        scores = shape_scores(blurred)
        assert shape_check(blurred) == kind and max(scores, key=scores.get) == kind
        assert all(0 < v <= 1 for v in scores.values())
    assert shape_check(torch.zeros(3, 4, 16, 16)) == "none"  # nothing but background


def test_one_shape_scores_of_videos_and_of_stills():
    """The scripts' one-shape scoring: real videos and their middle frames (stills, scored as
    2-frame videos) read right; colour accuracies only with prompts; one kind per item."""
    import pytest

    from cmdvideo.evaluation.generation import held_out_one_shape_videos, one_shape_scores

    items, kinds = held_out_one_shape_videos(40, 8, 32, 32)
    videos = torch.stack([it["video"] for it in items])
    prompts = [it["caption"] for it in items]
    assert one_shape_scores(videos, kinds) == {"shape_kind_accuracy": 1.0}
    stills = one_shape_scores(videos[:, :, 4], kinds, prompts)
    assert stills["shape_kind_accuracy"] == 1.0 and stills["shape_color_accuracy"] == 1.0
    assert stills["background_accuracy"] == 1.0
    assert one_shape_scores(
        videos, ["triangle" if k != "triangle" else "circle" for k in kinds]
    ) == {"shape_kind_accuracy": 0.0}
    with pytest.raises(ValueError):
        one_shape_scores(videos, kinds[:-1])


def test_swapped_prompts_change_one_word():
    """The probes' prompts: the next shape kind, or the next shape colour; nothing else moves."""
    from cmdvideo.data.moving_shapes import COLORS, SHAPES, parse_caption
    from cmdvideo.evaluation.generation import held_out_one_shape_videos, swapped_prompts

    items, kinds = held_out_one_shape_videos(40, 8, 32, 32)
    prompts = [it["caption"] for it in items]
    other_kind, other_colour = swapped_prompts(prompts, kinds)
    colors = list(COLORS)
    for prompt, kind, k, c in zip(prompts, kinds, other_kind, other_colour, strict=True):
        asked, by_kind, by_colour = parse_caption(prompt), parse_caption(k), parse_caption(c)
        ((colour, _),) = asked["shapes"]
        assert by_kind["shapes"] == [(colour, SHAPES[(SHAPES.index(kind) + 1) % 3])]
        assert by_colour["shapes"] == [(colors[(colors.index(colour) + 1) % len(colors)], kind)]
        for other in (by_kind, by_colour):
            assert (other["background"], other["motion"]) == (asked["background"], asked["motion"])
