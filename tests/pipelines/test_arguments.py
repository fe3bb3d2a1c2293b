"""The one table of generation arguments and the one error type every front end renders."""

import math
import pickle

import numpy as np
import pytest

from cmdvideo.pipelines.arguments import (
    ARGUMENTS,
    InvalidArgument,
    PipelineSpec,
    check_arguments,
)

SPEC = PipelineSpec(class_names=("left", "right"), num_classes=2, clip_frames=16, max_steps=1000)


def test_an_error_names_its_argument_as_each_front_end_calls_it():
    err = InvalidArgument("class_labels", ": 2 prompts but 3 class labels; give one {class_labels}")
    assert err.arg == "class_labels" and isinstance(err, ValueError)
    assert str(err) == "class_labels: 2 prompts but 3 class labels; give one class_labels"
    assert err.render({"class_labels": "Class"}) == (
        "Class: 2 prompts but 3 class labels; give one Class"
    )
    assert err.render(lambda arg: "--" + arg.replace("_", "-")).startswith("--class-labels: 2")
    again = pickle.loads(pickle.dumps(err))  # e.g. from a worker process
    assert (again.arg, again.message, str(again)) == (err.arg, err.message, str(err))


@pytest.mark.parametrize(
    "values, arg",
    [
        (dict(num_inference_steps=True), "num_inference_steps"),  # a bool is not a count
        (dict(num_inference_steps=2.0), "num_inference_steps"),
        (dict(guidance_scale=math.nan), "guidance_scale"),
        (dict(guidance_scale=math.inf), "guidance_scale"),
        (dict(guidance_scale="3"), "guidance_scale"),
        (dict(num_frames=1025), "num_frames"),
        (dict(prompt=["a red circle", ""]), "prompt"),
        (dict(prompt=3), "prompt"),
        (dict(class_labels=[0, 2]), "class_labels"),
        (dict(class_labels="up"), "class_labels"),
        (dict(class_labels=1.5), "class_labels"),
        (dict(edit="colour"), "edit"),
        (dict(sampler="heun"), "sampler"),
        (dict(prompt=["a", "b"], class_labels=[0, 1, 0]), "class_labels"),
        (dict(overlap=4), "overlap"),
        (dict(num_frames=32, overlap=16), "overlap"),
    ],
)
def test_out_of_bound_values_are_refused_by_name(values, arg):
    with pytest.raises(InvalidArgument) as refused:
        check_arguments(SPEC, **values)
    assert refused.value.arg == arg


def test_in_bound_values_and_defaults_pass():
    check_arguments(
        SPEC,
        prompt=["a red circle"] * 2,
        class_labels=np.array([0, 1]),
        num_inference_steps=np.int64(1000),
        guidance_scale=0,
        guidance_rescale=1.0,
        num_frames=1024,
        overlap=15,
        seed=2**31 - 1,
        upscale=16,
        sampler="dpm",
        edit="both",
        strength=None,
        image=None,
    )
    check_arguments(SPEC, class_labels="right")
    check_arguments(None, num_inference_steps=5000)  # no pipeline: its schedule is not known


def test_caps_lower_a_bound_and_say_whose_it_is():
    with pytest.raises(InvalidArgument, match=r"\[1, 64\] on this server, got 65"):
        check_arguments(SPEC, {"num_frames": 64}, num_frames=65)
    check_arguments(SPEC, {"num_frames": 64}, num_frames=64)


def test_names_outside_the_table_are_a_programming_error():
    with pytest.raises(TypeError, match="unknown arguments"):
        check_arguments(SPEC, steps=3)
    assert {"prompt", "num_frames", "seed", "image", "video"} <= set(ARGUMENTS)
