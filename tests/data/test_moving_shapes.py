"""Tests for the embedded moving-shapes dataset."""

import hashlib
import json
import math

import numpy as np
import pytest
import torch

from cmdvideo.data.moving_shapes import (
    COLORS,
    MOTIONS,
    SHAPES,
    WORLDS,
    Appearance,
    Motion,
    MovingShapes,
    ShapeSpec,
    VideoFactors,
    caption_for,
    render_swapped,
    render_video,
    sample_factors,
    trajectory_box,
)

MOTION_WORDS = {
    "left": ["left"],
    "right": ["right"],
    "up": ["up"],
    "down": ["down"],
    "up-left": ["up", "left"],
    "down-right": ["down", "right"],
    "rotate": ["rotating"],
    "grow": ["growing"],
    "shrink": ["shrinking"],
    "bounce": ["bouncing"],
}


def _rgb(name: str) -> torch.Tensor:
    return torch.tensor(COLORS[name], dtype=torch.float32) / 127.5 - 1.0  # in [-1, 1]


def _coverage(video: torch.Tensor, factors: VideoFactors) -> torch.Tensor:
    """Per-pixel coverage of a one-shape untextured video, (T, H, W) in [0, 1]."""
    background = _rgb(factors.appearance.background)[:, None, None, None]
    color = _rgb(factors.appearance.shapes[0].color)[:, None, None, None]
    direction = color - background
    return ((video - background) * direction).sum(0) / direction.square().sum()


def _stats(video: torch.Tensor, factors: VideoFactors) -> tuple[torch.Tensor, ...]:
    """Centre of mass (x, y) in pixels and area in pixels, each (T,)."""
    cov = _coverage(video, factors)  # (T, H, W)
    _, height, width = cov.shape
    area = cov.sum((1, 2))
    xs = torch.arange(width, dtype=torch.float32) + 0.5
    ys = torch.arange(height, dtype=torch.float32) + 0.5
    cx = (cov.sum(1) * xs).sum(1) / area
    cy = (cov.sum(2) * ys).sum(1) / area
    return cx, cy, area


def test_item_shape_range_dtype():
    ds = MovingShapes(num_videos=5, seed=0)
    assert len(ds) == 5 and ds.classes == list(MOTIONS)
    item = ds[2]
    video = item["video"]
    assert video.shape == (3, 16, 32, 32) and video.dtype == torch.float32
    assert video.min() >= -1.0 and video.max() <= 1.0
    assert video.max() - video.min() > 0.5  # not a blank frame
    assert 0 <= item["label"] < len(MOTIONS) and item["index"] == 2
    assert MOTIONS[item["label"]] == item["factors"]["motion"]["name"]
    factors = VideoFactors.from_dict(json.loads(json.dumps(item["factors"])))
    assert factors == ds.factors(2)
    assert item["caption"] == caption_for(factors)
    assert torch.equal(ds[-1]["video"], ds[4]["video"])
    with pytest.raises(IndexError):
        ds[5]


def test_deterministic_and_seed_dependent():
    a, b = MovingShapes(num_videos=10, seed=0), MovingShapes(num_videos=10, seed=0)
    b[7]  # different access order must not matter
    assert torch.equal(a[3]["video"], b[3]["video"])
    assert a[3]["factors"] == b[3]["factors"]
    other = MovingShapes(num_videos=10, seed=1)
    assert not torch.equal(a[3]["video"], other[3]["video"])
    assert not torch.equal(a[3]["video"], a[4]["video"])


def test_labels_cover_all_classes():
    ds = MovingShapes(num_videos=300, seed=3)
    labels = [ds.factors(i).label for i in range(len(ds))]
    counts = np.bincount(labels, minlength=len(MOTIONS))
    assert counts.min() >= 10  # uniform would be 30 each


@pytest.mark.parametrize("motion", MOTIONS)
def test_caption_names_color_shape_and_motion(motion):
    factors = sample_factors(np.random.default_rng(1), num_shapes=1, motion=motion)
    caption = caption_for(factors)
    shape = factors.appearance.shapes[0]
    words = caption.split()
    assert shape.color in words and shape.kind in words
    assert f"{factors.appearance.background} background" in caption
    for word in MOTION_WORDS[motion]:
        assert word in words, caption


def test_two_shape_caption():
    shapes = (
        ShapeSpec("circle", "red", 0.15, 0.3, 0.5, 0.0),
        ShapeSpec("square", "orange", 0.15, 0.7, 0.5, 0.0),
    )
    factors = VideoFactors(Appearance("blue", shapes), Motion("up-left", 0.3, 0.0))
    expected = "a red circle and an orange square moving up and left on a blue background"
    assert caption_for(factors) == expected
    sampled = sample_factors(np.random.default_rng(2), num_shapes=2)
    assert sampled.appearance.shapes[0].color != sampled.appearance.shapes[1].color


