"""The content model's learning curve of what the README's gate measures: for every snapshot of
a `cmdvideo train content` run (train.snapshot_every), content frames sampled for held-out
one-shape captions, decoded to pixels (through the frame VAE in latent mode), and read by the
hand-written checks — shape kind (chance 33 %), shape colour, background.

python experiments/shape-kinds/kind_curve.py CONTENT_RUN AUTOENCODER_RUN [--num-videos 300] [--steps 25]
    [--guidance 1.0] [--out results/latent-default/kind-curve]

Writes OUT.json (one row per snapshot), OUT.png (the curve) and OUT-samples.png (the last
snapshot's content frames, 12 per kind: circle, square, triangle rows).
"""

import argparse
import json
import time
from pathlib import Path

import torch
from diffusers import DDIMScheduler

from cmdvideo.config import load_config
from cmdvideo.data.moving_shapes import SHAPES
from cmdvideo.data.video_io import write_frame_grid
from cmdvideo.evaluation.generation import held_out_one_shape_videos, one_shape_scores
from cmdvideo.models.codec import VideoCodec
from cmdvideo.models.content import load_content_model
from cmdvideo.models.text import encode_prompts, load_text_encoder
from cmdvideo.pipelines.denoise import sample_content


def sample_stills(run: Path, codec, prompts, steps, guidance, seed=0) -> torch.Tensor:
    """Content frames of one run folder (a snapshot or the final run) as pixels in [-1, 1]."""
    unet = load_content_model(run / "content").eval()
    encoder, tokenizer = load_text_encoder(run)
    scheduler = DDIMScheduler.from_config(DDIMScheduler.load_config(run / "content_scheduler"))
    data = load_config(run / "config.yaml").data
    f = codec.frame_vae.downsample if codec.latent_mode else 1
    with torch.no_grad():
        text = encode_prompts(encoder, tokenizer, prompts)
        null = encode_prompts(encoder, tokenizer, [""])
        content = sample_content(
            unet,
            scheduler,
            len(prompts),
            None,
            text,
            null,
            guidance,
            steps,
            torch.Generator().manual_seed(seed),
            progress=False,
            size=(data.height // f, data.width // f),
        )
        return codec.content_to_pixels(content).clamp(-1, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("content_run")
    parser.add_argument("autoencoder")
    parser.add_argument("--num-videos", type=int, default=300)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--guidance", type=float, default=1.0)
    parser.add_argument("--out", default="results/latent-default/kind-curve")
    args = parser.parse_args()

    run = Path(args.content_run)
    codec = VideoCodec.from_pretrained(args.autoencoder).eval()
    data = load_config(run / "config.yaml").data
    world = data.world or "random"  # runs from before worlds were recorded: the random one
    items, kinds = held_out_one_shape_videos(
        args.num_videos, 2, data.height, data.width, world=world
    )
    prompts = [it["caption"] for it in items]
    snapshots = sorted((run / "snapshots").glob("step-*"))
    rows = []
    for snap in snapshots:
        start = time.perf_counter()
        stills = sample_stills(snap, codec, prompts, args.steps, args.guidance)
        scores = one_shape_scores(stills, kinds, prompts)
        rows.append(
            {
                "step": int(snap.name.split("-")[1]),
                "prompts": len(prompts),
                **scores,
                "seconds": round(time.perf_counter() - start, 1),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(
        json.dumps(
            {"run": str(run), "steps": args.steps, "guidance": args.guidance, "rows": rows},
            indent=1,
        )
    )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for key, label in (
        ("shape_kind_accuracy", "shape kind"),
        ("shape_color_accuracy", "shape colour"),
        ("background_accuracy", "background"),
    ):
        ax.plot([r["step"] for r in rows], [100 * r[key] for r in rows], marker="o", label=label)
    ax.axhline(100 / 3, color="gray", ls=":", label="chance (kind)")
    ax.axhline(85, color="red", ls="--", lw=0.8, label="gate (kind 85 %)")
    ax.set(
        xlabel="content training step",
        ylabel="% of one-shape prompts",
        ylim=(0, 102),
        title=f"content frames of held-out prompts ({len(prompts)})",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"), dpi=110)
    if snapshots:
        per_kind = [(f"a white {k} moving left on a black background") for k in SHAPES]
        stills = sample_stills(
            snapshots[-1],
            codec,
            [p for p in per_kind for _ in range(12)],
            args.steps,
            args.guidance,
            seed=1,
        )
        rows_img = [stills[12 * i : 12 * (i + 1)].permute(1, 0, 2, 3) for i in range(len(SHAPES))]
        write_frame_grid(
            out.parent / f"{out.name}-samples.png", rows_img, labels=list(SHAPES), upscale=2
        )


if __name__ == "__main__":
    main()
