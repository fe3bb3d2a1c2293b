"""The CMD autoencoder: shapes, the content-frame invariant, decoding swaps, save/load."""

import pytest
import torch

from cmdvideo.models.autoencoder import AUTOENCODER_PRESETS, CMDAutoencoder, autoencoder_preset

SMALL = dict(
    patch_size=4, hidden_size=32, encoder_depth=1, decoder_depth=1, num_heads=2, motion_channels=4
)


def small_model(**kw) -> CMDAutoencoder:
    torch.manual_seed(0)
    return CMDAutoencoder(**{**SMALL, **kw}).eval()


@pytest.mark.parametrize(
    "channels,frames,height,width,patch",
    [(3, 8, 16, 16, 4), (3, 5, 24, 40, 4), (4, 4, 16, 32, 2), (3, 1, 8, 8, 2)],
)
def test_shapes_and_content_weights(channels, frames, height, width, patch):
    model = small_model(in_channels=channels, patch_size=patch)
    video = torch.rand(2, channels, frames, height, width) * 2 - 1
    out = model(video)
    h, w = height // patch, width // patch
    assert out.content_frame.shape == (2, channels, height, width)
    assert out.motion_latent.shape == (2, 4, frames, h + w)
    assert out.reconstruction.shape == video.shape
    assert out.content_weights.shape == video.shape
    # Softmax over time: weights are positive and sum to one at every pixel and channel.
    assert (out.content_weights >= 0).all()
    torch.testing.assert_close(
        out.content_weights.sum(dim=2), torch.ones(2, channels, height, width)
    )
    assert out.motion_latent.abs().max() <= 1
    assert model.motion_latent_shape(frames, height, width) == (4, frames, h + w)


def test_content_frame_is_convex_combination_of_frames():
    model = small_model()
    with torch.no_grad():  # make the weights non-uniform
        model.content_head.weight.normal_(0, 1.0)
    video = torch.rand(2, 3, 6, 16, 16) * 2 - 1
    content, _, weights = model.encode_with_weights(video)
    torch.testing.assert_close(content, (weights * video).sum(dim=2))
    # A convex combination never leaves the per-pixel range of the frames.
    assert (content <= video.max(dim=2).values + 1e-6).all()
    assert (content >= video.min(dim=2).values - 1e-6).all()
    # A static video's content frame is that frame, whatever the weights.
    static = video[:, :, :1].expand(-1, -1, 6, -1, -1)
    torch.testing.assert_close(model.encode(static)[0], static[:, :, 0])


def test_paper_latent_setting_shapes_on_meta_device():
    """webvid-latent-512x1024 preset at paper size (64x128x4 latents, 16 frames), no memory."""
    with torch.device("meta"):
        model = CMDAutoencoder(**autoencoder_preset("webvid-latent-512x1024"))
        out = model(torch.empty(1, 4, 16, 64, 128))
    assert out.content_frame.shape == (1, 4, 64, 128)
    assert out.motion_latent.shape == (1, 8, 16, 32 + 64)  # 8 x 16 x 96 = 12,288 numbers
    assert out.reconstruction.shape == (1, 4, 16, 64, 128)


def test_decode_mixes_content_and_motion_of_different_videos():
    model = small_model()
    a, b = torch.rand(2, 1, 3, 8, 16, 16).unbind(0)
    content_a, motion_a = model.encode(a)
    content_b, motion_b = model.encode(b)
    mixed = model.decode(content_a, motion_b)
    assert mixed.shape == a.shape
    assert not torch.allclose(mixed, model.decode(content_a, motion_a))
    assert not torch.allclose(mixed, model.decode(content_b, motion_b))
    # Decoding a different number of frames than encoded works (motion sets T).
    assert model.decode(content_a, motion_a[:, :, :3]).shape == (1, 3, 3, 16, 16)


def test_position_matters():
    """The encoder is not blind to position (unlike the public reference code): swapping two
    frames changes the motion latent beyond a permutation of the same values."""
    model = small_model()
    video = torch.rand(1, 3, 4, 16, 16)
    swapped = video[:, :, [1, 0, 2, 3]]
    m, ms = model.encode(video)[1], model.encode(swapped)[1]
    assert not torch.allclose(m[:, :, [1, 0, 2, 3]], ms, atol=1e-5)


