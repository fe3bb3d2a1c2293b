"""python scripts/reference_kind_probe_tiny.py STEPS BATCH epsilon|v_prediction [CACHE]

Independent reference: plain diffusers UNet2DModel + DDPMScheduler eps + DDIM sampling, no cmdvideo code
in the train/sample path. Same binarized frames, class = kind."""

import json
import sys
import time

import torch

sys.path.insert(0, "scripts")
from content_kind_probe_tiny import KINDS, binarize, one_shape_frames
from diffusers import DDIMScheduler, DDPMScheduler, UNet2DModel

from cmdvideo.data.video_io import write_frame_grid
from cmdvideo.evaluation.generation import one_shape_scores

torch.manual_seed(0)
steps = int(sys.argv[1])
bs = int(sys.argv[2])
pred = sys.argv[3]
f, k = one_shape_frames('sys.argv[4] if len(sys.argv) > 4 else "runs/cache-anchor-16k"')
f = binarize(f)
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
sched = DDPMScheduler(num_train_timesteps=1000, prediction_type=pred)
opt = torch.optim.AdamW(unet.parameters(), lr=1e-3)
t0 = time.time()
losses = []
for step in range(1, steps + 1):
    i = torch.randint(0, len(f), (bs,))
    x = f[i]
    y = k[i].clone()
    y[torch.rand(bs) < 0.1] = 3
    n = torch.randn_like(x)
    t = torch.randint(0, 1000, (bs,))
    xt = sched.add_noise(x, n, t)
    target = n if pred == "epsilon" else sched.get_velocity(x, n, t)
    loss = torch.nn.functional.mse_loss(unet(xt, t, class_labels=y).sample, target)
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())
    if step % 300 == 0 or step == steps:
        unet.eval()
        ds = DDIMScheduler.from_config(sched.config)
        ds.set_timesteps(50)
        g = torch.Generator().manual_seed(1)
        labels = torch.arange(3).repeat_interleave(40)
        x_ = torch.randn(120, 3, 32, 32, generator=g)
        with torch.no_grad():
            for tt in ds.timesteps:
                x_ = ds.step(unet(x_, tt, class_labels=labels).sample, tt, x_).prev_sample
        x_ = x_.clamp(-1, 1)
        unet.train()
        pk = {
            kk: one_shape_scores(x_[labels == j], [kk] * 40)["shape_kind_accuracy"]
            for j, kk in enumerate(KINDS)
        }
        print(
            json.dumps(
                dict(
                    step=step,
                    loss=sum(losses[-100:]) / 100,
                    acc=sum(pk.values()) / 3,
                    per_kind=pk,
                    s=round(time.time() - t0),
                )
            ),
            flush=True,
        )
        write_frame_grid(
            f"/tmp/reference_kind_probe_{pred}.png",
            [x_[labels == j][:12].permute(1, 0, 2, 3) for j in range(3)],
            labels=list(KINDS),
            upscale=3,
        )
