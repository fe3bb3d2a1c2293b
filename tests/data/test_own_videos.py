"""Training on your own videos as the README says: its commands run as written on a flat folder
of clips and end in a pipeline that samples at the autoencoder's size; settings follow the
autoencoder and the data, explicit contradictions are errors; evaluation says what it measured
on; the held-out split; the time estimate."""

import json
import logging
import re
import shlex
from pathlib import Path

import pytest
import torch
from conftest import write_test_video

from cmdvideo.cli import main
from cmdvideo.config import load_config
from cmdvideo.data import build_train_and_eval, evaluation_set
from cmdvideo.data.latent_cache import LatentCache
from cmdvideo.data.video_folder import VideoFolder
from cmdvideo.data.video_io import read_video
from cmdvideo.training.follow import (
    explicit_settings,
    follow_autoencoder,
    follow_data,
)
from cmdvideo.training.loop_utils import format_duration

README = Path(__file__).resolve().parents[2] / "README.md"

# What the test adds to the README's commands: a small, fast autoencoder (the later stages take
# its 8 frames and 64x64 from it), one or two steps, batches the few clips can fill.
TEST_SIZE = {
    "autoencoder": [
        "data.num_frames=8",
        "train.batch_size=2",
        "train.preview_every=1",
        "autoencoder.overrides.hidden_size=32",
        "autoencoder.overrides.encoder_depth=1",
        "autoencoder.overrides.decoder_depth=1",
        "autoencoder.overrides.num_heads=2",
        "autoencoder.overrides.patch_size=8",
    ],
    "content": ["train.batch_size=2", "train.preview_every=1", "content.preview_steps=2"],
    "motion": [
        "train.batch_size=2",
        "train.preview_every=1",
        "motion.preview_steps=2",
        "motion.overrides.hidden_size=32",
        "motion.overrides.depth=1",
    ],
}


def readme_own_video_commands() -> list[list[str]]:
    """The `cmdvideo` commands of the README's "Training on your own videos" block, as argv."""
    text = README.read_text()
    section = text[text.index("## Training on your own videos") :]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    block = block.replace("\\\n", " ")
    commands = []
    for line in block.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            argv = shlex.split(line)
            assert argv[0] == "cmdvideo", line
            commands.append(argv[1:])
    return commands


def make_clip_folder(root: Path, names=("a", "b", "c", "d", "e")) -> Path:
    """A flat folder of short clips of another size than the model's (decoded, resized, cropped)."""
    for i, name in enumerate(names):
        write_test_video(root / f"{name}.mp4", 12 + 2 * i, size=(72, 96))
    return root


def in_tmp(argv: list[str], tmp_path: Path, clips: Path) -> list[str]:
    """The README's paths moved under tmp_path (my_clips/ -> the test's clips)."""
    out = []
    for arg in argv:
        if arg.rstrip("/") == "my_clips":
            arg = str(clips)
        elif arg.startswith(("runs/", "outputs/")):
            arg = str(tmp_path / arg)
        out.append(arg)
    return out


def with_sets(argv: list[str], sets: list[str]) -> list[str]:
    for item in sets:
        argv = argv + ["--set", item]
    return argv


