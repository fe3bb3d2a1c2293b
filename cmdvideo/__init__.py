"""cmdvideo: efficient video diffusion by content-frame / motion-latent decomposition (CMD).

Importing this package has no side effects: no downloads, no global flags, no trackers.
"""

__version__ = "0.1.0"
