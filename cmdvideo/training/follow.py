"""Settings that follow what a run is given rather than the preset: the later stages take the
data settings (frame size, frames, the held-out split) of the autoencoder they are trained on,
and the diffusion stages condition on what the data has (class labels, captions, neither).

A value the user set explicitly (``--set key=value``) is never changed: where it contradicts the
autoencoder or the data the run stops with an error naming both sides. A preset's value is a
default, replaced with one logged line.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..config import Config, load_config, parse_overrides
from ..data import dataset_captions
from . import diffusion

logger = logging.getLogger(__name__)

# The autoencoder fixes these: a content frame is H x W (over the frame VAE's factor), a motion
# latent D_m x T x (h + w); a diffusion stage trained at another size makes a pipeline that
# cannot decode its own samples.
SHAPE_KEYS = ("num_frames", "height", "width")
# Not taken from the autoencoder's run: where the data is and how this machine reads it.
OWN_KEYS = ("source", "num_workers", "worker_start_method", "loader_timeout", "decode_threads")


def explicit_settings(overrides: list[str]) -> set[str]:
    """The dotted keys a user set with ``--set key=value`` (e.g. {"data.height"})."""

    def walk(node: dict, prefix: str):
        for key, value in node.items():
            if isinstance(value, dict) and value:
                yield from walk(value, f"{prefix}{key}.")
            else:
                yield f"{prefix}{key}"

    return set(walk(parse_overrides(overrides), ""))


def autoencoder_data(autoencoder: str | Path) -> dict | None:
    """The data settings an autoencoder was trained with: its run's ``config.yaml`` (the
    folder ``cmdvideo train autoencoder --out`` wrote, or its ``autoencoder/`` subfolder), or
    for a pipeline folder the frames and frame size it samples; None when neither says."""
    path = Path(autoencoder)
    for run in (path, path.parent):
        if (run / "config.yaml").is_file() and (run / "autoencoder").is_dir():
            return vars(load_config(run / "config.yaml").data)
    index = path / "model_index.json"
    if index.is_file():  # a pipeline folder: num_frames and content_size (in the codec's space)
        values = json.loads(index.read_text())
        factor = 1
        vae = path / "vae" / "config.json"
        if vae.is_file():
            factor = 2 ** (len(json.loads(vae.read_text())["block_out_channels"]) - 1)
        if "num_frames" in values and "content_size" in values:
            height, width = (size * factor for size in values["content_size"])
            return {"num_frames": values["num_frames"], "height": height, "width": width}
    return None


def follow_autoencoder(config: Config, autoencoder: str | Path, explicit: set[str]) -> None:
    """Give ``config.data`` the autoencoder's data settings (in place): frame size, frames,
    frame stride, the held-out split and its seed; ``source`` and how files are read stay.

    Raises:
        ValueError: an explicit ``data.num_frames`` / ``height`` / ``width`` differs from the
            autoencoder's (the message names both).
    """
    trained = autoencoder_data(autoencoder)
    if trained is None:
        logger.warning(
            "%s records no training data settings: using the config's %dx%d, %d frames",
            autoencoder,
            config.data.height,
            config.data.width,
            config.data.num_frames,
        )
        return
    data = config.data
    for key in SHAPE_KEYS:
        if f"data.{key}" in explicit and getattr(data, key) != trained[key]:
            raise ValueError(
                f"--set data.{key}={getattr(data, key)} conflicts with the autoencoder "
                f"{autoencoder}, trained with data.{key}={trained[key]} "
                f"({trained['num_frames']} frames of {trained['height']}x{trained['width']}): "
                "the latent cache and the content and motion models take its size; drop the "
                "--set, or train an autoencoder at that size"
            )
    before = (data.num_frames, data.height, data.width)
    for key, value in trained.items():
        if key in OWN_KEYS or f"data.{key}" in explicit or not hasattr(data, key):
            continue
        setattr(data, key, value)
    if (data.num_frames, data.height, data.width) != before:
        logger.info(
            "data: %d frames of %dx%d, as the autoencoder %s was trained (the config said %d "
            "frames of %dx%d)",
            data.num_frames,
            data.height,
            data.width,
            autoencoder,
            *before,
        )


def follow_data(config: Config, section: str, dataset, explicit: set[str]) -> None:
    """Make ``config.<section>.condition`` what the training data can condition on (in place):
    the config's conditions that the data has (class labels: a UCF-101-style folder or a label
    column; text: non-empty captions), else whichever it has, else "none" (unconditional).
    A config asking for "none" stays unconditional.

    Raises:
        ValueError: an explicit ``--set <section>.condition`` needs labels or captions the data
            does not have.
    """

    cfg = getattr(config, section)
    if cfg.condition not in diffusion.CONDITIONS:
        return  # the stage refuses it, listing the valid ones
    has = _conditions_of(dataset)
    wanted = [c for c, on in (("class", cfg.uses_class), ("text", cfg.uses_text)) if on]
    missing = [c for c in wanted if c not in has]
    if f"{section}.condition" in explicit:
        if missing:
            need = {
                "class": "class labels (a folder with one subfolder per class, as UCF-101, "
                "or a label column in a CSV/JSONL index)",
                "text": "captions (a CSV/JSONL index with a caption column)",
            }
            raise ValueError(
                f"--set {section}.condition={cfg.condition} but the data has no "
                + " and no ".join(need[c] for c in missing)
                + f"; the data has {' and '.join(has) or 'neither'}: set {section}.condition="
                + ("+".join(has) or "none")
            )
        return
    if cfg.condition == "none" or not missing:
        return
    chosen = "+".join(c for c in wanted if c in has) or "+".join(has) or "none"
    if chosen == "none":
        logger.info(
            "%s: training unconditional: the data has no class labels and no captions (class "
            "subfolders as UCF-101, or a CSV/JSONL index with captions, give conditions)",
            section,
        )
    else:
        logger.info(
            "%s.condition: %s, what the data has (the config said %s)",
            section,
            chosen,
            cfg.condition,
        )
    cfg.condition = chosen


def _conditions_of(dataset) -> list[str]:
    """["class"], ["text"], ["class", "text"] or []: what ``dataset`` can condition on."""

    has = ["class"] if list(dataset.classes) else []
    try:
        captions = dataset_captions(dataset)
    except ValueError:  # a dataset without captions
        captions = []
    if any(caption.strip() for caption in captions):
        has.append("text")
    return has
