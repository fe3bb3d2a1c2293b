"""What the content / motion split gives: image-to-video, motion transfer, editing, long videos
(pipeline methods and CLI verbs), and the two ways the denoising loop starts from what exists."""

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler
from PIL import Image
from test_pipeline import _pipeline_dir

from cmdvideo.cli import main
from cmdvideo.data.video_io import write_video
from cmdvideo.pipelines import sampling
from cmdvideo.pipelines.cmd import CMDPipeline
from cmdvideo.pipelines.denoise import denoise
from cmdvideo.pipelines.inputs import prepare_image, prepare_video
from cmdvideo.pipelines.sampling import crossfade_clips

CLIP = 8  # the test pipeline's training length (test_pipeline.SMALL)


@pytest.fixture(scope="module")
def pipe_dir(tmp_path_factory):
    return _pipeline_dir(tmp_path_factory.mktemp("decomposition"))


@pytest.fixture(scope="module")
def pipe(pipe_dir):
    pipe = CMDPipeline.from_pretrained(pipe_dir)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def videos(pipe):
    """Two generated videos (np, (2, T, H, W, 3) in [0, 1])."""
    out = pipe(
        ["a red circle moving left", "a green square moving up"],
        num_inference_steps=3,
        generator=_gen(),
    )
    return out.frames


def _forbid_models(pipe, monkeypatch):
    """Make every denoiser fail: a refusal must come before any model runs."""

    def boom(*args, **kwargs):
        raise AssertionError("a model ran")

    monkeypatch.setattr(pipe.content_model, "forward", boom)
    monkeypatch.setattr(pipe.motion_model, "forward", boom)


# -- inputs --------------------------------------------------------------------------------


def test_images_of_any_layout_become_the_model_frame_size():
    size = (16, 16)
    rgb = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    variants = [
        rgb,
        Image.fromarray(rgb),
        Image.fromarray(rgb).convert("RGBA"),
        torch.from_numpy(rgb).permute(2, 0, 1).float() / 255,
        rgb.astype(np.float32) / 255,
    ]
    prepared = [prepare_image(v, size) for v in variants]
    for x in prepared:
        assert x.shape == (1, 3, 16, 16) and -1 <= x.min() and x.max() <= 1
        assert torch.allclose(x, prepared[0], atol=2 / 255)
    grey = prepare_image(rgb[..., 0], size)  # (H, W)
    assert grey.shape == (1, 3, 16, 16) and torch.equal(grey[:, 0], grey[:, 1])
    # center crop to the aspect: a wide image loses its sides, not its proportions
    wide = np.zeros((16, 48, 3), np.uint8)
    wide[:, 16:32] = 255
    assert prepare_image(wide, size).min() == 1.0


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((8, 8, 5), np.uint8), "channels"),
        (np.full((8, 8, 3), 2.0, np.float32), r"in \[0, 1\]"),
        (np.zeros((8,), np.uint8), "expected"),
        (np.zeros((8, 8, 3), np.int64), "uint8 or float"),
    ],
)
def test_bad_images_are_refused_clearly(bad, message):
    with pytest.raises(ValueError, match=message):
        prepare_image(bad, (16, 16))


def test_transparency_is_flattened_onto_white_or_refused(caplog):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 255  # red where opaque
    rgba[:, :4, 3] = 255  # the left half opaque, the right half transparent
    with caplog.at_level("WARNING"):
        flat = prepare_image(Image.fromarray(rgba, "RGBA"), (8, 8))
    assert "50 % of its pixels are (partly) transparent; flattened onto white" in caplog.text
    assert torch.allclose(flat[0, :, :, :4], torch.tensor([1.0, -1, -1])[:, None, None])
    assert torch.allclose(flat[0, :, :, 4:], torch.ones(3, 8, 4))  # white, not the stored black
    rgba[..., 3] = 0
    for clear in (rgba, Image.fromarray(rgba, "RGBA")):
        with pytest.raises(ValueError, match="fully transparent"):
            prepare_image(clear, (8, 8))


def test_videos_from_files_and_arrays_agree(tmp_path):
    frames = np.random.default_rng(1).integers(0, 256, (12, 24, 32, 3), dtype=np.uint8)
    path = write_video(tmp_path / "v.gif", frames)
    from_file = prepare_video(path, (16, 16), num_frames=8)
    from_array = prepare_video(frames, (16, 16), num_frames=8)
    assert from_file.shape == from_array.shape == (1, 3, 8, 16, 16)
    assert (from_file - from_array).abs().mean() < 0.05  # GIF palette
    pil_frames = [Image.fromarray(f) for f in frames]
    assert torch.allclose(prepare_video(pil_frames, (16, 16), 8), from_array, atol=1e-6)
    with pytest.raises(ValueError, match="fewer than"):
        prepare_video(frames, (16, 16), num_frames=20)


