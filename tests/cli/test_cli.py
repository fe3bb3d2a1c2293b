"""The `cmdvideo` command as a user runs it."""

import json
import subprocess
import sys

import pytest
import torch

from cmdvideo.cli import main
from cmdvideo.data.moving_shapes import MOTIONS

SMALL = [
    "data.num_frames=8",
    "data.height=16",
    "data.width=16",
    "autoencoder.overrides.hidden_size=32",
    "autoencoder.overrides.encoder_depth=1",
    "autoencoder.overrides.decoder_depth=1",
    "autoencoder.overrides.num_heads=2",
    "train.log_every=1",
    "train.warmup_steps=1",
]


def with_sets(args, sets):
    for item in sets:
        args += ["--set", item]
    return args


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["train"],
        ["train", "autoencoder"],
        ["eval", "autoencoder"],
        ["data", "preview"],
        ["demo"],
    ],
)
def test_help_on_every_subcommand(argv):
    out = subprocess.run(
        [sys.executable, "-m", "cmdvideo.cli", *argv, "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0 and "usage: cmdvideo" in out.stdout


def test_train_then_eval_json(tmp_path, capsys):
    out = tmp_path / "ae"
    args = [
        "train",
        "autoencoder",
        "--config",
        "tiny",
        "--data",
        "moving-shapes",
        "--out",
        str(out),
        "--max-steps",
        "3",
    ]
    assert main(with_sets(args, SMALL + ["train.batch_size=2"])) == 0
    assert (out / "autoencoder" / "config.json").is_file()
    capsys.readouterr()
    assert main(["eval", "autoencoder", "--model", str(out), "--num-videos", "5", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["num_videos"] == 5 and result["video_shape"] == [3, 8, 16, 16]
    assert 0 < result["psnr"] < 100 and -1 <= result["ssim"] <= 1
    assert set(result["psnr_by_class"]) <= set(MOTIONS)
    # 3*8*16*16 video numbers vs 3*16*16 content + 4 motion channels... from the preset: D_m=8
    assert result["motion_latent_numbers"] == 8 * 8 * (4 + 4)
    assert result["compression_ratio"] == pytest.approx(6144 / (768 + 512))


def _train_then_fine_tune(tmp_path, steps: int, sets: list[str]):
    """Train a small autoencoder for 2 steps into tmp_path/ae, then `--init` from it for
    ``steps`` steps with ``sets`` into tmp_path/tuned; returns both folders."""
    first, second = tmp_path / "ae", tmp_path / "tuned"
    common = SMALL + ["train.batch_size=2", "train.preview_every=0"]
    args = ["train", "autoencoder", "--config", "tiny", "--out", str(first), "--max-steps", "2"]
    assert main(with_sets(args, common)) == 0
    args = [
        "train",
        "autoencoder",
        "--config",
        "tiny",
        "--out",
        str(second),
        "--max-steps",
        str(steps),
        "--init",
        str(first),
    ]
    assert main(with_sets(args, common + sets)) == 0
    return first, second


def test_autoencoder_fine_tunes_from_init_with_content_anchor(tmp_path):
    """`--init` starts from the trained weights (with a zero learning rate they come back
    unchanged) and `autoencoder.content_anchor` adds its logged term."""
    from cmdvideo.models.codec import VideoCodec

    first, second = _train_then_fine_tune(
        tmp_path, 2, ["train.learning_rate=0", "autoencoder.content_anchor=1.0"]
    )
    before = VideoCodec.from_pretrained(first).autoencoder.state_dict()
    after = VideoCodec.from_pretrained(second).autoencoder.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    records = [json.loads(ln) for ln in (second / "metrics.jsonl").read_text().splitlines()]
    anchors = [r["content_anchor"] for r in records if "loss" in r]
    assert len(anchors) == 2 and all(a > 0 for a in anchors)


def test_decoder_only_fine_tune_keeps_the_encoder_and_its_scale(tmp_path, capsys):
    """`autoencoder.freeze_encoder` with a refiner added by overrides: the encoder's weights
    and motion_scaling_factor come back unchanged (latents stay valid), the decoder moves."""
    from cmdvideo.models.codec import VideoCodec

    sets = [
        "train.learning_rate=0.01",
        "autoencoder.freeze_encoder=true",
        "autoencoder.overrides.refine_channels=4",
    ]
    first, second = _train_then_fine_tune(tmp_path, 3, sets)
    assert "motion_scaling_factor kept" in capsys.readouterr().out
    before = VideoCodec.from_pretrained(first).autoencoder
    after = VideoCodec.from_pretrained(second).autoencoder
    assert after.config.refine_channels == 4
    assert after.config.motion_scaling_factor == before.config.motion_scaling_factor
    old, new = before.state_dict(), after.state_dict()
    frozen = [k for k in old if k.split(".")[0] in ("patch_embed", "encoder", "content_head")]
    frozen += [k for k in old if k.startswith("motion_head")]
    assert frozen and all(torch.equal(old[k], new[k]) for k in frozen)
    assert not torch.equal(old["output_proj.weight"], new["output_proj.weight"])
    assert any(k.startswith("refiner.") for k in new)
    # overrides that change init's architecture, and freezing an untrained encoder: exit 2
    args = [
        "train",
        "autoencoder",
        "--config",
        "tiny",
        "--out",
        str(tmp_path / "x"),
        "--init",
        str(first),
        "--set",
        "autoencoder.overrides.hidden_size=16",
    ]
    assert main(args) == 2
    assert "change the architecture" in capsys.readouterr().err
    args = [
        "train",
        "autoencoder",
        "--config",
        "tiny",
        "--out",
        str(tmp_path / "y"),
        "--set",
        "autoencoder.freeze_encoder=true",
    ]
    assert main(args) == 2
    assert "freeze_encoder needs autoencoder.init" in capsys.readouterr().err


def test_swap_pair_loss_is_logged_and_needs_rendered_videos(tmp_path, make_video, capsys):
    """`autoencoder.swap_weight` adds the logged swap-pair term (decode(content of A, motion of
    B) against A's look moving as B) and moves the decoder with the encoder frozen; a source
    without factors (a video folder) and a negative weight are refused with a clear reason."""
    from cmdvideo.models.codec import VideoCodec

    sets = [
        "train.learning_rate=0.01",
        "autoencoder.freeze_encoder=true",
        "autoencoder.swap_weight=1.0",
    ]
    first, second = _train_then_fine_tune(tmp_path, 2, sets)
    records = [json.loads(ln) for ln in (second / "metrics.jsonl").read_text().splitlines()]
    swaps = [r["swap"] for r in records if "loss" in r]
    assert len(swaps) == 2 and all(s > 0 for s in swaps)
    old = VideoCodec.from_pretrained(first).autoencoder.state_dict()
    new = VideoCodec.from_pretrained(second).autoencoder.state_dict()
    assert torch.equal(old["patch_embed.weight"], new["patch_embed.weight"])
    assert not torch.equal(old["output_proj.weight"], new["output_proj.weight"])
    capsys.readouterr()
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in ("a", "b", "c"):  # one is held out (data.heldout_files), two make a batch
        make_video(folder / f"{name}.mp4", 12)
    base = ["train", "autoencoder", "--config", "tiny", "--max-steps", "1"]
    args = base + ["--out", str(tmp_path / "x"), "--data", str(folder)]
    assert main(with_sets(args, SMALL + ["train.batch_size=2", "autoencoder.swap_weight=1"])) == 2
    assert "swap_weight needs videos rendered from their factors" in capsys.readouterr().err
    args = base + ["--out", str(tmp_path / "y"), "--set", "autoencoder.swap_weight=-1"]
    assert main(args) == 2
    assert "autoencoder.swap_weight must be >= 0" in capsys.readouterr().err


def test_training_on_a_folder_with_bad_files(bad_video_folder, tmp_path, capsys, caplog):
    """Acceptance: good.mp4 trains; truncated, text-as-.mp4 and 3-frame files are skipped and
    reported with their reasons, in the log and in the metrics file."""
    out = tmp_path / "run"
    args = [
        "train",
        "autoencoder",
        "--data",
        str(bad_video_folder),
        "--out",
        str(out),
        "--max-steps",
        "2",
    ]
    assert main(with_sets(args, SMALL + ["train.batch_size=1", "train.preview_every=0"])) == 0
    warnings = "\n".join(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    for name, reason in [
        ("cut.mp4", "truncated"),
        ("notes.mp4", "unreadable"),
        ("short.mp4", "too short"),
    ]:
        assert sum(name in line and reason in line for line in warnings.splitlines()) == 1, warnings
    events = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    expected = {"truncated": 1, "unreadable": 1, "too short": 1, "compressed": 1}
    assert events[0]["event"] == "start" and events[0]["dataset_size"] == 1
    assert events[0]["skipped"] == expected
    epoch_ends = [e for e in events if e.get("event") == "epoch_end"]
    assert epoch_ends and all(e["skipped"] == expected for e in epoch_ends)
    assert "skipped files by reason" in capsys.readouterr().err
    assert [e["step"] for e in events if "loss" in e] == [1, 2]


def test_user_errors_exit_2_with_a_message(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert main(["train", "autoencoder", "--data", str(missing), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["eval", "autoencoder", "--model", str(missing)]) == 2
    assert "no autoencoder in" in capsys.readouterr().err
    assert main(["train", "autoencoder", "--config", "nope", "--out", str(tmp_path / "o")]) == 2
    assert "presets:" in capsys.readouterr().err
    args = [
        "train",
        "autoencoder",
        "--out",
        str(tmp_path / "o"),
        "--set",
        "autoencoder.content_anchor=-1",
    ]
    assert main(args) == 2
    assert "content_anchor must be >= 0" in capsys.readouterr().err


def test_data_preview_writes_gif_and_png(tmp_path, capsys):
    stem = tmp_path / "preview"
    assert main(with_sets(["data", "preview", "--out", str(stem), "--num-videos", "3"], SMALL)) == 0
    assert stem.with_suffix(".gif").stat().st_size > 0 and stem.with_suffix(".png").is_file()
    assert "moving" in capsys.readouterr().out
