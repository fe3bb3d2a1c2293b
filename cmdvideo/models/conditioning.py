"""What a content model is conditioned on, read from its config alone (a ``config.json`` as a
dict, or a loaded model's ``.config``): no torch, so that a command can check a request against
a pipeline folder before any weights are read (``cmdvideo.pipelines.arguments``)."""

from __future__ import annotations

from collections.abc import Mapping


def config_of(model) -> dict:
    """A loaded model's config as its ``config.json`` says it, with ``_class_name`` (a model
    built in this process, not loaded, has none in ``.config``)."""
    return {**model.config, "_class_name": type(model).__name__}


def content_num_classes(config: Mapping) -> int:
    """Class labels a content model was built for (null row excluded); 0 without classes."""
    if config.get("_class_name") == "ContentDiT":
        return int(config.get("num_classes") or 0)
    rows = config.get("num_class_embeds")
    return rows - 1 if rows else 0


def content_uses_text(config: Mapping) -> bool:
    """Whether a content model is text-conditioned (a UNet with cross-attention blocks, or a DiT
    with a pooled-text input)."""
    if config.get("_class_name") == "ContentDiT":
        return (config.get("text_embed_dim") or 0) > 0
    blocks = [
        *config.get("down_block_types", ()),
        *config.get("up_block_types", ()),
        config.get("mid_block_type") or "",
    ]
    return any("CrossAttn" in name for name in blocks)