@pytest.mark.parametrize("motion", MOTIONS)
def test_each_motion_moves_as_named(motion):
    for seed in range(4):
        factors = sample_factors(np.random.default_rng(seed), num_shapes=1, motion=motion)
        video = render_video(factors)
        assert (video[:, 0] - video[:, -1]).abs().max() > 0.5, "first and last frame look alike"
        cx, cy, area = _stats(video, factors)
        dx, dy, growth = cx[-1] - cx[0], cy[-1] - cy[0], area[-1] / area[0]
        if "left" in motion:
            assert dx < -3
        if "right" in motion:
            assert dx > 3
        if "up" in motion:
            assert dy < -3
        if "down" in motion:
            assert dy > 3
        if motion in ("left", "right"):
            assert abs(dy) < 1
        if motion in ("up", "down", "bounce"):
            assert abs(dx) < 1
        if motion == "grow":
            assert growth > 1.3
        if motion == "shrink":
            assert growth < 1 / 1.3
        if motion == "bounce":  # goes up and comes down again
            steps = cy[1:] - cy[:-1]
            assert steps.min() < -0.5 and steps.max() > 0.5
        if motion == "rotate" and factors.appearance.shapes[0].kind != "circle":
            assert growth == pytest.approx(1.0, rel=0.1)  # turns in place


def test_rotating_circle_orbits():
    shape = ShapeSpec("circle", "red", 0.2, 0.5, 0.5, 0.0)
    factors = VideoFactors(Appearance("blue", (shape,)), Motion("rotate", 0.3, 0.0))
    cx, cy, _ = _stats(render_video(factors), factors)
    assert math.hypot(cx[-1] - cx[0], cy[-1] - cy[0]) > 3


def test_shapes_stay_visible_and_background_differs():
    rng = np.random.default_rng(5)
    for _ in range(60):
        factors = sample_factors(rng)
        background = factors.appearance.background
        assert all(s.color != background for s in factors.appearance.shapes)
        assert all(
            math.dist(COLORS[s.color], COLORS[background]) > 100 for s in factors.appearance.shapes
        )
        assert all(s.kind in SHAPES for s in factors.appearance.shapes)
        video = render_video(factors)
        # every frame shows a good part of some shape: pixels away from the background colour
        off_background = (video - _rgb(background)[:, None, None, None]).abs().amax(0) > 0.2
        assert off_background.sum((1, 2)).min() >= 10


@pytest.mark.parametrize("height, width", [(30, 32), (32, 4), (0, 32), (264, 32), (32.0, 32)])
def test_bad_resolution_raises(height, width):
    factors = sample_factors(np.random.default_rng(0))
    with pytest.raises(ValueError, match="multiple of 8"):
        render_video(factors, height=height, width=width)
    with pytest.raises(ValueError, match="multiple of 8"):
        MovingShapes(height=height, width=width)


