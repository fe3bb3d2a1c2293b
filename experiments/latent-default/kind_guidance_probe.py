"""Classifier guidance on the shape kind (Dhariwal & Nichol 2021): does steering the shipped
content model with a noise-aware kind classifier make it draw the asked kind?

0. How fragile is the latent space? Real content-frame latents with i.i.d. Gaussian noise of
   std sigma added, decoded and read by the shape check: if small noise already breaks the
   kind, the denoiser's blobs could be small errors; if not, they are structured ones.
1. A small noise-aware classifier (3 FiLM-conditioned residual conv blocks, 0.71 M) learns the
   kind from noised content-frame latents of the cache's one-shape videos (timesteps uniform
   over the content model's schedule); its held-out accuracy by noise level is printed.
2. The content model samples held-out one-shape captions (DDIM 25, no CFG) with the gradient
   of log p(kind | x_t) added to its noise estimate, eps' = eps - s * sqrt(1 - alpha_bar) *
   grad, for each scale s; the content frames are decoded through the frame VAE and read by
   the hand-written shape check.

python experiments/latent-default/kind_guidance_probe.py runs/default/cache runs/default/ae \
    runs/default/content [--classifier-steps 1500] [--scales 0,1,3,10] [--out JSON] [--figure PNG]
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler
from diffusers.models.embeddings import TimestepEmbedding, Timesteps

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "shape-kinds"))
from content_kind_probe_tiny import KINDS, one_shape_frames  # noqa: E402

from cmdvideo.data.video_io import write_frame_grid  # noqa: E402
from cmdvideo.evaluation.generation import held_out_one_shape_videos, one_shape_scores  # noqa: E402
from cmdvideo.models.codec import VideoCodec  # noqa: E402
from cmdvideo.models.content import content_prediction, load_content_model  # noqa: E402
from cmdvideo.models.text import encode_prompts, load_text_encoder  # noqa: E402
from cmdvideo.pipelines.denoise import denoise  # noqa: E402


class Block(nn.Module):
    """Pre-norm residual conv block, scale/shift from the timestep embedding."""

    def __init__(self, cin: int, cout: int, temb: int):
        super().__init__()
        self.norm1, self.conv1 = (
            nn.GroupNorm(8 if cin >= 8 else 1, cin),
            nn.Conv2d(cin, cout, 3, padding=1),
        )
        self.film, self.norm2 = nn.Linear(temb, 2 * cout), nn.GroupNorm(8, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, emb):
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.film(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.conv2(F.silu(self.norm2(h) * (1 + scale) + shift))
        return h + self.skip(x)


class NoisyKindClassifier(nn.Module):
    def __init__(self, in_channels: int = 4, width: int = 64, classes: int = 3):
        super().__init__()
        self.time_proj, self.time_embed = Timesteps(64, True, 0), TimestepEmbedding(64, 128)
        self.stem = nn.Conv2d(in_channels, width, 3, padding=1)
        self.blocks = nn.ModuleList(
            [
                Block(width, width, 128),
                Block(width, 2 * width, 128),
                Block(2 * width, 2 * width, 128),
            ]
        )
        self.head = nn.Sequential(
            nn.GroupNorm(8, 2 * width),
            nn.SiLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(2 * width, classes),
        )

    def forward(self, x, t):
        emb = self.time_embed(self.time_proj(t))
        h = self.blocks[1](self.blocks[0](self.stem(x), emb), emb)
        return self.head(self.blocks[2](F.avg_pool2d(h, 2), emb))


def train_classifier(frames, kinds, scheduler, steps: int) -> tuple[nn.Module, list[dict]]:
    perm = torch.randperm(len(frames))
    frames, kinds = frames[perm], kinds[perm]
    val_x, val_y, tr_x, tr_y = frames[:1000], kinds[:1000], frames[1000:], kinds[1000:]
    model = NoisyKindClassifier(frames.shape[1])
    optimizer = torch.optim.AdamW(model.parameters(), 1e-3, weight_decay=0.01)
    history, start = [], time.perf_counter()
    for step in range(1, steps + 1):
        i = torch.randint(0, len(tr_x), (256,))
        t = torch.randint(0, scheduler.config.num_train_timesteps, (256,))
        noisy = scheduler.add_noise(tr_x[i], torch.randn_like(tr_x[i]), t)
        loss = F.cross_entropy(model(noisy, t), tr_y[i])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 500 == 0 or step == steps:
            row = {
                "step": step,
                "loss": round(loss.item(), 3),
                "seconds": round(time.perf_counter() - start),
            }
            with torch.no_grad():
                for level in (0, 100, 200, 300, 400, 500, 600, 800):
                    noise = torch.randn(val_x.shape, generator=torch.Generator().manual_seed(1))
                    t = torch.full((len(val_x),), level)
                    right = model(scheduler.add_noise(val_x, noise, t), t).argmax(1) == val_y
                    row[f"accuracy_t{level}"] = round(right.float().mean().item(), 3)
            history.append(row)
            print(json.dumps(row), flush=True)
    return model.eval().requires_grad_(False), history


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cache")
    parser.add_argument("autoencoder")
    parser.add_argument("content_run")
    parser.add_argument("--classifier-steps", type=int, default=1500)
    parser.add_argument("--scales", default="0,1,3,10")
    parser.add_argument("--num-videos", type=int, default=150)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="results/latent-default/kind-guidance.json")
    parser.add_argument("--figure", default="results/latent-default/kind-guidance.png")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    run = Path(args.content_run)
    frames, kinds = one_shape_frames(args.cache)
    codec = VideoCodec.from_pretrained(args.autoencoder).eval()
    pick = torch.randperm(len(frames), generator=torch.Generator().manual_seed(0))[:150]
    robustness = []
    for sigma in (0.0, 0.05, 0.1, 0.2, 0.3, 0.5):
        noise = torch.randn(frames[pick].shape, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            stills = codec.content_to_pixels(frames[pick] + sigma * noise).clamp(-1, 1)
        kind = one_shape_scores(stills, [KINDS[i] for i in kinds[pick]])["shape_kind_accuracy"]
        robustness.append({"sigma": sigma, "shape_kind_accuracy": kind})
        print(json.dumps(robustness[-1]), flush=True)
    train_scheduler = DDPMScheduler.from_pretrained(run / "content_scheduler")
    classifier, history = train_classifier(frames, kinds, train_scheduler, args.classifier_steps)

    unet = load_content_model(run / "content").eval()
    encoder, tokenizer = load_text_encoder(run)
    scheduler = DDIMScheduler.from_pretrained(run / "content_scheduler")
    items, asked = held_out_one_shape_videos(300, 2, 32, 32)
    items, asked = items[: args.num_videos], asked[: args.num_videos]
    prompts = [it["caption"] for it in items]
    target = torch.tensor([KINDS.index(k) for k in asked])
    alphas = scheduler.alphas_cumprod
    with torch.no_grad():
        text, null = (
            encode_prompts(encoder, tokenizer, prompts),
            encode_prompts(encoder, tokenizer, [""]),
        )
    f = codec.frame_vae.downsample
    rows, figure_rows = [], []
    for scale in (float(s) for s in args.scales.split(",")):

        def guided(x, t, scale=scale):
            with torch.no_grad():
                v = content_prediction(unet, x, t, None, text, null)
            if scale == 0:
                return v
            a = alphas[t].view(-1, 1, 1, 1)
            sa, sb = a.sqrt(), (1 - a).sqrt()
            with torch.enable_grad():
                xg = x.detach().requires_grad_(True)
                log_p = F.log_softmax(classifier(xg, t), dim=1).gather(1, target[:, None]).sum()
                (grad,) = torch.autograd.grad(log_p, xg)
            eps = sa * v + sb * x - scale * sb * grad  # v -> eps, then the guidance
            x0 = (x - sb * eps) / sa
            return sa * eps - sb * x0  # back to v, consistent with eps'

        start = time.perf_counter()
        content = denoise(
            guided,
            (len(prompts), unet.config.in_channels, 32 // f, 32 // f),
            scheduler,
            25,
            torch.Generator().manual_seed(0),
            progress=False,
        )
        with torch.no_grad():
            stills = codec.content_to_pixels(content).clamp(-1, 1)
        scores = one_shape_scores(stills, asked, prompts)
        rows.append({"scale": scale, **scores, "seconds": round(time.perf_counter() - start, 1)})
        print(json.dumps(rows[-1]), flush=True)
        figure_rows = [
            stills[[i for i, k in enumerate(asked) if k == kind][:12]].permute(1, 0, 2, 3)
            for kind in KINDS
        ]
    write_frame_grid(args.figure, figure_rows, labels=list(KINDS), upscale=4)
    Path(args.out).write_text(
        json.dumps(
            {
                "latent_noise": robustness,
                "classifier": history,
                "guidance": rows,
                "args": vars(args),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
