"""The I3D pipeline (never an FVD result): a seeded random InceptionI3d saved as a state dict
and loaded back through the same loader real weights take; the missing-weights message."""

import pytest
import torch

from cmdvideo.evaluation.i3d import I3D_ENV, InceptionI3d, load_i3d


def test_random_i3d_round_trips_through_the_loader(tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = InceptionI3d().eval()
    assert 12e6 < sum(p.numel() for p in model.parameters()) < 13e6  # I3D: 12.7 M parameters
    torch.save(model.state_dict(), tmp_path / "i3d_pretrained_400.pt")
    monkeypatch.setenv(I3D_ENV, str(tmp_path / "i3d_pretrained_400.pt"))
    loaded = load_i3d()
    video = torch.rand(1, 3, 16, 224, 224) * 2 - 1  # the FVD input: 16 frames at 224x224
    with torch.no_grad():
        out = loaded(video)
        assert out.shape == (1, 400)
        torch.testing.assert_close(out, model(video))


def test_missing_weights_name_the_files_and_where_to_get_them(monkeypatch, tmp_path):
    monkeypatch.delenv(I3D_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match="i3d_torchscript.pt.*i3d_pretrained_400.pt"):
        load_i3d()
    with pytest.raises(FileNotFoundError, match="not found at"):
        load_i3d(tmp_path / "nope.pt")


def test_fvd_pipeline_check_with_a_random_i3d():
    """A pipeline check, not an FVD result: identical sets give 0, different sets more, the
    protocol is recorded, short videos are refused."""
    from cmdvideo.evaluation.fvd import FVDProtocol, compute_fvd, preprocess_for_i3d

    torch.manual_seed(0)
    i3d = InceptionI3d().eval()
    with torch.no_grad():  # random features are nearly constant: spread them out
        i3d.logits.conv3d.weight.mul_(1000)
    real = torch.rand(3, 3, 10, 32, 48) * 2 - 1
    protocol = FVDProtocol(num_frames=10, num_real=3, num_generated=3, size=224)
    same = compute_fvd(i3d, [real], [real], protocol)
    assert same["num_real_used"] == 3
    assert same["protocol"]["resize"] == "bilinear" and same["protocol"]["quantize"] == "uint8"
    other = compute_fvd(i3d, [real], [torch.zeros_like(real)], protocol)
    assert other["fvd"] > 1e-5 and same["fvd"] < 1e-6 * other["fvd"]
    cropped = preprocess_for_i3d(real, FVDProtocol(resize="center-crop"))
    assert cropped.shape == (3, 3, 10, 224, 224) and cropped.abs().max() <= 1
    with pytest.raises(ValueError, match="at least 9 frames"):
        preprocess_for_i3d(real[:, :, :8], protocol)


def test_eval_fvd_command_records_the_protocol(tmp_path, capsys, monkeypatch):
    """`cmdvideo eval fvd` through the loader with a random I3D (a pipeline check): the same
    held-out set on both sides gives ~0; no weights -> exit 2 naming the files."""
    import json

    from cmdvideo.cli import main

    torch.manual_seed(0)
    torch.save(InceptionI3d().state_dict(), tmp_path / "i3d_pretrained_400.pt")
    args = ["eval", "fvd", "--real", "moving-shapes", "--generated", "moving-shapes",
            "--num-videos", "3", "--num-frames", "9", "--size", "32", "--json"]  # fmt: skip
    assert main([*args, "--i3d", str(tmp_path / "i3d_pretrained_400.pt")]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["fvd"] < 1e-6 and result["num_real_used"] == result["num_generated_used"] == 3
    assert result["protocol"]["num_frames"] == 9 and result["protocol"]["size"] == 224
    monkeypatch.delenv(I3D_ENV, raising=False)
    assert main(args) == 2
    assert "i3d_torchscript.pt" in capsys.readouterr().err


def test_eval_autoencoder_reports_r_fvd_and_the_probe(tmp_path, capsys):
    """R-FVD through the loader (random I3D: a pipeline check) and the decomposition probe."""
    import json

    from conftest import SMALL_AUTOENCODER

    from cmdvideo.cli import main
    from cmdvideo.config import load_config
    from cmdvideo.training.stages import build_codec

    torch.manual_seed(0)
    config = load_config("tiny", [*SMALL_AUTOENCODER, "data.num_frames=9"])
    build_codec(config).save_pretrained(tmp_path / "ae")
    torch.save(InceptionI3d().state_dict(), tmp_path / "i3d.pt")
    assert main(["eval", "autoencoder", "--model", str(tmp_path / "ae"), "--num-videos", "2",
                 "--set", "data.num_frames=9", "--i3d", str(tmp_path / "i3d.pt"),
                 "--probe-pairs", "2", "--json"]) == 0  # fmt: skip
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["r_fvd"]["num_real_used"] == 2 and result["r_fvd"]["fvd"] >= 0
    assert result["decomposition_probe"]["num_pairs"] == 2


def test_the_real_set_is_a_seeded_sample_of_the_whole_set(tmp_path):
    """FVD's real videos are drawn at random over the whole set (a sorted folder's first N
    files are a few classes), the same for the same seed, at the model's frame stride."""
    from conftest import write_test_video

    from cmdvideo.data import sample_indices
    from cmdvideo.evaluation.fvd import source_batches

    first = sample_indices(1000, 5, seed=0)
    assert first == sample_indices(1000, 5, seed=0) != sample_indices(1000, 5, seed=1)
    assert len(set(first)) == 5 and max(first) > 100  # not the first five
    assert sample_indices(3, 5) == [0, 1, 2]
    for k in range(6):
        write_test_video(tmp_path / "clips" / f"c{k}.mp4", 40, size=(16, 16))
    a = torch.cat(
        list(source_batches(str(tmp_path / "clips"), 3, 8, 16, 2, seed=0, frame_stride=2))
    )
    b = torch.cat(
        list(source_batches(str(tmp_path / "clips"), 3, 8, 16, 2, seed=0, frame_stride=1))
    )
    assert a.shape == b.shape == (3, 3, 8, 16, 16) and not torch.equal(a, b)
