"""Sampling: denoising loops and (next) the CMDPipeline that chains content -> motion -> video."""
