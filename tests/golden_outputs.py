"""The bundled pipeline's outputs for fixed seeds through every entry point: what
tests/pipelines/test_golden.py compares against tests/fixtures/golden.npz.

    python tests/golden_outputs.py            # rewrite the fixture (after a new bundle only)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

FIXTURE = Path(__file__).parent / "fixtures" / "golden.npz"
STEPS = 4  # few steps: the entry points' wiring, not the quality


def load() -> dict[str, np.ndarray]:
    """The recorded outputs, float32 in [0, 1]."""
    with np.load(FIXTURE) as stored:
        return {k: stored[k].astype(np.float32) / 65535 for k in stored.files}


def bundle_outputs() -> dict[str, np.ndarray]:
    """{name: float32 frames in [0, 1]} of text-, class-, image-to-video, motion transfer,
    both edits and a long video, each from its own seeded generator, on one thread."""
    from cmdvideo import CMDPipeline
    from cmdvideo.data.moving_shapes import MovingShapes

    torch.set_num_threads(1)
    pipe = CMDPipeline.from_pretrained("moving-shapes-tiny")
    pipe.set_progress_bar_config(disable=True)
    real = MovingShapes(num_videos=4, seed=11)
    a, b = ((real[i]["video"].permute(1, 2, 3, 0) + 1) / 2 for i in (0, 1))  # (T, H, W, 3)
    seed = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    common = {"num_inference_steps": STEPS, "output_type": "np"}
    calls = {
        "text": lambda: pipe(
            prompt=[
                "a red circle moving left on a black background",
                "a white square rotating on a blue background",
            ],
            generator=seed(),
            **common,
        ),
        "class": lambda: pipe(class_labels=["up", "grow"], generator=seed(), **common),
        "image": lambda: pipe.image_to_video(
            a[8].numpy(), prompt="moving down", generator=seed(), **common
        ),
        "transfer": lambda: pipe.transfer_motion(a.numpy(), b.numpy(), output_type="np"),
        "edit_content": lambda: pipe.edit_video(
            a.numpy(), prompt="a green circle", generator=seed(), **common
        ),
        "edit_motion": lambda: pipe.edit_video(
            a.numpy(), class_labels="left", edit="motion", generator=seed(), **common
        ),
        "long": lambda: pipe(
            prompt="a yellow triangle moving right", num_frames=24, generator=seed(), **common
        ),
    }
    return {name: np.asarray(call().frames, dtype=np.float32) for name, call in calls.items()}


if __name__ == "__main__":
    outputs = bundle_outputs()
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    # 16 bits per value (steps of 1.5e-5) keep the fixture small; read back with `load`
    np.savez_compressed(
        FIXTURE, **{k: np.round(v * 65535).astype(np.uint16) for k, v in outputs.items()}
    )
    print({k: v.shape for k, v in outputs.items()}, FIXTURE.stat().st_size, "bytes")
