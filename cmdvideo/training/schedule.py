"""The noise schedule a diffusion stage trains on and its sampler uses.

A model fine-tuned from a pretrained one must keep the schedule it was trained on: Stable
Diffusion 1.5 / 2.1 use ``scaled_linear`` betas from 0.00085 to 0.012 (not DDPM's linear
0.0001–0.02), ``steps_offset`` 1 and ``set_alpha_to_one`` False in sampling, and SD 2.1-v
predicts v. So each setting comes, in this order, from the stage's config (set on purpose),
from the ``scheduler/`` of ``content.init`` (an SD folder or hub id, or a cmdvideo run), or from
our defaults. The result is saved with the model as a DDIM config, which the pipeline samples
with; training draws noise from a DDPM scheduler of the same betas.
"""

from __future__ import annotations

import inspect
from pathlib import Path

from diffusers import DDIMScheduler, DDPMScheduler

# Our defaults: DDPM's (Ho et al.) linear schedule, ε-prediction.
DEFAULTS = {
    "num_train_timesteps": 1000,
    "beta_start": 0.0001,
    "beta_end": 0.02,
    "beta_schedule": "linear",
    "prediction_type": "epsilon",
    "timestep_spacing": "leading",
    "steps_offset": 0,
    "set_alpha_to_one": True,
}
SCHEDULE_KEYS = tuple(DEFAULTS)


def init_scheduler_config(init: str | Path | None, subfolder: str | None = None) -> dict:
    """The scheduler config that came with a pretrained content model, or {}.

    Looks at ``INIT/scheduler`` (a Stable Diffusion folder or cached hub id, where the UNet is
    ``INIT/unet``), ``INIT/content_scheduler`` (a ``cmdvideo train content`` run) and, when
    ``init`` is the UNet folder itself, its sibling ``../scheduler``.
    """
    if not init:
        return {}

    root = Path(init)
    candidates = [(root, "scheduler"), (root, "content_scheduler")]
    if subfolder is None and root.name == "unet":
        candidates.append((root.parent, "scheduler"))
    for folder, sub in candidates:
        if (folder / sub / "scheduler_config.json").is_file():
            return dict(DDIMScheduler.load_config(folder / sub))
    if not root.exists():  # a hub id: its cached scheduler/, never a download
        try:
            return dict(
                DDIMScheduler.load_config(str(init), subfolder="scheduler", local_files_only=True)
            )
        except (OSError, ValueError):
            return {}
    return {}


def resolve_schedule(section_config, pretrained: dict | None = None) -> tuple[dict, dict]:
    """(schedule, where each value came from): config value if set, else the pretrained
    model's, else :data:`DEFAULTS`."""
    pretrained = pretrained or {}
    schedule, source = {}, {}
    for key in SCHEDULE_KEYS:
        value = getattr(section_config, key, None)
        if value is not None:
            schedule[key], source[key] = value, "config"
        elif pretrained.get(key) is not None:
            schedule[key], source[key] = pretrained[key], "init"
        else:
            schedule[key], source[key] = DEFAULTS[key], "default"
    return schedule, source


def _accepted(cls, values: dict) -> dict:
    names = inspect.signature(cls.__init__).parameters
    return {k: v for k, v in values.items() if k in names}


def build_schedulers(schedule: dict, **extra):
    """(DDPMScheduler for the training loss, DDIMScheduler for sampling) of one schedule;
    ``extra``: e.g. ``clip_sample`` / ``clip_sample_range``."""

    values = {**schedule, **extra}
    return DDPMScheduler(**_accepted(DDPMScheduler, values)), DDIMScheduler(
        **_accepted(DDIMScheduler, values)
    )
