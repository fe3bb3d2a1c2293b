"""Measurements of speed and memory, each a module run on its own (results under results/).

``cmdvideo bench``: what CMD saves against full-video diffusion (paper §4.3, Table 4):

- :mod:`.flops`: FLOPs per video, counted on the meta device (paper scale, tiny scale, a loaded
  pipeline), and the counting conventions.
- :mod:`.tiny`: the tiny-scale setting: a config, its data, CMD's models built as training
  builds them.
- :mod:`.measure`: wall time (medians) and peak memory of a process.
- :mod:`.efficiency`: the measured jobs, the fresh-process worker, :func:`.efficiency.run_benchmark`.
- :mod:`.report`: ``efficiency.md`` and ``efficiency.png`` from the result.

The full-video baselines CMD is measured against live here, not beside the method's models:
:mod:`.baselines` (the ModelScope-architecture 3-D UNet and the full-video DiT) and
:mod:`.baseline_stage` (their training stage, through the trainer's `Stage` API, and sampler).

Beside it, on a GPU: :mod:`.gpu_check` (every stage of both paper presets, and the paper's
table at its size through :mod:`.gpu_timing`); on the CPU: :mod:`.memory` (training memory
per stage of a preset, with and without checkpointing), :mod:`.threads` (the numbers behind
``--threads``' default) and :mod:`.python_api` (the README's Python snippet against ``cmdvideo
sample``, whole processes).
"""
