"""Sampling: one denoising loop and the CMDPipeline (content frame -> motion latent -> video)."""
