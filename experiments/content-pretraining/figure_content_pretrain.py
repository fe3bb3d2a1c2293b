"""Plot preview/val_loss of the fine-tuned (frame-pretrained) and scratch content runs.

python experiments/content-pretraining/figure_content_pretrain.py runs/content-pretrain \
    docs/figures/content_pretrain_vs_scratch.png
"""

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def val_losses(run: Path) -> tuple[list[int], list[float]]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "preview/val_loss" in r]
    return [r["step"] for r in rows], [r["preview/val_loss"] for r in rows]


def main(root: Path, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 3.6))
    summary = {}
    pretrain_steps = max(val_losses(root / "frames")[0], default=0)
    for name, label in (
        ("finetune", f"after {pretrain_steps} steps of frame pretraining"),
        ("scratch", "from scratch"),
    ):
        steps, losses = val_losses(root / name)
        ax.plot(steps, losses, marker="o", markersize=3, label=label)
        summary[name] = dict(zip(steps, losses))
    ax.set_xlabel("fine-tuning / training step on content frames")
    ax.set_ylabel("held-out denoising loss (ε MSE)")
    ax.set_title("Content model on content frames (tiny, moving-shapes)", fontsize=10)
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    for step in sorted(summary["scratch"]):
        ft, sc = summary["finetune"].get(step), summary["scratch"][step]
        print(f"step {step:5d}  finetune {ft:.4f}  scratch {sc:.4f}")
    print(f"wrote {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="OUT_ROOT of content_pretrain_experiment.sh")
    parser.add_argument("out", type=Path, help="PNG to write")
    args = parser.parse_args()
    main(args.root, args.out)
