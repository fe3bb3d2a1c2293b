"""`cmdvideo teach` and adapters: a tiny teach on the bundled pipeline writes a small adapter in
diffusers' LoRA layout; loading it adds its words and changes what they draw, two combine,
unloading gives the base back bit for bit; bad input is one clear error; an interrupted teach
resumes to the same adapter."""

import json
import types

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from cmdvideo.cli import main
from cmdvideo.config import load_config
from cmdvideo.data.video_io import write_video
from cmdvideo.pipelines.adapters import (
    ADAPTER_FILE,
    LORA_FILE,
    WORDS_FILE,
    base_fingerprint,
)
from cmdvideo.pipelines.cmd import CMDPipeline
from cmdvideo.training.teach import TeachStage, teach

TINY = [
    "teach.prior_videos=8",
    "teach.clips_per_video=1",
    "train.batch_size=4",
    "train.warmup_steps=1",
    "train.checkpoint_every=2",
]
COLORS = {"red": (220, 40, 40), "blue": (40, 80, 220), "white": (245, 245, 245)}


def bar_clip(color: str, background: str, shift: int) -> np.ndarray:
    """uint8 (16, 32, 32, 3): a wide bar sliding sideways (a shape the world does not have)."""
    video = np.empty((16, 32, 32, 3), np.uint8)
    video[:] = COLORS[background]
    for t in range(16):
        x = 6 + (t * shift) // 4
        video[t, 13:19, x : x + 16] = COLORS[color]
    return video


def write_clips(root, word="bar", count=4, caption=None):
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(count):
        color, background = (("red", "white"), ("blue", "white"))[i % 2]
        write_video(root / f"clip-{i}.mp4", bar_clip(color, background, 1 + i % 2))
        text = caption or f"a {color} {word} moving right on a {background} background"
        rows.append(json.dumps({"path": f"clip-{i}.mp4", "caption": text}))
    (root / "index.jsonl").write_text("\n".join(rows) + "\n")
    return root


def teach_cli(data, out, *more, steps="2"):
    argv = ["teach", "--data", str(data), "--out", str(out), "--steps", steps, "--threads", "1"]
    for item in TINY:
        argv += ["--set", item]
    return main(argv + list(more))


@pytest.fixture(scope="module")
def base():
    pipe = CMDPipeline.from_pretrained("moving-shapes-tiny")
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    root = tmp_path_factory.mktemp("teach")
    assert teach_cli(write_clips(root / "clips"), root / "bar", "--stage", "both") == 0
    return root / "bar"


def frames(pipe, prompt, seed=0):
    out = pipe(prompt, generator=torch.Generator().manual_seed(seed), output_type="pt")
    return out.frames


def test_the_adapter_folder_is_small_and_in_diffusers_layout(adapter, base):
    meta = json.loads((adapter / ADAPTER_FILE).read_text())
    assert meta["words"] == {"bar": ["motion_text_encoder", "text_encoder"]}
    assert meta["base"]["fingerprint"] == base_fingerprint(base)
    assert set(meta["lora"]) == {"content", "motion"}
    layers = load_file(str(adapter / LORA_FILE))
    assert layers and all(".lora_A." in k or ".lora_B." in k for k in layers)
    assert {k.split(".")[0] for k in layers} == {"content_model", "motion_model"}
    words = load_file(str(adapter / WORDS_FILE))
    assert set(words) == {"text_encoder.bar", "motion_text_encoder.bar"}
    size = sum(p.stat().st_size for p in adapter.iterdir() if p.is_file())
    assert size < 2_000_000
    assert not (adapter / "teaching" / "checkpoints").exists()  # finished: nothing to resume
    assert load_config(adapter / "teaching" / "config.yaml").train.max_steps == 2


def test_loading_adds_the_words_and_unloading_gives_the_base_back_exactly(adapter, base):
    prompt = "a red bar moving right on a white background"
    known = "a red circle moving left on a blue background"
    before = frames(base, known)
    base.load_lora_weights(adapter)
    try:
        assert base.adapter_words() == {"bar": "bar"}
        assert base.text_encoder.unknown_words([prompt]) == []
        taught = frames(base, prompt)
    finally:
        base.unload_lora_weights()
    assert base.loaded_adapters() == [] and base.text_encoder.unknown_words([prompt]) == ["bar"]
    assert not torch.equal(taught, frames(base, prompt))  # the word and the layers act
    assert torch.equal(frames(base, known), before)  # the base, bit for bit