# -- the denoising loop --------------------------------------------------------------------


def _counting(calls):
    def denoiser(x, t):
        calls.append(int(t[0]))
        return torch.zeros_like(x)

    return denoiser


@pytest.mark.parametrize(
    "cls", [DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler]
)
def test_sdedit_runs_the_last_strength_of_the_schedule(cls):
    init = torch.randn(2, 3, 4, 4, generator=_gen())
    for strength, runs in ((0.0, 0), (0.4, 4), (1.0, 10)):
        calls = []
        out = denoise(
            _counting(calls),
            init.shape,
            cls(),
            10,
            _gen(),
            init=init,
            strength=strength,
            progress=False,
        )
        assert len(calls) == runs
        if strength == 0:
            assert torch.equal(out, init)
    with pytest.raises(ValueError, match="strength"):
        denoise(_counting([]), init.shape, DDIMScheduler(), 10, init=init, strength=1.5)


@pytest.mark.parametrize(
    "cls", [DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler]
)
def test_inpainting_keeps_the_known_part_exactly_and_samples_the_rest(cls):
    known = torch.randn(1, 2, 6, 3, generator=_gen(1))
    mask = torch.zeros(1, 1, 6, 1, dtype=torch.bool)
    mask[:, :, :3] = True
    seen = []

    def denoiser(x, t):  # the model sees the known part at the current noise level
        seen.append(x[:, :, :3].clone())
        return torch.zeros_like(x)

    out = denoise(
        denoiser, known.shape, cls(), 5, _gen(), known=known, known_mask=mask, progress=False
    )
    assert torch.equal(out[:, :, :3], known[:, :, :3])
    assert not torch.allclose(out[:, :, 3:], known[:, :, 3:], atol=0.1)
    assert not torch.allclose(seen[0], seen[0] * 0 + known[:, :, :3])  # noised, not clean


def test_crossfade_joins_clips_at_the_right_length():
    a, b = torch.zeros(1, 1, 8, 1, 1), torch.ones(1, 1, 8, 1, 1)
    video = crossfade_clips([a, b, b], overlap=4)
    assert video.shape[2] == 8 + 4 + 4
    ramp = video[0, 0, 4:8, 0, 0]
    assert torch.allclose(ramp, torch.tensor([0.2, 0.4, 0.6, 0.8]))
    assert torch.equal(video[0, 0, 8:, 0, 0], torch.ones(8))


# -- image to video ------------------------------------------------------------------------


