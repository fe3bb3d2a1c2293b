"""Inception-3D (I3D, Carreira & Zisserman 2017; Kinetics-400), the network behind FVD.

Written for this project (the layer layout follows the published architecture: Inception-v1
inflated to 3-D, TensorFlow "same" padding, batch norm eps 1e-3). Its parameter names match
the widely used PyTorch port's state dict (``i3d_pretrained_400.pt``, as used by TATS and PVDM),
so those weights load directly; the StyleGAN-V TorchScript detector (``i3d_torchscript.pt``)
is loaded as is by :func:`load_i3d`. Nothing is ever downloaded.

Input: (B, 3, T, 224, 224) in [-1, 1]; output: (B, 400) logits averaged over time.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

I3D_ENV = "CMDVIDEO_I3D"
WHERE_TO_GET = (
    "FVD needs pretrained I3D weights, which cannot be downloaded here. Give --i3d PATH (or set "
    f"{I3D_ENV}) to one of: i3d_torchscript.pt — the StyleGAN-V detector, published at "
    "https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt (StyleGAN-V, FVD code); or "
    "i3d_pretrained_400.pt — the Kinetics-400 I3D state dict of the pytorch-i3d port, shipped "
    "with TATS (github.com/songweige/TATS) and PVDM (github.com/sihyun-yu/PVDM)."
)


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

    def __init__(self, in_channels, out_channels, kernel=(1, 1, 1), stride=(1, 1, 1),
                 batch_norm=True, activation=True, bias=False):  # fmt: skip
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
        return self.logits(x).squeeze(-1).squeeze(-1).mean(dim=2)


class _TorchScriptDetector(nn.Module):
    """StyleGAN-V's I3D TorchScript, called the way its FVD code calls it: frames already
    resized to 224 and scaled to [-1, 1] outside (``rescale=False, resize=False``), 400-d
    output before the softmax (``return_features=True``)."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.module(video, rescale=False, resize=False, return_features=True)


def load_i3d(path: str | Path | None = None) -> nn.Module:
    """The I3D feature network from a local file: ``path`` or ``$CMDVIDEO_I3D``.

    ``*.pt`` TorchScript archives (StyleGAN-V) are loaded with ``torch.jit.load``; anything else
    as a state dict into :class:`InceptionI3d`. Raises FileNotFoundError naming the two files and
    where they are published when nothing is given or the file is missing.
    """
    path = path or os.environ.get(I3D_ENV)
    if not path or not Path(path).is_file():
        raise FileNotFoundError(
            (f"I3D weights not found at {path!r}. " if path else "") + WHERE_TO_GET
        )
    try:
        return _TorchScriptDetector(torch.jit.load(str(path), map_location="cpu")).eval()
    except RuntimeError:
        pass  # not a TorchScript archive: a state dict
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    model = InceptionI3d()
    model.load_state_dict(state)
    return model.eval()
