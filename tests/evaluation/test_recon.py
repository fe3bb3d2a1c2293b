"""PSNR / SSIM: known values, not just 'runs'."""

import math

import torch

from cmdvideo.evaluation.quality import psnr_per_frame, ssim_per_frame


def test_psnr_known_value():
    a = torch.zeros(1, 3, 2, 8, 8)  # 0.5 in [0, 1]
    b = a + 0.2  # +0.1 in [0, 1] -> MSE 0.01 -> 20 dB
    torch.testing.assert_close(psnr_per_frame(b, a), torch.full((1, 2), 20.0, dtype=torch.float64))
    assert psnr_per_frame(a, a).min() >= 99  # capped, not inf


def test_ssim_identical_is_one_and_noise_lowers_it():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(2, 3, 3, 32, 32, generator=g) * 2 - 1
    torch.testing.assert_close(ssim_per_frame(a, a), torch.ones(2, 3, dtype=torch.float64))
    noisy = (a + 0.3 * torch.randn(a.shape, generator=g)).clamp(-1, 1)
    s = ssim_per_frame(noisy, a)
    assert (s < 0.9).all() and (s > 0).all()
    torch.testing.assert_close(s, ssim_per_frame(a, noisy))  # symmetric


def test_ssim_of_constant_frames_matches_closed_form():
    # Zero variance everywhere: SSIM = (2 mu_a mu_b + C1) / (mu_a^2 + mu_b^2 + C1).
    mu_a, mu_b = 0.3, 0.6
    a = torch.full((1, 3, 1, 16, 16), mu_a * 2 - 1)
    b = torch.full((1, 3, 1, 16, 16), mu_b * 2 - 1)
    c1 = 0.01**2
    expected = (2 * mu_a * mu_b + c1) / (mu_a**2 + mu_b**2 + c1)
    assert math.isclose(ssim_per_frame(a, b).item(), expected, rel_tol=1e-6)


def test_small_frames_use_a_smaller_window():
    a = torch.rand(1, 3, 2, 8, 8) * 2 - 1
    assert ssim_per_frame(a, a).shape == (1, 2)


class _Wiring:
    """A stand-in codec whose 'content frame' and 'motion latent' are the video itself and
    whose decoder returns what it got as motion: it shows which video each term decodes."""

    def to(self, device):
        return self

    def eval(self):
        return self

    def encode(self, video):
        return video, video

    def decode(self, content_frame, motion_latent):
        return motion_latent


def test_decomposition_probe_decodes_the_right_pairs():
    from cmdvideo.data.moving_shapes import MovingShapes, VideoFactors, render_video
    from cmdvideo.evaluation.recon import decomposition_probe

    n = 6
    probe = decomposition_probe(
        _Wiring(), num_pairs=n, num_frames=8, height=16, width=16, batch_size=4
    )
    assert probe["num_pairs"] == n
    # decode(A, B) returns B here, exactly what decode(B, B) returns
    assert probe["swap_psnr"] == probe["same_b_psnr"]
    data = MovingShapes(num_videos=100, num_frames=8, height=16, width=16, seed=1)
    expected = (
        sum(
            psnr_per_frame(
                data[i]["video"][None],
                render_video(
                    VideoFactors(data.factors(i).appearance, data.factors(n + i).motion), 8, 16, 16
                )[None],
            )
            .mean()
            .item()
            for i in range(n)
        )
        / n
    )
    assert math.isclose(probe["same_a_psnr"], expected, rel_tol=1e-5)


def test_decomposition_probe_judges_the_swaps_motion_with_the_classifier():
    """With the classifier, the probe says how often the swap moves as B: the wiring codec's
    'swap' is the real video B itself, which the classifier reads right, as it reads the
    targets (A's look, B's motion)."""
    from cmdvideo.evaluation.recon import decomposition_probe
    from cmdvideo.models.classifier import load_classifier

    probe = decomposition_probe(_Wiring(), num_pairs=8, batch_size=4, classifier=load_classifier())
    assert probe["swap_motion_accuracy"] == 1.0
    # A's shape moving as B may leave the frame where B's own did not: 7 of these 8 are read
    assert probe["target_motion_accuracy"] >= 0.85
    assert "swap_motion_accuracy" not in decomposition_probe(_Wiring(), num_pairs=2)