def test_image_to_video_keeps_the_image_as_the_content_frame(pipe, videos):
    image = videos[0, CLIP // 2]
    out = pipe.image_to_video(
        image, prompt="a red circle moving up", num_inference_steps=3, generator=_gen()
    )
    assert out.frames.shape == (1, CLIP, 16, 16, 3)
    assert np.abs(out.content_frames[0] - image).max() < 1e-5  # pixel mode: it is the image
    again = pipe.image_to_video(
        image, prompt="a red circle moving up", num_inference_steps=3, generator=_gen()
    )
    assert np.array_equal(out.frames, again.frames)
    other = pipe.image_to_video(
        image, prompt="a red circle moving up", num_inference_steps=3, generator=_gen(1)
    )
    assert not np.array_equal(out.frames, other.frames)
    # strength: the content model re-denoises the image; more strength, further from it
    changes = [
        np.abs(
            pipe.image_to_video(
                image, "a red circle moving up", strength=s, num_inference_steps=4, generator=_gen()
            ).content_frames[0]
            - image
        ).mean()
        for s in (0.25, 1.0)
    ]
    assert 0 < changes[0] < changes[1]


def test_image_to_video_batches_images_and_prompts(pipe, videos):
    images = videos[:, 0]  # (2, H, W, 3)
    out = pipe.image_to_video(images, prompt="moving up", num_inference_steps=2, generator=_gen())
    assert out.frames.shape[0] == 2
    out = pipe.image_to_video(
        images[0],
        prompt=["moving up", "moving left"],
        class_labels=[0, 1],
        num_inference_steps=2,
        generator=_gen(),
    )
    assert out.frames.shape[0] == 2
    with pytest.raises(ValueError, match="2 images for 3"):
        pipe.image_to_video(images, prompt=["a", "b", "c"], num_inference_steps=2)


def test_image_to_video_refuses_bad_input_before_any_model_runs(pipe, videos, monkeypatch):
    _forbid_models(pipe, monkeypatch)
    with pytest.raises(ValueError, match="strength"):
        pipe.image_to_video(videos[0, 0], strength=1.5)
    with pytest.raises(ValueError, match="channels"):
        pipe.image_to_video(np.zeros((8, 8, 7), np.uint8))
    with pytest.raises(ValueError, match="num_inference_steps"):
        pipe.image_to_video(videos[0, 0], num_inference_steps=0)


# -- motion transfer -----------------------------------------------------------------------


def test_transfer_motion_is_decode_of_one_content_and_the_other_motion(pipe, videos):
    codec = pipe.codec
    a = torch.from_numpy(videos[0]).permute(3, 0, 1, 2)[None] * 2 - 1
    b = torch.from_numpy(videos[1]).permute(3, 0, 1, 2)[None] * 2 - 1
    expected = codec.decode(codec.encode(a)[0], codec.encode(b)[1])
    out = pipe.transfer_motion(videos[0], videos[1], output_type="pt")
    got = out.frames.permute(0, 2, 1, 3, 4) * 2 - 1
    assert torch.allclose(got, expected.clamp(-1, 1), atol=1e-5)
    # an image as the content: it is the content frame
    still = pipe.transfer_motion(videos[0, 3], videos[1])
    assert np.abs(still.content_frames[0] - videos[0, 3]).max() < 1e-5
    # a batch of motions for one content
    assert pipe.transfer_motion(videos[0], videos).frames.shape[0] == 2


# -- editing -------------------------------------------------------------------------------


def test_edit_at_strength_zero_is_the_reconstruction(pipe, videos):
    recon = pipe.transfer_motion(videos[0], videos[0]).frames
    for edit in ("content", "motion", "both"):
        out = pipe.edit_video(
            videos[0],
            "a blue circle moving left",
            strength=0.0,
            edit=edit,
            num_inference_steps=3,
            generator=_gen(),
        )
        assert np.allclose(out.frames, recon, atol=1e-5)


def test_edits_change_only_what_they_edit(pipe, videos, monkeypatch):
    from cmdvideo.models.codec import VideoCodec

    kw = dict(strength=0.8, num_inference_steps=4, generator=_gen())
    recon = pipe.transfer_motion(videos[0], videos[0])
    decoded, decode = [], VideoCodec.decode

    def spy(codec, content, motion):
        decoded.append(motion.clone())
        return decode(codec, content, motion)

    monkeypatch.setattr(VideoCodec, "decode", spy)
    content = pipe.edit_video(videos[0], "a blue square moving left", edit="content", **kw)
    # a content edit decodes the video's own motion latent, untouched
    assert torch.equal(decoded[-1], pipe.encode_video(videos[0], CLIP)[1])
    motion = pipe.edit_video(videos[0], "a red circle moving down", edit="motion", **kw)
    assert not np.allclose(content.content_frames, recon.content_frames, atol=1e-3)
    assert np.allclose(motion.content_frames, recon.content_frames, atol=1e-5)
    assert not np.allclose(motion.frames, recon.frames, atol=1e-3)


def test_edit_refuses_bad_input_before_any_model_runs(pipe, videos, monkeypatch):
    _forbid_models(pipe, monkeypatch)
    with pytest.raises(ValueError, match="edit must be one of"):
        pipe.edit_video(videos[0], "x", edit="colour")
    with pytest.raises(ValueError, match="strength"):
        pipe.edit_video(videos[0], "x", strength=-0.1)
    with pytest.raises(ValueError, match="fewer than"):
        pipe.edit_video(videos[0, :3], "x")


# -- long videos ---------------------------------------------------------------------------


def test_long_videos_are_made_clip_by_clip(pipe, monkeypatch):
    out = pipe("a red circle moving left", num_frames=21, num_inference_steps=2, generator=_gen())
    assert out.frames.shape == (1, 21, 16, 16, 3)
    again = pipe("a red circle moving left", num_frames=21, num_inference_steps=2, generator=_gen())
    assert np.array_equal(out.frames, again.frames)
    # 21 frames from 8-frame clips overlapping by 4: 8 + 4 + 4 + 4 (+ 4, trimmed) -> 5 clips
    calls = []
    original = sampling.motion_for

    def spy(pipe, content, **kwargs):
        calls.append(kwargs.get("known") is not None)
        return original(pipe, content, **kwargs)

    monkeypatch.setattr(sampling, "motion_for", spy)
    pipe("a red circle", num_frames=21, num_inference_steps=2, generator=_gen())
    assert calls == [False, True, True, True, True]
    calls.clear()
    pipe("a red circle", num_frames=20, overlap=2, num_inference_steps=2, generator=_gen())
    assert len(calls) == 3  # 8 + 6 + 6
    with pytest.raises(ValueError, match="overlap must be an integer in"):
        pipe("a red circle", num_frames=20, overlap=CLIP)


def test_every_frame_count_is_made(pipe):
    """Short clips the motion DiT cannot make in whole patches (odd counts) are made one patch
    longer and cut, instead of failing inside the model after the content stage."""
    assert pipe.motion_model.config.motion_patch_size == 2
    for num_frames in (1, 3, CLIP - 1, CLIP + 1):
        out = pipe("a red circle", num_frames=num_frames, num_inference_steps=1, generator=_gen())
        assert out.frames.shape[1] == num_frames
    out = pipe.image_to_video(np.zeros((16, 16, 3), np.uint8), num_frames=5, num_inference_steps=1)
    assert out.frames.shape[1] == 5


# -- command line --------------------------------------------------------------------------


def test_image_to_video_makes_num_videos_per_prompt(pipe, pipe_dir, videos, tmp_path):
    """diffusers' semantics: videos per image and prompt, each prompt's together; from the
    command line video k comes from seed + k, as the Python call with that seed makes it."""
    image = videos[0, 4]
    out = pipe.image_to_video(
        image,
        prompt=["moving up", "moving down"],
        num_videos_per_prompt=2,
        num_inference_steps=2,
        generator=_gen(),
    )
    assert out.frames.shape[0] == 4
    assert np.allclose(out.content_frames[0], out.content_frames[3], atol=1e-5)  # the image
    assert not np.allclose(out.frames[0], out.frames[1], atol=1e-3)  # each its own motion
    Image.fromarray((image * 255).round().astype(np.uint8)).save(tmp_path / "frame.png")
    argv = [
        "sample",
        "--model",
        str(pipe_dir),
        "--image",
        str(tmp_path / "frame.png"),
        "--prompt",
        "moving up",
        "--num-videos",
        "3",
        "--seed",
        "5",
        "--steps",
        "2",
        "--quiet",
        "--threads",
        "1",
        "--out",
        str(tmp_path / "i2v"),
    ]
    assert main(argv) == 0
    written = [tmp_path / "i2v" / f"video-{k:03d}.gif" for k in range(3)]
    assert all(p.is_file() for p in written)
    from cmdvideo.data.video_io import read_video

    direct = pipe.image_to_video(
        str(tmp_path / "frame.png"),
        prompt="moving up",
        num_inference_steps=2,
        generator=_gen(5 + 2),
    )
    third = read_video(written[2]).astype(np.float32) / 255  # upscaled 4x by the writer
    assert np.abs(third[:, ::4, ::4] - direct.frames[0]).max() < 0.05  # (GIF palette)


def test_cli_verbs_write_videos(pipe_dir, videos, tmp_path, capsys):
    a, b = write_video(tmp_path / "a.mp4", videos[0]), write_video(tmp_path / "b.mp4", videos[1])
    Image.fromarray((videos[0, 4] * 255).astype(np.uint8)).save(tmp_path / "frame.png")
    common = ["--model", str(pipe_dir), "--threads", "1"]
    runs = {
        "i2v": [
            "sample",
            "--image",
            str(tmp_path / "frame.png"),
            "--prompt",
            "moving up",
            "--num-frames",
            "12",
            "--steps",
            "2",
            "--quiet",
        ],
        "transfer": ["transfer", "--content", str(a), "--motion", str(b)],
        "edit": ["edit", "--video", str(a), "--prompt", "a blue circle", "--steps", "2", "--quiet"],
    }
    for name, argv in runs.items():
        out = tmp_path / name
        assert main([*argv, *common, "--out", str(out)]) == 0
        assert (out / "video-000.mp4").is_file() and (out / "prompts.txt").is_file()
    from cmdvideo.data.video_io import read_video

    assert read_video(tmp_path / "i2v" / "video-000.mp4").shape[0] == 12


@pytest.mark.parametrize(
    "argv, message",
    [
        (["sample", "--image", "nope.png"], "--image nope.png: no such file"),
        (["sample", "--image", "IMG", "--strength", "2"], "--strength must be a number in"),
        (["sample", "--prompt", "x", "--strength", "0.5"], "--strength refines an --image"),
        (["sample", "--image", "TXT"], "not an image file"),
        (["transfer", "--content", "nope.mp4", "--motion", "nope.mp4"], "--content nope.mp4"),
        (["transfer", "--content", "TXT", "--motion", "TXT"], "unreadable"),
        (["edit", "--video", "nope.mp4", "--prompt", "x"], "--video nope.mp4"),
        (["edit", "--video", "TXT", "--prompt", "x", "--strength", "7"], "--strength must be"),
        (["sample", "--prompt", "x", "--num-frames", "20", "--overlap", "0"], "--overlap must be"),
    ],
)
def test_cli_bad_input_is_one_line(pipe_dir, tmp_path, capsys, argv, message):
    (tmp_path / "t.txt").write_text("not a video")
    Image.new("RGB", (8, 8)).save(tmp_path / "i.png")
    subs = {"TXT": str(tmp_path / "t.txt"), "IMG": str(tmp_path / "i.png")}
    argv = [subs.get(a, a) for a in argv]
    assert main([*argv, "--model", str(pipe_dir), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
