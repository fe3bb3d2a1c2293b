"""cmdvideo: efficient video diffusion by content-frame / motion-latent decomposition (CMD).

Importing this package has no side effects: no downloads, no global flags, no trackers. The
main classes are importable from here and loaded on first use, so ``cmdvideo --help`` stays
fast.
"""

from importlib import import_module

__version__ = "0.1.0"

_EXPORTS = {
    "CMDPipeline": "cmdvideo.pipelines.cmd",
    "MotionDiT": "cmdvideo.models.motion_dit",
    "WordTextEncoder": "cmdvideo.models.text",
    "CMDAutoencoder": "cmdvideo.models.autoencoder",
    "VideoCodec": "cmdvideo.models.codec",
    "FrameVAE": "cmdvideo.models.codec",
    "MovingShapes": "cmdvideo.data.moving_shapes",
    "VideoFolder": "cmdvideo.data.video_folder",
    "Trainer": "cmdvideo.training.trainer",
    "load_config": "cmdvideo.config",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'cmdvideo' has no attribute {name!r}")