def test_bad_factors_raise():
    factors = sample_factors(np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown motion"):
        render_video(VideoFactors(factors.appearance, Motion("spin", 0.3, 0.0)))
    with pytest.raises(ValueError, match="unknown motion"):
        sample_factors(np.random.default_rng(0), motion="spin")
    bad_shape = ShapeSpec("hexagon", "red", 0.2, 0.5, 0.5, 0.0)
    with pytest.raises(ValueError, match="unknown shape"):
        render_video(VideoFactors(Appearance("blue", (bad_shape,)), factors.motion))


def test_appearance_swap():
    a = sample_factors(np.random.default_rng(10), num_shapes=1, motion="left")
    b = sample_factors(np.random.default_rng(11), num_shapes=1, motion="down")
    swapped = VideoFactors(a.appearance, b.motion)
    video = render_video(swapped)
    # frame 0 shows A's colours: background in a corner-most pixel, the shape at its centre
    frame = video[:, 0]
    background = _rgb(a.appearance.background)
    corners = frame[:, [0, 0, -1, -1], [0, -1, 0, -1]].T  # (4, 3)
    assert (corners - background).abs().amax(1).min() < 1e-3
    colors = frame.reshape(3, -1).T  # (H*W, 3)
    assert (colors - _rgb(a.appearance.shapes[0].color)).abs().amax(1).min() < 1e-3
    # ... and moves like B: down, not left
    cx, cy, _ = _stats(video, swapped)
    assert cy[-1] - cy[0] > 3 and abs(cx[-1] - cx[0]) < 1
    assert not torch.equal(video, render_video(a))


def test_swap_targets_pair_each_video_with_the_next_ones_motion():
    data = MovingShapes(num_videos=10, num_frames=8, height=16, width=16)
    factors = [data[i]["factors"] for i in range(3)]
    targets = render_swapped(factors, 8, 16, 16)
    assert targets.shape == (3, 3, 8, 16, 16)
    for i, j in ((0, 1), (1, 2), (2, 0)):  # the last takes the first one's motion
        expected = VideoFactors(data.factors(i).appearance, data.factors(j).motion)
        assert torch.equal(targets[i], render_video(expected, 8, 16, 16))
    with pytest.raises(ValueError, match="at least 2"):
        render_swapped(factors[:1], 8, 16, 16)


def test_non_square_and_other_sizes():
    factors = sample_factors(np.random.default_rng(4), num_shapes=1, motion="right")
    video = render_video(factors, num_frames=8, height=24, width=40)
    assert video.shape == (3, 8, 24, 40)
    cx, cy, _ = _stats(video, factors)
    assert cx[-1] - cx[0] > 3
    ds = MovingShapes(num_videos=2, num_frames=4, height=8, width=16, max_shapes=3, textured=True)
    assert ds[0]["video"].shape == (3, 4, 8, 16)


def test_textured_background_is_light_and_static():
    factors = sample_factors(np.random.default_rng(6), num_shapes=1, motion="grow")
    plain, textured = render_video(factors), render_video(factors, textured=True)
    diff = (textured - plain).abs()
    assert 0.02 < diff.max() < 0.3
    assert textured.min() >= -1.0 and textured.max() <= 1.0


@pytest.mark.parametrize("kind", SHAPES)
def test_anti_aliased_sub_pixel_rendering(kind):
    def centre_x(x: float) -> torch.Tensor:
        shape = ShapeSpec(kind, "white", 0.25, x, 0.5, 0.3)
        factors = VideoFactors(Appearance("black", (shape,)), Motion("left", 0.0, 0.0))
        video = render_video(factors, num_frames=1)
        cov = _coverage(video, factors)
        assert ((cov > 0.05) & (cov < 0.95)).sum() >= 8  # soft edge pixels
        return _stats(video, factors)[0][0]

    # a quarter-pixel shift moves the centre of mass by a quarter pixel
    shift = centre_x(0.5 + 0.25 / 32) - centre_x(0.5)
    assert shift == pytest.approx(0.25, abs=0.03)


# -- the worlds ----------------------------------------------------------------------------


@pytest.mark.parametrize("motion", MOTIONS)
def test_upright_world_keeps_every_shape_inside_the_frame(motion):
    from cmdvideo.data.moving_shapes import _trajectory

    rng = np.random.default_rng(20)
    for i in range(25):
        factors = sample_factors(rng, motion=motion, num_shapes=1 + i % 3)
        for shape in factors.appearance.shapes:
            left, right, top, bottom = trajectory_box(shape, factors.motion)
            assert 0 < left and right < 1 and 0 < top and bottom < 1, (shape, factors.motion)
        if len(factors.appearance.shapes) > 1:
            continue
        # in pixels: nothing is cut off, the shape's whole area is drawn in every frame
        shape = factors.appearance.shapes[0]
        _, _, size, _ = _trajectory(shape, factors.motion, np.linspace(0, 1, 16))
        area = _coverage(render_video(factors), factors).sum((1, 2))  # (T,)
        expected = torch.from_numpy(math.pi * (size * 32) ** 2).float()
        assert torch.allclose(area, expected, rtol=0.03), (area / expected).min()


def test_upright_world_sizes_and_the_random_world_is_kept():
    sizes = {n: [] for n in (1, 2)}
    for seed in range(300):
        factors = sample_factors(np.random.default_rng(seed), num_shapes=1 + seed % 2)
        sizes[len(factors.appearance.shapes)] += [s.size for s in factors.appearance.shapes]
        assert all(s.angle == 0 for s in factors.appearance.shapes)  # upright at mid-clip
    assert 0.22 <= min(sizes[1]) and max(sizes[1]) <= 0.32 and np.mean(sizes[1]) > 0.25
    assert np.mean(sizes[2]) > 0.15  # two shapes: as large as fits (the random world: 0.145)
    # the random world draws and renders exactly what it did before worlds existed
    old = MovingShapes(num_videos=5, seed=0, world="random")
    assert caption_for(old.factors(1)) == (
        "a black circle and a cyan triangle shrinking on an orange background"
    )
    assert old.factors(1).motion.speed == pytest.approx(0.41595082480754886, abs=1e-15)
    digest = hashlib.sha256(old[1]["video"].numpy().tobytes()).hexdigest()
    assert digest.startswith("e17faae9dde4097b")
    with pytest.raises(ValueError, match="world"):
        MovingShapes(world="tilted")
    assert WORLDS == ("upright", "random")


def test_upright_squares_are_axis_aligned_and_rotation_is_visible():
    square = ShapeSpec("square", "red", 0.27, 0.5, 0.5, 0.0)
    still = render_video(VideoFactors(Appearance("blue", (square,)), Motion("left", 0.0)))
    cov = _coverage(still, VideoFactors(Appearance("blue", (square,)), Motion("left", 0.0)))[0]
    rows = (cov > 0.5).sum(1)
    assert rows.max() == rows[rows > 0].min()  # every covered row equally wide: axis-aligned
    rng = np.random.default_rng(3)
    for _ in range(10):
        factors = sample_factors(rng, num_shapes=1, motion="rotate")
        turn = math.degrees(2.0 * factors.motion.speed)  # _ROTATION_RATE * speed, in all
        assert 50 <= turn <= 70
        if factors.appearance.shapes[0].kind == "circle":
            continue
        video = render_video(factors)
        cov = _coverage(video, factors)
        first, middle, last = cov[0] > 0.5, cov[8] > 0.5, cov[-1] > 0.5
        # turned enough that a person sees it: a fifth of the pixels change between the ends
        assert (first ^ last).sum() > 0.2 * first.sum()
        assert (first ^ middle).sum() > 0.1 * first.sum()
