"""Free paths: parsing and checking waypoints, drawing them, path videos in the world, and the
tracker that measures how closely a video follows one."""

import numpy as np
import pytest
import torch

from cmdvideo.data.moving_shapes import MovingShapes, VideoFactors, render_video
from cmdvideo.data.paths import (
    HELD_OUT_FAMILIES,
    TRAINING_FAMILIES,
    draw_path,
    parse_path,
    path_track,
)
from cmdvideo.data.shape_world import centres, sample_path_factors
from cmdvideo.evaluation.path_check import path_error, shape_centres


def test_a_path_parses_and_spreads_evenly_over_the_clip():
    points = parse_path("0.1,0.2 0.9,0.2 0.9,0.8")
    assert points.shape == (3, 2)
    track = path_track(points, 5)
    np.testing.assert_allclose(track[0], [0.1, 0.2])
    np.testing.assert_allclose(track[2], [0.9, 0.2])  # the middle waypoint at mid-clip
    np.testing.assert_allclose(track[1], [0.5, 0.2])  # straight in between
    np.testing.assert_allclose(track[-1], [0.9, 0.8])


@pytest.mark.parametrize(
    "text, says",
    [
        ("0.5,0.5", "at least two"),
        ("0.1,0.2 1.3,0.4", "in [0, 1]"),
        ("0.1,0.2 -0.1,0.4", "in [0, 1]"),
        ("left then up", "must be points"),
        ("0.1,0.2,0.3 0.4,0.5", "must be points"),
        ("", "must be points"),
        ("0.1,nan 0.2,0.2", "in [0, 1]"),
    ],
)
def test_bad_paths_are_refused_naming_the_flag(text, says):
    with pytest.raises(ValueError, match="--path") as err:
        parse_path(text)
    assert says in str(err.value)


@pytest.mark.parametrize("family", sorted({*TRAINING_FAMILIES, *HELD_OUT_FAMILIES}))
def test_drawn_paths_stay_inside_the_frame_and_move(family):
    rng = np.random.default_rng(0)
    for _ in range(20):
        points = draw_path(rng, family, radius=0.25)
        assert points.min() >= 0.02 + 0.25 - 1e-9 and points.max() <= 1 - 0.27 + 1e-9
        assert np.ptp(points, axis=0).max() >= 0.25


def test_unknown_family_names_the_families():
    with pytest.raises(ValueError, match="unknown path family 'zig'.*arc"):
        draw_path(np.random.default_rng(0), "zig")


def test_a_path_video_follows_its_path_and_round_trips():
    rng = np.random.default_rng(3)
    factors = sample_path_factors(rng, "turn")
    assert factors.label == -1 and factors.motion.name == "path"
    assert VideoFactors.from_dict(factors.to_dict()) == factors
    track = path_track(factors.motion.path, 16)
    np.testing.assert_allclose(centres(factors, 16), track, atol=1e-6)
    video = render_video(factors, 16, 32, 32)
    assert path_error(video, track) < 0.02  # the tracker sees it on the path
    assert path_error(video, track[::-1]) > 0.05  # and not on the path run backwards


def test_the_tracker_counts_a_vanished_shape_as_far_off():
    factors = sample_path_factors(np.random.default_rng(4), "arc")
    video = render_video(factors, 16, 32, 32)
    track = centres(factors, 16)
    blank = video.clone()
    blank[:, 8:] = video[:, :1, :1, :1]  # the background colour: no shape in later frames
    assert np.isnan(shape_centres(blank)[8:]).all()
    assert path_error(blank, track) > path_error(video, track) + 0.2


def test_paths_in_the_dataset_leave_the_other_videos_as_they_were():
    plain, mixed = MovingShapes(24, seed=5), MovingShapes(24, seed=5, paths=0.5)
    labels = [mixed[i]["label"] for i in range(24)]
    assert 4 <= labels.count(-1) <= 20
    for i in range(24):
        item = mixed[i]
        assert item["centres"].shape == (16, 2)
        if item["label"] == -1:
            assert item["caption"].endswith("background") and "  " not in item["caption"]
            assert " on " in item["caption"] and "moving" not in item["caption"]
        else:
            assert torch.equal(item["video"], plain[i]["video"])
    with pytest.raises(ValueError, match="paths must be a fraction"):
        MovingShapes(4, paths=1.5)
