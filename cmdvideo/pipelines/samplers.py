"""Samplers a user picks by name (``CMDPipeline.set_sampler``, ``--sampler``), each a diffusers
scheduler; any diffusers scheduler works through the pipeline's components too. No imports: the
command line reads the names without loading torch."""

SAMPLERS = {
    "ddim": "DDIMScheduler",
    "dpm": "DPMSolverMultistepScheduler",  # DPM-Solver++: fewer steps
    "ddpm": "DDPMScheduler",
    "euler": "EulerDiscreteScheduler",
    "unipc": "UniPCMultistepScheduler",  # UniPC (Zhao et al. 2023): fewer steps
}
SPACINGS = ("leading", "trailing", "linspace")  # diffusers' timestep_spacing
