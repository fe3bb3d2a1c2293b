"""``cmdvideo bench``: what CMD saves against full-video diffusion (paper §4.3, Table 4).

- :mod:`.flops`: FLOPs per video, counted on the meta device (paper scale, tiny scale, a loaded
  pipeline), and the counting conventions.
- :mod:`.tiny`: the tiny-scale setting: a config, its data, CMD's models built as training
  builds them.
- :mod:`.measure`: wall time (medians) and peak memory of a process.
- :mod:`.efficiency`: the measured jobs, the fresh-process worker, :func:`.efficiency.run_benchmark`.
- :mod:`.report`: ``efficiency.md`` and ``efficiency.png`` from the result.

The full-video baseline itself (its training stage and sampler) is
:mod:`cmdvideo.training.baseline`.
"""
