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
