"""The motion DiT: shapes, dense content guidance, conditioning, CFG, save/load."""

import pytest
import torch

from cmdvideo.models.dit import guided_prediction
from cmdvideo.models.motion_dit import MOTION_DIT_PRESETS, MotionDiT, motion_dit_preset

SMALL = dict(hidden_size=32, depth=2, num_heads=2, motion_patch_size=2, content_patch_size=4)


def randomized(model: MotionDiT) -> MotionDiT:
    """adaLN-Zero starts at exactly zero output; perturb every weight so behaviour shows."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    return model.eval()


def inputs(b=2, dm=4, t=8, length=8, c=3, h=16, w=16):
    g = torch.Generator().manual_seed(0)
    return (
        torch.randn(b, dm, t, length, generator=g),
        torch.randint(0, 1000, (b,), generator=g),
        torch.rand(b, c, h, w, generator=g) * 2 - 1,
    )


def test_zero_init_and_shapes():
    model = MotionDiT(motion_channels=4, num_classes=5, **SMALL)
    motion, t, content = inputs()
    out = model(motion, t, content, class_labels=torch.tensor([0, 4]))
    assert out.shape == motion.shape
    assert torch.count_nonzero(out) == 0  # adaLN-Zero: the network starts as zero


@pytest.mark.parametrize("t,length,h,w", [(16, 16, 32, 32), (4, 12, 24, 40), (2, 2, 4, 4)])
def test_real_grids_non_square(t, length, h, w):
    model = randomized(MotionDiT(motion_channels=4, **SMALL))
    motion, step, content = inputs(t=t, length=length, h=h, w=w)
    assert model(motion, step, content).shape == (2, 4, t, length)


def test_content_frame_guides_the_motion():
    model = randomized(MotionDiT(motion_channels=4, **SMALL))
    motion, t, content = inputs()
    a = model(motion, t, content)
    b = model(motion, t, content.flip(-1))
    assert not torch.allclose(a, b, atol=1e-5)
    # Items in a batch are independent: item 0 does not see item 1's content.
    mixed = torch.stack([content[0], content[0].flip(-1)])
    torch.testing.assert_close(model(motion, t, mixed)[0], a[0], atol=1e-5, rtol=1e-5)


def test_class_and_text_conditions_are_used_and_droppable():
    model = randomized(MotionDiT(motion_channels=4, num_classes=3, text_embed_dim=6, **SMALL))
    motion, t, content = inputs()
    text = torch.randn(2, 6, generator=torch.Generator().manual_seed(2))
    base = model(motion, t, content, class_labels=torch.tensor([0, 1]), text_embeds=text)
    other_class = model(motion, t, content, class_labels=torch.tensor([2, 2]), text_embeds=text)
    other_text = model(motion, t, content, class_labels=torch.tensor([0, 1]), text_embeds=-text)
    assert not torch.allclose(base, other_class, atol=1e-5)
    assert not torch.allclose(base, other_text, atol=1e-5)
    # A dropped condition equals giving no condition at all (the null embeddings).
    dropped = model(
        motion,
        t,
        content,
        torch.tensor([0, 1]),
        text,
        drop_condition=torch.ones(2, dtype=torch.bool),
    )
    torch.testing.assert_close(dropped, model(motion, t, content))


def test_classifier_free_guidance_batch_and_effect():
    model = randomized(MotionDiT(motion_channels=4, num_classes=3, **SMALL))
    motion, t, content = inputs()
    labels = torch.tensor([1, 2])
    seen = []
    original = model.forward

    def spy(*args, **kwargs):
        seen.append((args, kwargs))
        return original(*args, **kwargs)

    model.forward = spy
    guided = model.guided(motion, t, content, class_labels=labels, guidance_scale=4.0)
    ((args, kwargs),) = seen
    assert args[0].shape[0] == 4 and torch.equal(args[3], torch.tensor([1, 2, 1, 2]))
    assert kwargs["drop_condition"].tolist() == [False, False, True, True]
    model.forward = original
    cond = model(motion, t, content, class_labels=labels)
    uncond = model(
        motion, t, content, class_labels=labels, drop_condition=torch.ones(2, dtype=torch.bool)
    )
    torch.testing.assert_close(guided, uncond + 4.0 * (cond - uncond), atol=1e-5, rtol=1e-5)
    plain = model.guided(motion, t, content, class_labels=labels, guidance_scale=1.0)
    torch.testing.assert_close(plain, cond)
    assert not torch.allclose(guided, plain, atol=1e-4)  # guidance changes every channel
    assert ((guided - plain).abs().amax(dim=(0, 2, 3)) > 0).all()


def test_save_load_round_trip(tmp_path):
    model = randomized(MotionDiT(motion_channels=4, num_classes=3, **SMALL))
    model.save_pretrained(tmp_path / "motion")
    loaded = MotionDiT.from_pretrained(tmp_path / "motion").eval()
    motion, t, content = inputs()
    labels = torch.tensor([0, 2])
    assert torch.equal(model(motion, t, content, labels), loaded(motion, t, content, labels))


def test_bad_inputs_and_presets():
    model = MotionDiT(motion_channels=4, num_classes=3, **SMALL)
    motion, t, content = inputs()
    with pytest.raises(ValueError, match="multiples of motion_patch_size=2"):
        model(motion[:, :, :7], t, content)
    with pytest.raises(ValueError, match="content_patch_size=4"):
        model(motion, t, content[..., :15])
    with pytest.raises(ValueError, match=r"class_labels must be in \[0, 2\]"):
        model(motion, t, content, class_labels=torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="no text conditioning"):
        model(motion, t, content, text_embeds=torch.zeros(2, 4))
    with pytest.raises(ValueError, match="choose one of"):
        motion_dit_preset("huge")
    with torch.device("meta"):  # paper size: 8 x 16 x 96 motion latent, 4 x 64 x 128 content
        paper = MotionDiT(
            motion_channels=8, content_channels=4, **MOTION_DIT_PRESETS["webvid-latent-512x1024"]
        )
        out = paper(torch.empty(1, 8, 16, 96), torch.zeros(1), torch.empty(1, 4, 64, 128))
    assert out.shape == (1, 8, 16, 96)


def test_guidance_rescale_matches_the_conditional_spread():
    """CFG rescale φ: 0 is plain CFG; 1 gives the guided prediction the per-sample standard
    deviation of the conditional one (what keeps large scales from oversaturating); between,
    a linear mix; outside [0, 1] a clear error."""
    model = randomized(MotionDiT(motion_channels=4, num_classes=3, **SMALL))
    motion, t, content = inputs()
    labels = torch.tensor([1, 2])
    cond = model(motion, t, content, class_labels=labels)
    plain = model.guided(motion, t, content, class_labels=labels, guidance_scale=6.0)
    full = model.guided(
        motion, t, content, class_labels=labels, guidance_scale=6.0, guidance_rescale=1.0
    )
    half = model.guided(
        motion, t, content, class_labels=labels, guidance_scale=6.0, guidance_rescale=0.5
    )
    torch.testing.assert_close(
        model.guided(
            motion, t, content, class_labels=labels, guidance_scale=6.0, guidance_rescale=0.0
        ),
        plain,
    )
    spread = (1, 2, 3)
    assert not torch.allclose(plain.std(dim=spread), cond.std(dim=spread), rtol=1e-2)
    torch.testing.assert_close(full.std(dim=spread), cond.std(dim=spread), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(half, (plain + full) / 2, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="guidance_rescale"):
        guided_prediction(cond, cond, 2.0, guidance_rescale=1.5)
