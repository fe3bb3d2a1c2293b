"""Tests for cmdvideo.data.video_folder.VideoFolder: real videos as a Dataset."""

import json
import logging

import numpy as np
import pytest
import torch
from conftest import write_test_video as make_video
from torch.utils.data import DataLoader

from cmdvideo.data import collate_videos
from cmdvideo.data.video_folder import VideoFolder
from cmdvideo.data.video_io import from_uint8, read_video


def test_flat_folder_item_layout(tmp_path):
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        make_video(tmp_path / name, 12)
    (tmp_path / "README.txt").write_text("ignored silently")
    ds = VideoFolder(tmp_path, num_frames=8, height=32, width=32, train=False)
    assert len(ds) == 3 and ds.classes == [] and ds.skipped == {} and ds.skip_counts() == {}
    item = ds[1]
    assert item["video"].shape == (3, 8, 32, 32) and item["video"].dtype == torch.float32
    assert -1 <= item["video"].min() and item["video"].max() <= 1 and item["video"].std() > 0.1
    assert item["label"] == -1 and item["caption"] == "" and item["index"] == 1
    assert item["path"].endswith("b.mp4") and item["skipped"] == []


def test_ucf_layout_labels_from_sorted_class_folders(tmp_path):
    make_video(tmp_path / "b_class" / "x.mp4", 8)
    make_video(tmp_path / "a_class" / "group1" / "y.mp4", 8)  # found recursively
    ds = VideoFolder(tmp_path, num_frames=4, height=16, width=16)
    assert ds.classes == ["a_class", "b_class"]
    labels = {ds[i]["path"].rsplit("/", 1)[-1]: ds[i]["label"] for i in range(len(ds))}
    assert labels == {"y.mp4": 0, "x.mp4": 1}


