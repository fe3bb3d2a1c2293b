"""Gradient checkpointing (``train.gradient_checkpointing``): the same gradients, with each
block run again in the backward pass instead of its activations kept."""

import pytest
import torch
from conftest import SMALL_AUTOENCODER

from cmdvideo.config import load_config
from cmdvideo.models.autoencoder import CMDAutoencoder
from cmdvideo.models.content import ContentDiT
from cmdvideo.models.motion_dit import MotionDiT


def _autoencoder():
    model = CMDAutoencoder(
        hidden_size=32, encoder_depth=2, decoder_depth=2, num_heads=2, motion_channels=4
    )
    return model, (torch.randn(2, 3, 4, 16, 16),), lambda out: out.reconstruction


def _motion_dit():
    model = MotionDiT(
        motion_channels=4, content_channels=3, hidden_size=32, depth=2, num_heads=2, num_classes=3
    )
    for p in model.parameters():  # away from adaLN-Zero's zeros, so every weight has a gradient
        p.data.add_(0.05 * torch.randn_like(p))
    inputs = (
        torch.randn(2, 4, 4, 8),
        torch.tensor([3, 700]),
        torch.randn(2, 3, 16, 16),
        torch.tensor([0, 2]),
    )
    return model, inputs, lambda out: out


def _content_dit():
    model = ContentDiT(
        in_channels=3,
        sample_size=(16, 16),
        hidden_size=32,
        depth=2,
        num_heads=2,
        num_classes=3,
        patch_size=4,
    )
    for p in model.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    return (
        model,
        (torch.randn(2, 3, 16, 16), torch.tensor([3, 700]), torch.tensor([0, 2])),
        (lambda out: out),
    )


@pytest.mark.parametrize("make", [_autoencoder, _motion_dit, _content_dit])
def test_checkpointing_gives_the_same_gradients_and_recomputes(make):
    torch.manual_seed(0)
    model, inputs, output = make()
    calls = []

    def counted(forward):  # (forward hooks do not fire again when a checkpoint recomputes)
        return lambda *args: (calls.append(1), forward(*args))[1]

    for module in model.modules():
        if type(module).__name__ in ("FactorizedVideoBlock", "AdaLNZeroBlock"):
            module.forward = counted(module.forward)

    def grads():
        model.zero_grad()
        calls.clear()
        output(model(*inputs)).pow(2).mean().backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}, len(
            calls
        )

    plain, plain_calls = grads()
    model.enable_gradient_checkpointing()
    checkpointed, checkpointed_calls = grads()
    assert plain.keys() == checkpointed.keys() and len(plain) > 0
    for name in plain:
        torch.testing.assert_close(checkpointed[name], plain[name], atol=1e-6, rtol=1e-5)
    assert checkpointed_calls == 2 * plain_calls  # every block ran again in the backward pass
    with torch.no_grad():  # sampling: nothing to recompute
        calls.clear()
        model(*inputs)
        assert len(calls) == plain_calls


def test_the_config_switch_reaches_every_stage(tmp_path):
    from cmdvideo.data import build_dataset
    from cmdvideo.training.diffusion import ContentStage, MotionStage
    from cmdvideo.training.stages import AutoencoderStage, build_codec

    sets = [
        "data.num_frames=4",
        "data.height=16",
        "data.width=16",
        *SMALL_AUTOENCODER,
        "train.gradient_checkpointing=true",
    ]
    config = load_config("tiny", sets)
    codec = build_codec(config)
    captions = build_dataset(config.data).captions(16)
    objective = AutoencoderStage(config, codec).model()
    assert all(
        t.gradient_checkpointing
        for t in (objective.autoencoder.encoder, objective.autoencoder.decoder)
    )
    assert MotionStage(config, codec, 10, captions=captions).model().net.gradient_checkpointing
    unet = ContentStage(config, codec, 10, captions=captions).model().net  # diffusers' own switch
    assert unet.is_gradient_checkpointing