def test_two_adapters_combine_and_one_can_be_deleted(adapter, base, tmp_path):
    clips = write_clips(tmp_path / "clips", word="wiggling", count=4)
    assert teach_cli(clips, tmp_path / "wiggle", "--stage", "motion") == 0
    base.load_lora_weights(adapter, adapter_name="bar")
    base.load_lora_weights(tmp_path / "wiggle", scale=0.5)
    try:
        assert base.adapter_words() == {"bar": "bar", "wiggling": "wiggle"}
        assert base.get_list_adapters()["motion_model"] == ["bar", "wiggle"]
        assert set(base.get_active_adapters()) == {"bar", "wiggle"}
        video = frames(base, "a blue bar wiggling on a white background")
        assert video.shape == (1, 16, 3, 32, 32)
        base.delete_adapters("wiggle")
        assert base.adapter_words() == {"bar": "bar"}
    finally:
        base.unload_lora_weights()


def test_an_adapter_is_refused_on_another_base_and_a_word_twice(adapter, base, tmp_path):
    other = CMDPipeline.from_pretrained("moving-shapes-tiny")
    with torch.no_grad():
        other.content_model.conv_in.weight.add_(0.01)
    with pytest.raises(ValueError, match=r"taught on moving-shapes-tiny \(.*this pipeline is"):
        other.load_lora_weights(adapter)
    base.load_lora_weights(adapter, adapter_name="first")
    try:
        with pytest.raises(ValueError, match="'bar' comes with two adapters, 'first' and 'again'"):
            base.load_lora_weights(adapter, adapter_name="again")
    finally:
        base.unload_lora_weights()


def test_bad_teaching_data_is_one_clear_error(tmp_path, capsys):
    few = write_clips(tmp_path / "few", count=2)
    assert teach_cli(few, tmp_path / "a") == 2
    assert "2 readable clip(s)" in capsys.readouterr().err
    known = write_clips(
        tmp_path / "known", caption="a red square moving right on a white background"
    )
    assert teach_cli(known, tmp_path / "b") == 2
    err = capsys.readouterr().err
    assert "no word the model does not know" in err and "triangle" in err
    assert teach_cli(tmp_path / "missing", tmp_path / "c") == 2
    assert "--data" in capsys.readouterr().err
    broken = write_clips(tmp_path / "broken", count=5)
    (broken / "clip-4.mp4").write_text("not a video")
    assert teach_cli(broken, tmp_path / "d") == 0
    out = capsys.readouterr().out
    assert "skipped" in out and "clip-4.mp4" in out
    taught_on = json.loads((tmp_path / "d" / ADAPTER_FILE).read_text())["taught_on"]
    assert taught_on["clips"] == 4 and "clip-4.mp4" in json.dumps(taught_on["skipped"])


def test_the_lora_flag_loads_adapters_and_refuses_a_wrong_folder(adapter, tmp_path, capsys):
    out = tmp_path / "samples"
    argv = [
        "sample",
        "--lora",
        f"{adapter}:0.8",
        "--prompt",
        "a red bar moving right on a white background",
        "--out",
        str(out),
        "--threads",
        "1",
        "--steps",
        "2",
    ]
    assert main(argv) == 0
    assert (out / "video-000.mp4").is_file()
    with pytest.raises(SystemExit):
        main(["sample", "--lora", str(tmp_path), "--prompt", "a red bar", "--out", str(out)])
    assert "not an adapter folder" in capsys.readouterr().err