def test_csv_and_jsonl_index_with_captions(tmp_path):
    make_video(tmp_path / "clips" / "a.mp4", 8)
    make_video(tmp_path / "clips" / "1234.mp4", 8)
    (tmp_path / "index.csv").write_text(
        "video_path,caption\nclips/a.mp4,a red ball\nclips/1234.mp4,waves\nclips/gone.mp4,lost\n"
    )
    ds = VideoFolder(tmp_path / "index.csv", num_frames=4, height=16, width=16)
    assert [ds[i]["caption"] for i in range(len(ds))] == ["a red ball", "waves"]
    assert ds[0]["path"] == str(tmp_path / "clips" / "a.mp4") and ds[0]["label"] == -1
    assert ds.skipped == {str(tmp_path / "clips" / "gone.mp4"): "missing"}

    rows = [
        {"videoid": "clips/1234", "text": "waves", "class": "sea"},  # no extension
        {"videoid": "clips/a", "text": "a red ball", "class": "ball"},
    ]
    (tmp_path / "index.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    ds = VideoFolder(tmp_path / "index.jsonl", num_frames=4, height=16, width=16)
    assert ds.classes == ["ball", "sea"]
    assert [(ds[i]["caption"], ds[i]["label"]) for i in range(2)] == [
        ("waves", 1),
        ("a red ball", 0),
    ]
    assert ds[0]["path"].endswith("1234.mp4")
    with pytest.raises(ValueError, match="path_column"):
        VideoFolder(tmp_path / "index.jsonl", path_column="nope")


def test_center_clip_and_crop_for_eval(tmp_path):
    path = make_video(tmp_path / "a.mp4", 20)
    ds = VideoFolder(tmp_path, num_frames=8, height=48, width=48, train=False)
    expected = from_uint8(read_video(path, 8))[..., 8:56]  # centered clip, no resize needed
    assert torch.equal(ds[0]["video"], expected)
    ds.set_epoch(5)
    assert torch.equal(ds[0]["video"], expected)


def test_train_randomness_depends_only_on_seed_epoch_index(tmp_path):
    for name in ("a.mp4", "b.mp4"):
        make_video(tmp_path / name, 40)

    def make(seed=0, epoch=0):
        ds = VideoFolder(tmp_path, num_frames=8, height=32, width=32, seed=seed)
        ds.set_epoch(epoch)
        return ds

    ds = make()
    epoch0 = [ds[i]["video"] for i in range(2)]
    other = make()  # a fresh dataset, visited in the opposite order, gives the same clips
    assert all(torch.equal(other[i]["video"], epoch0[i]) for i in (1, 0))
    assert any(not torch.equal(make(epoch=1)[i]["video"], epoch0[i]) for i in range(2))
    assert any(not torch.equal(make(seed=1)[i]["video"], epoch0[i]) for i in range(2))
    # Same batches whatever the number of DataLoader workers.
    for workers in (0, 2):
        loader = DataLoader(make(), batch_size=1, num_workers=workers, collate_fn=collate_videos)
        assert torch.equal(torch.cat([b["video"] for b in loader]), torch.stack(epoch0))


def test_bad_files_are_skipped_with_reasons(bad_video_folder, caplog):
    tmp_path = bad_video_folder
    good, cut, short = (tmp_path / f"{name}.mp4" for name in ("good", "cut", "short"))
    (tmp_path / "notes.txt").write_text("not a video extension: ignored silently")
    with caplog.at_level(logging.WARNING, logger="cmdvideo.data.video_folder"):
        ds = VideoFolder(tmp_path, num_frames=16, height=32, width=32)
    assert len(ds) == 1 and ds.samples[0][0] == str(good)
    assert ds.skipped == {
        str(cut): "truncated",
        str(tmp_path / "notes.mp4"): "unreadable",
        str(short): "too short",
        str(tmp_path / "packed.mp4.gz"): "compressed",
    }
    assert ds.skip_counts() == {"truncated": 1, "unreadable": 1, "too short": 1, "compressed": 1}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 4
    assert any("gunzip packed.mp4.gz" in w for w in warnings)
    for name in ("cut.mp4", "notes.mp4", "short.mp4", "packed.mp4.gz"):
        assert sum(name in w for w in warnings) == 1
    batches = list(DataLoader(ds, batch_size=2, collate_fn=collate_videos))
    assert len(batches) == 1 and batches[0]["video"].shape == (1, 3, 16, 32, 32)


def test_only_bad_files_raise_before_training(tmp_path):
    (tmp_path / "notes.mp4").write_text("not a video")
    make_video(tmp_path / "short.mp4", 3)
    with pytest.raises(ValueError) as info:
        VideoFolder(tmp_path, num_frames=16)
    assert "'unreadable': 1" in str(info.value) and "'too short': 1" in str(info.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"\.mp4"):
        VideoFolder(tmp_path / "empty")
    with pytest.raises(FileNotFoundError):
        VideoFolder(tmp_path / "missing")


def test_decode_failure_at_runtime_substitutes_next_video(tmp_path, caplog):
    good = make_video(tmp_path / "a.mp4", 40)
    bad = make_video(tmp_path / "b.mp4", 40, faststart=True)
    data = bytearray(bad.read_bytes())  # corrupt mid-stream: probes fine, fails to decode
    data[len(data) // 2 : len(data) // 2 + 300] = np.random.default_rng(0).bytes(300)
    bad.write_bytes(bytes(data))
    ds = VideoFolder(tmp_path, num_frames=16, height=32, width=32, train=False)
    assert len(ds) == 2 and ds.skipped == {}
    with caplog.at_level(logging.WARNING, logger="cmdvideo.data.video_folder"):
        item = ds[1]
    assert item["path"] == str(good) and item["index"] == 1
    assert item["skipped"] == [(str(bad), "decode error")]
    assert any("b.mp4" in r.getMessage() for r in caplog.records)
    again = ds[1]  # the bad index is remembered, not retried
    assert again["skipped"] == [] and again["path"] == str(good)
    batch = next(
        iter(
            DataLoader(
                VideoFolder(tmp_path, num_frames=16, height=32, width=32, train=False),
                batch_size=2,
                collate_fn=collate_videos,
            )
        )
    )
    assert batch["video"].shape == (2, 3, 16, 32, 32)
    assert batch["skipped"] == [[], [(str(bad), "decode error")]]


def test_an_index_written_once_replaces_probing_at_start_up(
    bad_video_folder, tmp_path, monkeypatch, capsys
):
    """`cmdvideo index` probes every file once (frames, fps, size, readability); a VideoFolder
    on the index then opens no file at construction and knows the same videos and skips."""
    from cmdvideo.cli import main
    from cmdvideo.data import video_folder

    index = tmp_path / "index.jsonl"
    assert main(["index", str(bad_video_folder), "--out", str(index), "--workers", "2"]) == 0
    assert "5 videos" in capsys.readouterr().out
    rows = [json.loads(line) for line in index.read_text().splitlines()]
    good = next(r for r in rows if r["path"].endswith("good.mp4"))
    assert good["num_frames"] == 24 and good["width"] == 64 and good["height"] == 48
    assert good["error"] == "" and good["fps"] > 0
    scanned = VideoFolder(bad_video_folder, num_frames=8)

    def no_probe(*args):
        raise AssertionError("a file was probed although the index says everything")

    monkeypatch.setattr(video_folder, "_probe", no_probe)
    indexed = VideoFolder(index, num_frames=8, height=16, width=16)
    assert [s[0] for s in indexed.samples] == [s[0] for s in scanned.samples]
    assert indexed.skip_counts() == scanned.skip_counts()
    assert indexed[0]["video"].shape == (3, 8, 16, 16)
    assert main(["index", str(bad_video_folder), "--out", str(tmp_path / "x.csv")]) == 2


def test_held_out_view_reads_evenly_spaced_clips_of_each_file(tmp_path):
    """clips_per_video K: item i is a clip of file i // K: random in training, clip i % K of
    K evenly spaced from the first frame to the last in the held-out view."""
    make_video(tmp_path / "a.mp4", 40)
    make_video(tmp_path / "b.mp4", 10)
    train = VideoFolder(
        tmp_path, num_frames=8, height=16, width=16, frame_stride=2, clips_per_video=3
    )
    assert len(train) == 6  # 3 random clips of each file per epoch
    first = [train[i]["video"] for i in range(3)]
    assert not torch.equal(first[0], first[1]) and train[3]["path"].endswith("b.mp4")
    view = train.evaluation_view(3)
    assert len(view) == 6
    assert [view._clip_start(k, 40) for k in range(3)] == [(0, 2), (12, 2), (25, 2)]
    assert [view._clip_start(k, 10) for k in range(3)] == [(0, 1), (1, 1), (2, 1)]
    clips = [view[i] for i in range(6)]
    assert [c["path"].endswith("a.mp4") for c in clips] == [True] * 3 + [False] * 3
    assert not torch.equal(clips[0]["video"], clips[2]["video"])
    assert len(view.evaluation_view()) == 2
    with pytest.raises(ValueError, match="clips_per_video"):
        train.evaluation_view(0)
