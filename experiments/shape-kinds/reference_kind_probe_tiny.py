"""An independent reference for content_kind_probe_tiny.py --binarize (next to this file): the
textbook diffusers recipe with no cmdvideo code in its training or sampling path (cmdvideo only
reads the cache and scores the samples). A plain `UNet2DModel` (1.7 M; class embedding with a
4th, null row dropped in 10 % of the time), the DDPMScheduler loss, DDIM 50 sampling; trained
on the same shape masks with class label = shape kind and scored with the same shape check, 40
samples per kind every 300 steps.

python experiments/shape-kinds/reference_kind_probe_tiny.py STEPS BATCH epsilon|v_prediction
    [--cache runs/cache-anchor-16k] [--figure PNG]
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from diffusers import DDIMScheduler, DDPMScheduler, UNet2DModel

from cmdvideo.data.video_io import write_frame_grid
from cmdvideo.evaluation.generation import one_shape_scores

sys.path.insert(0, str(Path(__file__).parent))
from content_kind_probe_tiny import KINDS, binarize, one_shape_frames  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("steps", type=int)
    parser.add_argument("batch_size", type=int)
    parser.add_argument("prediction_type", choices=["epsilon", "v_prediction"])
    parser.add_argument("--cache", default="runs/cache-anchor-16k")
    parser.add_argument("--figure", default=None, help="PNG: 12 samples per kind, last eval")
    args = parser.parse_args()

    torch.manual_seed(0)
    frames, kinds = one_shape_frames(args.cache)
    frames = binarize(frames)
    unet = UNet2DModel(
        sample_size=32,
        in_channels=3,
        out_channels=3,
        block_out_channels=(32, 64, 64),
        layers_per_block=2,
        down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
        num_class_embeds=4,
        norm_num_groups=8,
    )
    print(sum(p.numel() for p in unet.parameters()) / 1e6, "M", flush=True)
    scheduler = DDPMScheduler(num_train_timesteps=1000, prediction_type=args.prediction_type)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=1e-3)
    start, losses = time.time(), []
    for step in range(1, args.steps + 1):
        pick = torch.randint(0, len(frames), (args.batch_size,))
        clean, labels = frames[pick], kinds[pick].clone()
        labels[torch.rand(args.batch_size) < 0.1] = 3  # the null class
        noise = torch.randn_like(clean)
        t = torch.randint(0, 1000, (args.batch_size,))
        noisy = scheduler.add_noise(clean, noise, t)
        if args.prediction_type == "epsilon":
            target = noise
        else:
            target = scheduler.get_velocity(clean, noise, t)
        prediction = unet(noisy, t, class_labels=labels).sample
        loss = torch.nn.functional.mse_loss(prediction, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if step % 300 == 0 or step == args.steps:
            unet.eval()
            ddim = DDIMScheduler.from_config(scheduler.config)
            ddim.set_timesteps(50)
            asked = torch.arange(3).repeat_interleave(40)
            sample = torch.randn(120, 3, 32, 32, generator=torch.Generator().manual_seed(1))
            with torch.no_grad():
                for tt in ddim.timesteps:
                    output = unet(sample, tt, class_labels=asked).sample
                    sample = ddim.step(output, tt, sample).prev_sample
            sample = sample.clamp(-1, 1)
            unet.train()
            per_kind = {
                kind: one_shape_scores(sample[asked == j], [kind] * 40)["shape_kind_accuracy"]
                for j, kind in enumerate(KINDS)
            }
            row = dict(
                step=step,
                loss=sum(losses[-100:]) / len(losses[-100:]),
                acc=sum(per_kind.values()) / 3,
                per_kind=per_kind,
                s=round(time.time() - start),
            )
            print(json.dumps(row), flush=True)
            if args.figure:
                rows = [sample[asked == j][:12].permute(1, 0, 2, 3) for j in range(3)]
                write_frame_grid(args.figure, rows, labels=list(KINDS), upscale=3)


if __name__ == "__main__":
    main()
