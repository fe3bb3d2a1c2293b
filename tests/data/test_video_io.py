"""Tests for cmdvideo.data.video_io: the one video reader/writer."""

import av
import numpy as np
import pytest
import torch
from conftest import smooth_frames
from conftest import write_test_video as make_video
from PIL import Image

from cmdvideo.data import video_io
from cmdvideo.data.video_io import (
    VideoReadError,
    from_uint8,
    probe_video,
    read_video,
    to_uint8,
    write_frame_grid,
    write_video,
)


def corrupt_middle(path, num_bytes=300):
    """Overwrite bytes in the middle of the file with seeded noise (container stays intact)."""
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid : mid + num_bytes] = np.random.default_rng(0).bytes(num_bytes)
    path.write_bytes(bytes(data))


def test_mp4_round_trip(tmp_path):
    frames = smooth_frames(12)
    path = write_video(tmp_path / "sub" / "a.mp4", frames, fps=8)
    assert path.is_file() and probe_video(path) == 12
    back = read_video(path)
    assert back.shape == (12, 48, 64, 3) and back.dtype == np.uint8
    assert np.abs(back.astype(float) - frames).mean() < 12


def test_mp4_from_model_layout_pads_odd_sizes_and_upscales(tmp_path):
    video = from_uint8(smooth_frames(5, size=(15, 17)))  # (3, T, H, W) in [-1, 1]
    assert read_video(write_video(tmp_path / "odd.mp4", video)).shape == (5, 16, 18, 3)
    back = read_video(write_video(tmp_path / "up.mp4", video.numpy(), upscale=2))
    assert back.shape == (5, 30, 34, 3)
    expected = to_uint8(video).repeat(2, axis=1).repeat(2, axis=2)
    assert np.abs(back.astype(float) - expected).mean() < 12


def test_mp4_falls_back_to_mpeg4(tmp_path, monkeypatch):
    monkeypatch.setattr(video_io, "_mp4_codec", lambda: "mpeg4")
    frames = smooth_frames(6)
    path = write_video(tmp_path / "m.mp4", frames)
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.name == "mpeg4"
    assert np.abs(read_video(path).astype(float) - frames).mean() < 12


def test_gif_round_trip(tmp_path):
    frames = smooth_frames(6)
    path = write_video(tmp_path / "a.gif", frames, fps=10)
    with Image.open(path) as im:
        assert im.n_frames == 6 and im.info["loop"] == 0 and im.info["duration"] == 100
    back = read_video(path)
    assert back.shape == (6, 48, 64, 3)
    assert np.abs(back.astype(float) - frames).mean() < 16  # palette quantisation


def test_unknown_suffix_raises(tmp_path):
    with pytest.raises(ValueError, match=r"\.mp4"):
        write_video(tmp_path / "a.avi", smooth_frames(2))


def test_stride_start_and_too_short(tmp_path):
    path = make_video(tmp_path / "v.mp4", 20)
    every = read_video(path)
    assert every.shape[0] == 20
    np.testing.assert_array_equal(read_video(path, 5, frame_stride=4, start=0), every[0:17:4])
    # Stride 10 does not fit 5 frames into 20: the largest fitting stride (4) is used.
    np.testing.assert_array_equal(read_video(path, 5, frame_stride=10, start=0), every[0:17:4])
    # Default start: the centered clip (20 - 4 = 16 possible starts → start 8).
    np.testing.assert_array_equal(read_video(path, 4), every[8:12])
    a = read_video(path, 4, rng=np.random.default_rng(3))
    b = read_video(path, 4, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    with pytest.raises(VideoReadError) as info:
        read_video(path, 21)
    assert info.value.reason == "too short"
    with pytest.raises(ValueError, match="start"):
        read_video(path, 4, start=17)


def test_bad_files_raise_with_reasons(tmp_path):
    (tmp_path / "notes.mp4").write_text("not a video")
    with pytest.raises(VideoReadError) as info:
        probe_video(tmp_path / "notes.mp4")
    assert info.value.reason == "unreadable"
    with pytest.raises(FileNotFoundError):
        probe_video(tmp_path / "missing.mp4")

    audio = tmp_path / "audio.wav"  # a valid media file without a video stream
    with av.open(str(audio), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 800), np.int16), format="s16", layout="mono"
        )
        frame.sample_rate = 8000
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    with pytest.raises(VideoReadError) as info:
        probe_video(audio)
    assert info.value.reason == "no video stream"

    # A cut-off download: the header (moved to the front) promises more frames than remain.
    cut = make_video(tmp_path / "cut.mp4", 24, faststart=True)
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    with pytest.raises(VideoReadError) as info:
        read_video(cut, 4)
    assert info.value.reason == "truncated"

    # Corrupted mid-stream: every packet is there (probing is fine), decoding fails.
    bad = make_video(tmp_path / "bad.mp4", 40, faststart=True)
    corrupt_middle(bad)
    assert probe_video(bad) == 40
    with pytest.raises(VideoReadError) as info:
        read_video(bad, 16)
    assert info.value.reason == "decode error"


