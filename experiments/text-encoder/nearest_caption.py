"""Does the frozen sentence encoder itself map a paraphrase near the training caption it means?

python experiments/text-encoder/nearest_caption.py [--encoder all-MiniLM-L6-v2] [--out JSON]

Encodes every one-shape moving-shapes caption (10 backgrounds x 10 shape colours x 3 kinds x 10
motions, shape colour != background: 2,700 captions) and each paraphrase of paraphrases.tsv, and
counts how often the caption nearest to the paraphrase (cosine of the pooled embedding: what the
motion DiT reads) has the asked background colour, shape colour, kind and motion: what a model
that only matched the training captions' embeddings could read from the prompt.
"""

import argparse
import json
from pathlib import Path

import torch
from paraphrase_accuracy import HERE, canonical, read_paraphrases  # noqa: I001 (script folder)

from cmdvideo.data.moving_shapes import COLORS, MOTIONS, SHAPES
from cmdvideo.models.text import encode_prompts, load_text_encoder

ATTRIBUTES = ("background", "shape_color", "shape_kind", "motion")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoder", default="all-MiniLM-L6-v2")
    parser.add_argument("--paraphrases", type=Path, default=HERE / "paraphrases.tsv")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)

    encoder, tokenizer = load_text_encoder(args.encoder)
    grid = [
        dict(background=b, shape_color=c, shape_kind=k, motion=m)
        for b in COLORS
        for c in COLORS
        if c != b
        for k in SHAPES
        for m in MOTIONS
    ]
    rows = read_paraphrases(args.paraphrases)

    @torch.no_grad()
    def pooled(prompts):  # (N, D), unit length
        out = [
            encode_prompts(encoder, tokenizer, prompts[i : i + 128], "cpu").pooled
            for i in range(0, len(prompts), 128)
        ]
        return torch.nn.functional.normalize(torch.cat(out), dim=-1)

    nearest = pooled([r["prompt"] for r in rows]) @ pooled([canonical(g) for g in grid]).T
    nearest = nearest.argmax(-1).tolist()
    hits = {
        a: sum(grid[j][a] == r[a] for j, r in zip(nearest, rows)) / len(rows) for a in ATTRIBUTES
    }
    result = {
        "encoder": args.encoder,
        "num_prompts": len(rows),
        "num_captions": len(grid),
        "nearest_caption_accuracy": hits,
        "nearest": [
            {"prompt": r["prompt"], "nearest": canonical(grid[j])} for j, r in zip(nearest, rows)
        ],
    }
    print(
        "nearest training caption has the asked "
        + ", ".join(f"{a.replace('_', ' ')} {v:.3f}" for a, v in hits.items())
    )
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