def test_an_interrupted_teach_resumes_to_the_same_adapter(tmp_path, monkeypatch):
    clips = write_clips(tmp_path / "clips")
    config = load_config("teach", TINY + ["train.max_steps=4"])
    teach(clips, tmp_path / "whole", config)
    whole = load_file(str(tmp_path / "whole" / LORA_FILE))

    real, calls = TeachStage.objective, {"n": 0}

    def stop_at_step_3(self, modules, batch):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(self, modules, batch)

    monkeypatch.setattr(TeachStage, "objective", stop_at_step_3)
    with pytest.raises(KeyboardInterrupt):
        teach(clips, tmp_path / "cut", load_config("teach", TINY + ["train.max_steps=4"]))
    assert (tmp_path / "cut" / "teaching" / "checkpoints").is_dir()
    assert not (tmp_path / "cut" / LORA_FILE).exists()
    monkeypatch.setattr(TeachStage, "objective", real)
    config = load_config(tmp_path / "cut" / "teaching" / "config.yaml")
    teach(clips, tmp_path / "cut", config, resume=True)
    resumed = load_file(str(tmp_path / "cut" / LORA_FILE))
    assert whole.keys() == resumed.keys()
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)


def test_the_web_app_chooses_adapters_per_request(adapter):
    """`serve --lora`: the page lists the adapters with their words; a request may use them or
    not (none: the base's own video), and an adapter the server has not loaded is refused."""
    pytest.importorskip("gradio", reason="the app extra (gradio) is not installed")
    import gradio as gr

    from cmdvideo.app import AppHandlers, Limits, build_app

    values = dict(
        prompt="a red bar moving right on a white background",
        class_label="(none)",
        seed=0,
        steps=2,
        content_guidance=3.0,
        motion_guidance=3.0,
        sampler="dpm",
        num_frames=16,
    )
    plain = AppHandlers(CMDPipeline.from_pretrained("moving-shapes-tiny"), Limits())
    base_still = plain.generate(**values)[1]
    pipe = CMDPipeline.from_pretrained("moving-shapes-tiny")
    pipe.load_lora_weights(adapter)
    app = AppHandlers(pipe, Limits())
    assert "bar (bar)" in json.dumps(build_app(pipe).get_config_file())
    taught = app.generate(**values, adapters=["bar"])[1]
    assert np.array_equal(app.generate(**values, adapters=[])[1], base_still)
    assert not np.array_equal(taught, base_still)
    assert np.array_equal(app.generate(**values)[1], taught)  # left out: every loaded adapter
    with pytest.raises(gr.Error, match="not loaded"):
        app.generate(**values, adapters=["other"])


@pytest.mark.slow
def test_the_readme_teach_commands_run_as_written(tmp_path, monkeypatch):
    """README.md's "Teach it a new look or motion" block, in order, with only test sizes added
    (two steps, a small prior): the clips are rendered, taught and sampled with the adapter."""
    import re
    import shlex
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    text = (root / "README.md").read_text()
    section = text.split("\n## Teach it a new look or motion\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    commands = [shlex.split(line, comments=True) for line in block.splitlines() if line.strip()]
    assert [c[0] for c in commands] == ["python", "cmdvideo", "cmdvideo"]
    monkeypatch.chdir(tmp_path)
    script = [sys.executable, str(root / commands[0][1]), *commands[0][2:]]
    assert subprocess.run(script, capture_output=True, timeout=300).returncode == 0
    teach_argv = commands[1][1:] + ["--steps", "2", "--threads", "1"]
    for item in TINY:
        teach_argv += ["--set", item]
    assert main(teach_argv) == 0
    assert main(commands[2][1:] + ["--threads", "1", "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "video-000.mp4").is_file()
    assert json.loads((tmp_path / "adapters/bar" / ADAPTER_FILE).read_text())["words"]["bar"]


def test_the_clips_own_rows_lose_their_prompt_only_when_asked():
    """Condition dropout: the world's rows as the base learned them (text dropped with the class
    at 10 %, or one of the two); the clips' rows (no class) keep their text unless
    ``teach.clip_dropout`` asks, then lose it at that rate."""
    torch.manual_seed(0)
    labels = torch.cat([torch.full((2000,), -1), torch.randint(0, 10, (2000,))])
    prior = torch.arange(4000) >= 2000
    for rate in (0.0, 0.5):
        stage = types.SimpleNamespace(cfg=types.SimpleNamespace(clip_dropout=rate))
        drop_class, drop_text = TeachStage._drops(stage, labels, prior)
        assert drop_class[~prior].all()  # the clips have no class
        assert abs(drop_text[~prior].float().mean().item() - rate) < 0.04
        assert 0.35 < drop_text[prior].float().mean().item() < 0.45  # 1/3 + 0.1 * 2/3