def test_uint8_round_trip():
    frames = np.random.default_rng(0).integers(0, 256, (3, 5, 7, 3), dtype=np.uint8)
    video = from_uint8(frames)
    assert video.shape == (3, 3, 5, 7) and video.dtype == torch.float32
    assert video.min() >= -1 and video.max() <= 1
    np.testing.assert_array_equal(to_uint8(video), frames)
    np.testing.assert_array_equal(to_uint8(video.numpy()), frames)
    # Out-of-range values are clamped; grey (C = 1) becomes RGB.
    grey = to_uint8(torch.tensor([-3.0, 0.0, 3.0]).view(1, 1, 1, 3))
    assert grey.shape == (1, 1, 3, 3) and grey[0, 0, :, 0].tolist() == [0, 128, 255]
    with pytest.raises(ValueError, match="C, T, H, W"):
        to_uint8(torch.zeros(4, 2, 8, 8))


def test_frame_grid_size_and_content(tmp_path):
    video = from_uint8(smooth_frames(4, size=(8, 8)))  # (3, 4, 8, 8)
    image = video[:, 0]  # (3, 8, 8): shown once
    rows = [video, image, video[:, :3]]
    path = write_frame_grid(tmp_path / "g" / "grid.png", rows, upscale=2, pad=2)
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert im.size == (4 * (16 + 2) + 2, 3 * (16 + 2) + 2)
        grid = np.asarray(im.convert("RGB"))
    first = to_uint8(video)[1].repeat(2, axis=0).repeat(2, axis=1)  # row 0, column 1
    np.testing.assert_array_equal(grid[2:18, 20:36], first)
    assert (grid[20:36, 20:36] == 255).all()  # the image row has only one cell
    labelled = write_frame_grid(tmp_path / "l.png", rows, labels=["source", "content", "recon"])
    with Image.open(labelled) as im:
        assert im.size[0] > 4 * (8 + 2) + 2 and im.size[1] == 3 * (8 + 2) + 2
    with pytest.raises(ValueError, match="labels"):
        write_frame_grid(tmp_path / "x.png", rows, labels=["one"])


def _gop_video(path, num_frames=64, gop=8, fps=24):
    """An H.264 video with a keyframe every ``gop`` frames (so seeking can skip most of it)."""
    from conftest import smooth_frames

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width, stream.pix_fmt = 32, 48, "yuv420p"
        stream.codec_context.gop_size = gop
        for frame in smooth_frames(num_frames, (32, 48)):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def test_clips_are_read_by_seeking_and_match_decoding_from_the_start(tmp_path):
    path = _gop_video(tmp_path / "gop.mp4")
    with av.open(str(path)) as container:
        everything = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    for start in (0, 1, 7, 8, 9, 30, 48):
        wanted = [start + 2 * k for k in range(8)]
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            seeked = video_io._seek_and_decode(container, stream, wanted)
        assert seeked is not None  # the timestamps were usable: it really seeked
        np.testing.assert_array_equal(np.stack(seeked), everything[wanted])
        clip = video_io.read_video(path, num_frames=8, frame_stride=2, start=start)
        np.testing.assert_array_equal(clip, everything[wanted])


def test_probe_info_reads_frames_rate_and_size(tmp_path):
    info = video_io.probe_info(_gop_video(tmp_path / "gop.mp4", num_frames=20, fps=12))
    assert info == {"num_frames": 20, "fps": 12.0, "width": 48, "height": 32}


def test_untrustworthy_timestamps_fall_back_to_decoding_from_the_start(tmp_path):
    """H.264 in AVI has timestamps out of presentation order: seeking by them would pick wrong
    frames, so the reader notices and decodes from the first frame instead."""
    path = make_video(tmp_path / "clip.avi", 40)
    with av.open(str(path)) as container:
        everything = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    for start in (3, 9, 20):
        clip = video_io.read_video(path, num_frames=8, frame_stride=2, start=start)
        np.testing.assert_array_equal(clip, everything[[start + 2 * k for k in range(8)]])


def test_a_clip_at_the_end_of_a_file_with_an_undecodable_last_packet_moves_back(
    tmp_path, monkeypatch
):
    """Real MPEG-4 files can hold more packets than decodable frames (box.mp4 of opencv-doc:
    456 packets, 455 frames); a clip ending on the missing frame is moved back, not lost."""
    path = make_video(tmp_path / "v.mp4", 20)
    expected = read_video(path, 4, 2, start=11)  # frames 11, 13, 15, 17
    real = video_io._decode_from_start
    monkeypatch.setattr(video_io, "_seek_and_decode", lambda *args: None)
    monkeypatch.setattr(
        video_io,
        "_decode_from_start",
        lambda c, s, wanted, *rest: real(c, s, [w for w in wanted if w < 19], *rest),
    )
    assert np.array_equal(read_video(path, 4, 2, start=13), expected)  # 13..19: 19 is missing
    assert read_video(path).shape[0] == 19  # "every frame": the ones that decode
    with pytest.raises(VideoReadError, match="decoded 3 of 4"):  # not at the end: an error
        monkeypatch.setattr(
            video_io,
            "_decode_from_start",
            lambda c, s, wanted, *rest: real(c, s, [w for w in wanted if w != 5], *rest),
        )
        read_video(path, 4, 2, start=1)
