"""The command line's thread rule reaches Python users: each generating call of a pipeline on a
CPU runs with the cores no other process keeps busy, unless the user chose torch's threads (or
the pipeline was told otherwise), and puts the number there was back afterwards."""

import pytest
import torch

import cmdvideo.pipelines.components as components
import cmdvideo.pipelines.sampling as sampling
import cmdvideo.runtime as runtime
from cmdvideo.pipelines.cmd import CMDPipeline

PROMPT = "a red circle moving left on a blue background"


@pytest.fixture(scope="module")
def pipe():
    pipe = CMDPipeline.from_pretrained("moving-shapes-tiny")
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture
def untouched(monkeypatch):
    """Torch's threads as a fresh process has them (its default: as many as its inter-op
    threads; no OMP_NUM_THREADS), a rule that asks for one more than that, and the threads each
    sampling call saw (a list); everything put back afterwards."""
    before = torch.get_num_threads()
    default = torch.get_num_interop_threads()
    torch.set_num_threads(default)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    readings = []

    def rule():
        readings.append(1)
        return default + 1

    monkeypatch.setattr(runtime, "default_threads", rule)
    monkeypatch.setattr(runtime, "_rule_reading", None)
    seen = []
    original = sampling.sample_content

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return original(*args, **kwargs)

    monkeypatch.setattr(sampling, "sample_content", spy)
    yield {"default": default, "seen": seen, "readings": readings}
    torch.set_num_threads(before)


def _generate(pipe):
    return pipe(PROMPT, num_inference_steps=1, generator=torch.Generator().manual_seed(0))


def test_a_call_uses_the_rule_and_puts_the_threads_back(pipe, untouched):
    assert pipe.threads == "auto"  # the default: no call needed
    _generate(pipe)
    _generate(pipe)
    assert untouched["seen"] == [untouched["default"] + 1] * 2
    assert torch.get_num_threads() == untouched["default"]
    assert len(untouched["readings"]) == 1  # the load is read once, then reused for 30 s


def test_threads_the_user_chose_are_kept(pipe, untouched, monkeypatch):
    torch.set_num_threads(untouched["default"] + 2)
    _generate(pipe)
    assert untouched["seen"] == [untouched["default"] + 2]
    torch.set_num_threads(untouched["default"])
    monkeypatch.setenv("OMP_NUM_THREADS", str(untouched["default"]))
    _generate(pipe)
    assert untouched["seen"][-1] == untouched["default"] and untouched["readings"] == []


def test_set_threads_overrides_the_rule(pipe, untouched):
    try:
        pipe.set_threads(3)
        _generate(pipe)
        pipe.set_threads(None)  # leave torch alone
        _generate(pipe)
        assert untouched["seen"] == [3, untouched["default"]] and untouched["readings"] == []
        with pytest.raises(ValueError, match="threads must be an integer >= 1"):
            pipe.set_threads(0)
    finally:
        pipe.set_threads()
    assert pipe.threads == "auto" and torch.get_num_threads() == untouched["default"]


def test_every_generating_method_applies_it(pipe, untouched, monkeypatch):
    video = _generate(pipe).frames[0]
    seen = []
    # where each method spends its time: reading videos, sampling motion
    for module, name in ((components, "prepare_video"), (sampling, "sample_motion")):
        original = getattr(module, name)

        def spy(*args, _original=original, **kwargs):
            seen.append(torch.get_num_threads())
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, name, spy)
    pipe.transfer_motion(video, video)  # two videos read
    pipe.edit_video(video, PROMPT, num_inference_steps=1)  # one read
    pipe.image_to_video(video[0], num_inference_steps=1)  # one motion sampled
    assert seen == [untouched["default"] + 1] * 4
    assert torch.get_num_threads() == untouched["default"]
