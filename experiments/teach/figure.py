"""The README's GIF of taught concepts: held-out prompts of each adapter, and two adapters at once.

    python experiments/teach/figure.py    # after run.py made runs/teach/<concept>-16

Writes docs/figures/teach.gif (one row per prompt, two seeds side by side) and
docs/figures/teach_prompts.txt.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from cmdvideo import CMDPipeline
from cmdvideo.data.video_io import write_video

ROWS = [
    (["bar"], "a purple bar moving down on a yellow background"),
    (["semicircle"], "a cyan semicircle shrinking on a red background"),
    (["zigzagging"], "a purple triangle zigzagging on a white background"),
    (["shaking"], "an orange square shaking on a blue background"),
    (["bar", "zigzagging"], "a gray bar zigzagging on a white background"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--adapters", default="runs/teach/{}-16")
    parser.add_argument("--out", default="docs/figures")
    args = parser.parse_args()
    torch.set_num_threads(2)
    pipe = CMDPipeline.from_pretrained("moving-shapes-tiny")
    pipe.set_progress_bar_config(disable=True)
    for concept in sorted({c for names, _ in ROWS for c in names}):
        pipe.load_lora_weights(args.adapters.format(concept), adapter_name=concept)
    rows = []
    for names, prompt in ROWS:
        with pipe.adapters_in_use(names):
            out = pipe([prompt, prompt], generator=torch.Generator().manual_seed(5))
        frames = out.frames  # (2, T, H, W, 3) in [0, 1]
        gap = np.ones((frames.shape[1], frames.shape[2], 1, 3))
        rows.append(np.concatenate([frames[0], gap, frames[1]], axis=2))
        rows.append(np.ones((frames.shape[1], 1, rows[-1].shape[2], 3)))
    grid = np.concatenate(rows[:-1], axis=1)
    out = Path(args.out)
    write_video(out / "teach.gif", grid.astype(np.float32), fps=8, upscale=3)
    (out / "teach_prompts.txt").write_text(
        "".join(f"row {i + 1} ({' + '.join(n)}): {p}\n" for i, (n, p) in enumerate(ROWS))
    )
    print(out / "teach.gif")


if __name__ == "__main__":
    main()