def test_save_load_round_trip(tmp_path):
    model = small_model()
    model.save_pretrained(tmp_path / "ae")
    assert (tmp_path / "ae" / "diffusion_pytorch_model.safetensors").is_file()
    loaded = CMDAutoencoder.from_pretrained(tmp_path / "ae").eval()
    video = torch.rand(1, 3, 4, 16, 16)
    assert torch.equal(model(video).reconstruction, loaded(video).reconstruction)
    assert loaded.config.hidden_size == 32


def test_bad_inputs_raise_clear_errors():
    model = small_model()
    with pytest.raises(ValueError, match="multiple of the patch size"):
        model.encode(torch.rand(1, 3, 4, 18, 16))
    with pytest.raises(ValueError, match=r"\(B, 3, T, H, W\)"):
        model.encode(torch.rand(3, 4, 16, 16))
    content, motion = model.encode(torch.rand(1, 3, 4, 16, 16))
    with pytest.raises(ValueError, match="motion_latent must be"):
        model.decode(content, motion[..., :-1])
    with pytest.raises(ValueError, match="unknown autoencoder preset 'nope'; choose one of"):
        autoencoder_preset("nope")
    with pytest.raises(ValueError, match="divisible by num_heads"):
        CMDAutoencoder(hidden_size=30, num_heads=4)


def test_presets_build():
    for name in AUTOENCODER_PRESETS:
        with torch.device("meta"):
            assert CMDAutoencoder(**autoencoder_preset(name)).config.patch_size in (2, 4)


def test_calibrated_motion_scale_gives_unit_variance_and_decode_inverts_it():
    from cmdvideo.data.moving_shapes import MovingShapes
    from cmdvideo.models.codec import VideoCodec
    from cmdvideo.training.calibrate import calibrate_motion_scale

    torch.manual_seed(0)
    codec = VideoCodec(
        CMDAutoencoder(
            hidden_size=32, encoder_depth=1, decoder_depth=1, num_heads=2, motion_channels=4
        )
    )
    data = MovingShapes(num_videos=8, num_frames=4, height=16, width=16, seed=0)
    factor, used = calibrate_motion_scale(codec, data, num_videos=8, batch_size=4)
    assert used == 8
    assert codec.autoencoder.config.motion_scaling_factor == factor > 0
    video = torch.stack([data[i]["video"] for i in range(8)])
    content, motion = codec.encode(video)
    assert abs(motion.std().item() - 1.0) < 0.05
    raw = codec.autoencoder.decode(*codec.autoencoder.encode(video))
    torch.testing.assert_close(codec.decode(content, motion), raw, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("frames", [5, 6])
def test_content_anchor_is_the_middle_of_the_clip(frames):
    from cmdvideo.training.losses import content_anchor_loss

    video = (
        torch.arange(frames, dtype=torch.float32).view(1, 1, frames, 1, 1).expand(2, 3, -1, 4, 4)
    )
    middle = torch.full((2, 3, 4, 4), (frames - 1) / 2)  # frame 2 of 5; mean of frames 2, 3 of 6
    assert content_anchor_loss(middle, video).item() == 0
    assert content_anchor_loss(middle + 1, video).item() == pytest.approx(1.0)


def test_refiner_starts_as_the_identity_and_learns():
    """refine_channels adds a conv refiner whose zero-initialised last layer leaves a trained
    decoder's output unchanged; it trains, round-trips and rejects a negative width."""
    from cmdvideo.training.stages import _extended

    plain = small_model()
    refined = _extended(plain, {"refine_channels": 4}).eval()
    video = torch.rand(2, 3, 4, 16, 16) * 2 - 1
    with torch.no_grad():
        assert torch.equal(plain(video).reconstruction, refined(video).reconstruction)
    refined.train()
    optimizer = torch.optim.Adam(refined.refiner.parameters(), lr=1e-2)
    losses = []
    for _ in range(20):
        loss = (refined(video).reconstruction - video).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0]
    with pytest.raises(ValueError, match="refine_channels must be >= 0"):
        small_model(refine_channels=-1)
    with pytest.raises(ValueError, match="change the architecture"):
        _extended(plain, {"hidden_size": 16})


def test_refiner_save_load_round_trip(tmp_path):
    model = small_model(refine_channels=4)
    torch.nn.init.normal_(model.refiner[-1].weight, std=0.1)  # make the refiner matter
    model.save_pretrained(tmp_path / "ae")
    loaded = CMDAutoencoder.from_pretrained(tmp_path / "ae").eval()
    video = torch.rand(1, 3, 4, 16, 12)
    assert loaded.config.refine_channels == 4
    assert torch.equal(model(video).reconstruction, loaded(video).reconstruction)