@pytest.mark.slow
def test_readme_steps_run_as_written_on_a_flat_folder_and_sample_at_64(tmp_path, capsys, caplog):
    """Acceptance: every command of the README's block, in order, with only test sizes added
    (one step, a small autoencoder): a flat folder trains unconditional (said in the log), the
    cache and both diffusion stages take the autoencoder's 64x64 (the tiny preset says 32x32),
    `eval autoencoder` measures on the held-out file and says so, and the assembled pipeline
    samples 64x64 videos."""
    caplog.set_level(logging.INFO)
    clips = make_clip_folder(tmp_path / "my_clips")
    commands = readme_own_video_commands()
    verbs = [
        " ".join(argv[:2]) if argv[0] in ("train", "pipeline", "eval") else argv[0]
        for argv in commands
    ]
    assert verbs == [
        "train autoencoder",
        "eval autoencoder",
        "cache",
        "train content",
        "train motion",
        "pipeline assemble",
        "sample",
    ]
    outputs = {}
    for argv, verb in zip(commands, verbs):
        argv = in_tmp(argv, tmp_path, clips)
        if verb.startswith("train"):
            argv = with_sets(argv + ["--max-steps", "1"], TEST_SIZE[argv[1]])
        if verb == "sample":
            argv += ["--upscale", "1", "--steps", "2"]
        if verb != "pipeline assemble":
            argv += ["--threads", "1"]
        assert main(argv) == 0, (verb, capsys.readouterr().err)
        outputs[verb] = capsys.readouterr().out
    log = "\n".join(r.getMessage() for r in caplog.records)
    # defaults follow the data: unconditional, said once per stage
    for stage in ("content", "motion"):
        assert f"{stage}: training unconditional" in log
        saved = load_config(tmp_path / f"runs/{stage}/config.yaml")
        assert getattr(saved, stage).condition == "none"
    # sizes follow the autoencoder
    assert "8 frames of 64x64, as the autoencoder" in log
    index = json.loads((tmp_path / "runs/cache/cache.json").read_text())
    assert index["content_shape"] == [3, 64, 64] and index["heldout_items"] == 1
    # held-out evaluation, labelled
    assert "1 held-out file, never trained on" in outputs["eval autoencoder"]
    # the pipeline samples at the autoencoder's size
    assert "(8 frames, 64x64)" in outputs["sample"]
    video = read_video(tmp_path / "outputs/mine/video-000.mp4")
    assert video.shape == (8, 64, 64, 3)


def folder_dataset(root, **kwargs):
    return VideoFolder(root, num_frames=8, height=16, width=16, **kwargs)


