"""The original FVD's resize, from TensorFlow itself, as a test fixture for
``cmdvideo.evaluation.fvd.resize_tf1_bilinear`` (the test suite has no TensorFlow).

The original FVD code (google-research ``frechet_video_distance.py``) resizes frames with
``tf.compat.v1.image.resize_bilinear`` (``align_corners=False``, ``half_pixel_centers=False``).
Run in a venv with TensorFlow (``pip install tensorflow-cpu``):

    /tmp/tfenv/bin/python experiments/i3d-port/tf_resize_reference.py \
        --out tests/fixtures/tf1_resize_bilinear.npz

and, to see the agreement on larger frames, with the project venv:

    .venv/bin/python experiments/i3d-port/tf_resize_reference.py --check /tmp/tf-resize.npz
"""

from __future__ import annotations

import argparse

import numpy as np

# (height, width, output size): small ones for the fixture, larger ones for --check
FIXTURE_CASES = [(6, 10, 16), (12, 12, 21)]  # 12 -> 21: the ratio of 128 -> 224
CHECK_CASES = [(32, 32, 224), (64, 64, 224), (128, 128, 224), (100, 80, 224), (256, 256, 224)]


def write(out: str, cases) -> None:
    import tensorflow as tf

    rng = np.random.default_rng(0)
    arrays = {}
    for i, (h, w, size) in enumerate(cases):
        frames = rng.integers(0, 256, (2, h, w, 3)).astype(np.float32)  # NHWC, uint8 values
        resized = tf.compat.v1.image.resize_bilinear(frames, size=(size, size)).numpy()
        arrays[f"input_{i}"] = frames.transpose(0, 3, 1, 2)  # stored NCHW, as torch uses
        arrays[f"output_{i}"] = resized.transpose(0, 3, 1, 2)
    np.savez_compressed(out, tensorflow=tf.__version__, **arrays)
    print(f"wrote {out} (TensorFlow {tf.__version__})")


def check(path: str) -> None:
    import torch
    import torch.nn.functional as F

    from cmdvideo.evaluation.fvd import resize_tf1_bilinear

    data = np.load(path)
    for i in range(sum(k.startswith("input_") for k in data.files)):
        frames, expected = torch.from_numpy(data[f"input_{i}"]), data[f"output_{i}"]
        size = expected.shape[-1]
        ours = resize_tf1_bilinear(frames, size).numpy()
        half_pixel = F.interpolate(frames, size=(size, size), mode="bilinear").numpy()
        print(
            f"{tuple(frames.shape[-2:])} -> {size}: max|ours - TF| "
            f"{np.abs(ours - expected).max():.2e}; PyTorch's half-pixel bilinear differs "
            f"from TF by up to {np.abs(half_pixel - expected).max():.1f} (of 255)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="write a reference (needs TensorFlow)")
    parser.add_argument("--large", action="store_true", help="the 224x224 cases, for --check")
    parser.add_argument("--check", help="compare a reference with resize_tf1_bilinear (torch)")
    args = parser.parse_args()
    if args.out:
        write(args.out, CHECK_CASES if args.large else FIXTURE_CASES)
    if args.check:
        check(args.check)


if __name__ == "__main__":
    main()
