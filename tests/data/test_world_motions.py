"""A motion of the world is one object (`cmdvideo.data.motions`): registering one new
`WorldMotion`, written in this file alone, is enough for sampling, rendering, captions, prompt
parsing and the hand-written check to know it."""

import math

import numpy as np
import pytest

from cmdvideo.data import motions
from cmdvideo.data.moving_shapes import (
    MOTIONS,
    MovingShapes,
    caption_for,
    parse_caption,
    render_video,
)
from cmdvideo.data.shape_world import sample_factors
from cmdvideo.evaluation.motion_check import classify_motion


class Zigzag(motions.WorldMotion):
    """A sideways drift while the shape goes down, up, down and up again (a W)."""

    def state(self, x, y, size, angle, motion, s):
        return x + motion.speed * (s - 0.5), y + 0.1 * np.cos(4 * math.pi * s), size, angle

    def seen(self, features):  # sideways, with more way up and down than the net vertical move
        return abs(features["dx"]) > 0.12 and min(features["y_up"], features["y_down"]) > 0.1


@pytest.fixture
def zigzag():
    motion = Zigzag("zigzag", "zigzagging", speeds=(0.25, 0.35, 0.2), check_rank=30)
    label = motions.register(motion)
    try:
        yield label
    finally:
        motions.unregister("zigzag")


def test_a_registered_motion_is_sampled_drawn_captioned_parsed_and_checked(zigzag):
    assert zigzag == len(MOTIONS)  # after the ten: their class ids stay
    world = MovingShapes(num_videos=12, num_frames=16, height=32, width=32, seed=0, max_shapes=1)
    assert world.classes[-1] == "zigzag"
    factors = sample_factors(np.random.default_rng(0), num_shapes=1, motion="zigzag")
    assert factors.label == zigzag
    caption = caption_for(factors)
    assert caption.endswith(" zigzagging on " + caption.split(" on ")[-1])
    assert parse_caption(caption)["motion"] == "zigzag"
    seen = []
    for seed in range(8):
        factors = sample_factors(np.random.default_rng(seed), num_shapes=1, motion="zigzag")
        video = render_video(factors, num_frames=16, height=32, width=32)
        seen.append(classify_motion(video))
    assert seen.count("zigzag") >= 7, seen
    # the world's own motions are still read as before
    left = sample_factors(np.random.default_rng(1), num_shapes=1, motion="left")
    assert classify_motion(render_video(left, num_frames=16, height=32, width=32)) == "left"


def test_the_worlds_motions_are_kept_and_names_stay_unique(zigzag):
    with pytest.raises(ValueError, match="already has a motion"):
        motions.register(Zigzag("zigzag", "zagging"))
    with pytest.raises(ValueError, match="one of the world's own motions"):
        motions.unregister("left")
    with pytest.raises(ValueError, match="unknown motion 'spin'.*zigzag"):
        sample_factors(np.random.default_rng(0), motion="spin")


def test_the_ten_motions_keep_their_class_ids_and_phrases():
    assert MOTIONS == motions.motion_names()
    assert MOTIONS[:4] == ("left", "right", "up", "down") and MOTIONS[-1] == "bounce"
    assert parse_caption("a blue square moving up and left on a yellow background")["motion"] == (
        "up-left"
    )
    assert parse_caption("a red circle moving up on a blue background")["motion"] == "up"