def test_conditions_follow_the_data_and_explicit_ones_must_be_there(tmp_path, caplog):
    """Flat folder -> none (one logged line), class folders -> class, captions -> text, both ->
    the config's class+text; the config's choice is kept where the data allows it; an explicit
    --set asking for what the data lacks is an error naming it."""
    caplog.set_level(logging.INFO)
    flat = make_clip_folder(tmp_path / "flat", names=("a", "b"))
    for cls in ("jump", "run"):
        write_test_video(tmp_path / "ucf" / cls / f"v_{cls}.mp4", 10)
    rows = [
        {"path": f"flat/{n}.mp4", "caption": f"clip {n}", "label": lab}
        for n, lab in (("a", "x"), ("b", "y"))
    ]
    (tmp_path / "both.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    rows = [{"path": r["path"], "caption": r["caption"]} for r in rows]
    (tmp_path / "captions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cases = {
        "flat": (flat, "class+text", "none"),
        "ucf": (tmp_path / "ucf", "class+text", "class"),
        "captions": (tmp_path / "captions.jsonl", "class+text", "text"),
        "both": (tmp_path / "both.jsonl", "class+text", "class+text"),
        "both, config text": (tmp_path / "both.jsonl", "text", "text"),
        "captions, config class": (tmp_path / "captions.jsonl", "class", "text"),
        "ucf, config none": (tmp_path / "ucf", "none", "none"),
    }
    for name, (source, configured, expected) in cases.items():
        config = load_config("tiny", [f"content.condition={configured}"])
        follow_data(config, "content", folder_dataset(source), explicit=set())
        assert config.content.condition == expected, name
    assert sum("content: training unconditional" in r.getMessage() for r in caplog.records) == 1
    for source, condition, missing in [
        (flat, "class", "no class labels"),
        (flat, "text", "no captions"),
        (tmp_path / "ucf", "class+text", "no captions"),
    ]:
        config = load_config("tiny", [f"motion.condition={condition}"])
        with pytest.raises(
            ValueError, match=f"motion.condition={re.escape(condition)} but the data has {missing}"
        ):
            follow_data(config, "motion", folder_dataset(source), {"motion.condition"})
    config = load_config("tiny", ["motion.condition=class"])  # explicit and there: kept
    follow_data(config, "motion", folder_dataset(tmp_path / "ucf"), {"motion.condition"})
    assert config.motion.condition == "class"


def fake_autoencoder_run(root: Path, *sets: str) -> Path:
    """What the later stages read of an autoencoder run: its config.yaml (and autoencoder/)."""
    (root / "autoencoder").mkdir(parents=True)
    load_config("tiny", list(sets)).save(root / "config.yaml")
    return root


def test_later_stages_take_the_autoencoders_data_settings(tmp_path, caplog):
    """Size, frames, stride and the held-out split come from the autoencoder run; the source
    and how files are read stay; an explicit size that differs is an error naming both."""
    caplog.set_level(logging.INFO)
    ae = fake_autoencoder_run(
        tmp_path / "ae",
        "data.height=64",
        "data.width=48",
        "data.num_frames=8",
        "data.frame_stride=2",
        "data.heldout_files=0.25",
        "data.decode_threads=4",
    )
    config = load_config("tiny", ["data.source=elsewhere"])
    follow_autoencoder(config, ae, explicit=set())
    data = config.data
    assert (data.num_frames, data.height, data.width, data.frame_stride) == (8, 64, 48, 2)
    assert data.heldout_files == 0.25 and data.source == "elsewhere" and data.decode_threads == 1
    assert "8 frames of 64x48, as the autoencoder" in caplog.text and "32x32" in caplog.text
    overrides = ["data.height=64", "data.frame_stride=1"]  # agrees / not a shape: both kept
    config = load_config("tiny", overrides)
    follow_autoencoder(config, ae / "autoencoder", explicit_settings(overrides))
    assert (config.data.height, config.data.frame_stride) == (64, 1)
    for overrides, message in [
        (["data.width=32"], "data.width=32 conflicts .*data.width=48 "),
        (["data.num_frames=16"], "num_frames=16 conflicts .*data.num_frames=8"),
    ]:
        config = load_config("tiny", overrides)
        with pytest.raises(ValueError, match=message):
            follow_autoencoder(config, ae, explicit_settings(overrides))


def test_a_cache_at_another_size_is_refused(tmp_path, capsys):
    """A latent cache made with an autoencoder at one size cannot train stages for another."""
    clips = make_clip_folder(tmp_path / "clips", names=("a", "b", "c"))
    small = [
        "data.num_frames=4",
        "train.batch_size=2",
        "train.preview_every=0",
        *TEST_SIZE["autoencoder"][3:7],
    ]
    for name, size in (("ae16", 16), ("ae32", 32)):
        argv = [
            "train",
            "autoencoder",
            "--data",
            str(clips),
            "--out",
            str(tmp_path / name),
            "--max-steps",
            "1",
            "--set",
            f"data.height={size}",
            "--set",
            f"data.width={size}",
        ]
        assert main(with_sets(argv, small)) == 0
    argv = [
        "cache",
        "--autoencoder",
        str(tmp_path / "ae16"),
        "--data",
        str(clips),
        "--out",
        str(tmp_path / "cache"),
    ]
    assert main(argv) == 0
    capsys.readouterr()
    argv = [
        "train",
        "motion",
        "--autoencoder",
        str(tmp_path / "ae32"),
        "--data",
        str(tmp_path / "cache"),
        "--out",
        str(tmp_path / "m"),
        "--max-steps",
        "1",
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "[3, 16, 16]" in err and "[3, 32, 32]" in err and "re-run `cmdvideo cache`" in err


def test_held_out_files_are_a_stable_part_of_the_folder(tmp_path):
    """A tenth of the files, at least one of two, never all; the same files whatever the
    listing order, for every seed a different choice; refused outside [0, 1)."""
    make_clip_folder(tmp_path / "v", names=[f"clip{i:02d}" for i in range(12)])
    full = folder_dataset(tmp_path / "v")
    train, held = full.split_files(0.1)
    assert (len(train), len(held)) == (11, 1) and (train.part, held.part) == (
        "training",
        "held-out",
    )
    assert not {s[0] for s in train.samples} & {s[0] for s in held.samples}
    shuffled = folder_dataset(tmp_path / "v")
    shuffled.samples = shuffled.samples[::-1]
    assert shuffled.split_files(0.1)[1].samples[0][0] == held.samples[0][0]
    chosen = {
        folder_dataset(tmp_path / "v", seed=s).split_files(0.25)[1].samples[0][0] for s in range(6)
    }
    assert len(chosen) > 1
    assert full.split_files(0) == (full, None)
    two = folder_dataset(make_clip_folder(tmp_path / "two", names=("a", "b")))
    assert [len(part) for part in two.split_files(0.1)] == [1, 1]
    assert [len(part) for part in two.split_files(0.9)] == [1, 1]  # never all
    one = folder_dataset(make_clip_folder(tmp_path / "one", names=("a",)))
    assert one.split_files(0.5) == (one, None)
    with pytest.raises(ValueError, match="heldout_files"):
        full.split_files(1.0)


def test_evaluation_says_what_it_measured_on(tmp_path):
    """The run's own folder: its held-out files, or, with none held out, its TRAINING files
    said as such; another folder: checked against the training files (a copy counts)."""
    clips = make_clip_folder(tmp_path / "clips")
    config = load_config("tiny", [f"data.source={clips}", "data.num_frames=8"])
    dataset, said = evaluation_set(config.data)
    assert said["split"] == "held-out" and said["detail"] == "1 held-out file, never trained on"
    assert len(dataset) == 1 and dataset.part == "held-out"
    train, _ = build_train_and_eval(config.data)
    assert dataset.samples[0][0] not in {s[0] for s in train.samples}
    _, said = evaluation_set(config.data, str(clips) + "/")  # the same folder, spelled otherwise
    assert said["split"] == "held-out"
    config.data.heldout_files = 0
    dataset, said = evaluation_set(config.data)
    assert said["split"] == "training" and "the 5 TRAINING files" in said["detail"]
    assert len(dataset) == 5
    other = make_clip_folder(tmp_path / "other", names=("x", "y"))
    _, said = evaluation_set(config.data, str(other))
    assert (
        said["split"] == "held-out" and said["detail"] == "2 files, none in the run's training data"
    )
    (other / "a.mp4").write_bytes((clips / "a.mp4").read_bytes())  # a copy of a training file
    _, said = evaluation_set(config.data, str(other))
    assert said["split"] == "mixed" and "1 of them in the run's training data" in said["detail"]
    config.data.source = "moving-shapes"
    _, said = evaluation_set(config.data)
    assert said["split"] == "held-out" and "eval_seed 1" in said["detail"]


def test_eval_autoencoder_prints_what_it_measured(tmp_path, capsys):
    clips = make_clip_folder(tmp_path / "clips", names=("a", "b", "c"))
    argv = [
        "train",
        "autoencoder",
        "--data",
        str(clips),
        "--out",
        str(tmp_path / "ae"),
        "--max-steps",
        "1",
    ]
    small = [
        "data.num_frames=4",
        "data.height=16",
        "data.width=16",
        "train.batch_size=2",
        "train.preview_every=0",
        *TEST_SIZE["autoencoder"][3:7],
    ]
    assert main(with_sets(argv, small)) == 0
    capsys.readouterr()
    assert main(["eval", "autoencoder", "--model", str(tmp_path / "ae"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert result["split"] == "held-out" and result["num_videos"] == 1
    assert (
        main(
            [
                "eval",
                "autoencoder",
                "--model",
                str(tmp_path / "ae"),
                "--data",
                str(clips),
                "--set",
                "data.heldout_files=0",
            ]
        )
        == 0
    )
    assert "the 3 TRAINING files" in capsys.readouterr().out


def test_cache_keeps_the_held_out_files_out_of_training(tmp_path):
    """The cache stores the training files first and records the held-out ones, which the
    diffusion stages then keep out of training and use for previews."""
    from cmdvideo.data import cache_order

    clips = make_clip_folder(tmp_path / "clips")
    config = load_config(
        "tiny", [f"data.source={clips}", "data.num_frames=8", "data.height=16", "data.width=16"]
    )
    dataset, heldout = cache_order(config.data)
    assert (len(dataset), heldout) == (5, 1)
    train, held = build_train_and_eval(config.data)
    assert dataset[4]["path"] == held[0]["path"]
    from cmdvideo.data.latent_cache import write_latent_cache
    from cmdvideo.models.autoencoder import CMDAutoencoder
    from cmdvideo.models.codec import VideoCodec

    ae = CMDAutoencoder(
        hidden_size=16, encoder_depth=1, decoder_depth=1, num_heads=2, motion_scaling_factor=1.0
    )
    write_latent_cache(VideoCodec(ae), dataset, tmp_path / "cache", heldout=heldout)
    cache = LatentCache(tmp_path / "cache")
    train, held = cache.split_items()
    assert (len(train), len(held), train.part, held.part) == (4, 1, "training", "held-out")
    assert torch.equal(held[0]["content"], cache[4]["content"]) and held[0]["index"] == 0


def test_training_prints_the_time_per_step_and_in_all(tmp_path, capsys):
    """After a first step and five timed ones: one line with seconds per step and the total,
    and an "estimate" record; a run too short for it prints none."""
    args = [
        "train",
        "autoencoder",
        "--config",
        "tiny",
        "--out",
        str(tmp_path / "a"),
        "--max-steps",
        "8",
        "--set",
        "data.num_frames=4",
        "--set",
        "data.height=16",
        "--set",
        "data.width=16",
        "--set",
        "train.batch_size=2",
        "--set",
        "train.preview_every=0",
    ]
    assert main(with_sets(args, TEST_SIZE["autoencoder"][3:7])) == 0
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if "s per step here" in ln]
    assert len(lines) == 1 and "8 steps take ~" in lines[0] and "--max-steps N" in lines[0]
    records = [
        json.loads(ln) for ln in (tmp_path / "a" / "metrics.jsonl").read_text().split("\n") if ln
    ]
    estimate = [r for r in records if r.get("event") == "estimate"]
    assert len(estimate) == 1 and estimate[0]["step"] == 6
    per_step = estimate[0]["seconds_per_step"]
    assert 0 < per_step and estimate[0]["expected_seconds"] == pytest.approx(8 * per_step, abs=0.06)
    args[args.index("8")] = "3"
    args[args.index(str(tmp_path / "a"))] = str(tmp_path / "b")
    assert main(with_sets(args, TEST_SIZE["autoencoder"][3:7])) == 0
    assert "s per step here" not in capsys.readouterr().err
    assert [format_duration(s) for s in (42, 720, 7 * 3600 + 300)] == [
        "42 s",
        "12 min",
        "7 h 05 min",
    ]


def test_training_with_loader_workers_runs_epochs_and_previews_as_without(tmp_path):
    """Two forked workers over a folder of clips, after the training process has decoded (the
    preview batch): the run ends through several epochs and previews, in its own process group
    (a hang fails at the timeout), and its losses equal a run without workers (the workers see
    every epoch's clips)."""
    import sys

    from conftest import run_isolated

    clips = make_clip_folder(tmp_path / "clips")
    losses = {}
    for workers in (0, 2):
        out = tmp_path / f"run-{workers}"
        argv = [
            sys.executable,
            "-m",
            "cmdvideo.cli",
            "train",
            "autoencoder",
            "--config",
            "tiny",
            "--data",
            str(clips),
            "--out",
            str(out),
            "--max-steps",
            "8",
            "--threads",
            "1",
        ]
        argv = with_sets(
            argv,
            TEST_SIZE["autoencoder"]
            + ["train.preview_every=3", "train.log_every=1", f"data.num_workers={workers}"],
        )
        done = run_isolated(argv, timeout=240)
        assert done.returncode == 0, done.stderr[-3000:]
        events = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
        assert sum(e.get("event") == "epoch_end" for e in events) >= 3  # 4 files, batch 2
        assert len(list((out / "previews").glob("step-*.png"))) >= 2
        losses[workers] = [e["loss"] for e in events if "loss" in e]
    assert len(losses[0]) == 8 and losses[0] == losses[2]
