"""The report of ``cmdvideo bench``: ``efficiency.md`` (paper-scale FLOPs beside Table 4, the
tiny measurements, the conventions) and ``efficiency.png`` (bar charts), from its result dict."""

from __future__ import annotations

from pathlib import Path

from .flops import METHODS, PAPER_TFLOPS


def _fmt(x, digits: int = 1) -> str:
    return "–" if x is None else f"{x:,.{digits}f}"


def format_markdown(result: dict) -> str:
    """The report: paper-scale FLOPs beside Table 4, tiny measurements, conventions."""
    lines = [
        f"# CMD efficiency benchmark (`cmdvideo bench --scale {result['scale']} "
        f"--steps {result['steps']}`)",
        "",
    ]
    if "paper" in result:
        lines += _paper_markdown(result["paper"])
    if "tiny" in result:
        lines += _tiny_markdown(result["tiny"])
    return "\n".join(lines) + "\n"


def _paper_markdown(paper: dict) -> list[str]:
    m, steps = paper["methods"], paper["setting"]["steps"]
    cmd = m["cmd"]
    lines = [
        f"## Paper scale: FLOPs per video (512×1024, 16 frames, latent, {steps} DDIM steps)",
        "",
        "Counted with `FlopCounterMode` on the meta device; T = 10¹². *TFLOPs*: 2 per "
        "multiply-add, attention products included. *TMACs w/o attn.*: multiply-adds without "
        "the attention products, the convention the paper's Table 4 matches.",
        "",
        "| model | parameters | TFLOPs | TMACs | TMACs w/o attn. | paper (Table 4) | "
        "× CMD (TFLOPs) | × CMD (w/o attn.) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    ratios = paper["ratios_over_cmd"]
    for key in METHODS:
        row = m[key]
        r = ratios.get(key, {"flops": 1.0, "macs_without_attention": 1.0})
        lines.append(
            f"| {row['label']} | {_fmt(row['params_m'])} M | {_fmt(row['flops_per_video'])} | "
            f"{_fmt(row['macs_per_video'])} | {_fmt(row['macs_without_attention_per_video'])} | "
            f"{_fmt(row['paper_tflops'])} | {r['flops']:.1f}× | {r['macs_without_attention']:.1f}× |"
        )
    lines.append(
        f"| LVDM (not built here) | – | – | – | – | {_fmt(PAPER_TFLOPS['lvdm'])} | – | – |"
    )
    lines += [
        "",
        "CMD by component (per video):",
        "",
        "| component | parameters | calls | TFLOPs per call | TFLOPs | attention share |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for comp in cmd["components"]:
        lines.append(
            f"| {comp['name']} | {_fmt(comp['params_m'])} M | {comp['calls']} | "
            f"{comp['per_call']:.3f} | {_fmt(comp['per_video'])} | {comp['attention_share']:.0%} |"
        )
    return lines + _paper_notes(paper)


def _paper_notes(paper: dict) -> list[str]:
    """The notes under the paper-scale table: conventions, what is and is not counted."""
    m, cmd, ratios = paper["methods"], paper["methods"]["cmd"], paper["ratios_over_cmd"]
    vae = paper["shared_sd_vae_decoder"]
    return [
        "",
        "Notes:",
        f"- Paper ratio ModelScope / CMD: {ratios['unet3d']['paper']:.1f}×; ours "
        f"{ratios['unet3d']['macs_without_attention']:.1f}× in the paper's convention, "
        f"{ratios['unet3d']['flops']:.1f}× counting attention.",
        "- The ModelScope-architecture UNet comes out at "
        f"{_fmt(m['unet3d']['macs_without_attention_per_video'])} TMACs without attention "
        f"against the paper's {_fmt(PAPER_TFLOPS['unet3d'])}: the paper's figures appear to "
        "count one FLOP per multiply-add and not the attention products (what fvcore/thop "
        "do with fused attention kernels). FlopCounterMode counts 2 per multiply-add, hence "
        "TFLOPs ≈ 2 × TMACs.",
        f"- CMD: {_fmt(cmd['macs_without_attention_per_video'])} against the paper's "
        f"{_fmt(PAPER_TFLOPS['cmd'])}. The content model is SD 1.5's UNet at 64×128 latents, "
        "as in the paper; the motion DiT and autoencoder sizes are our reading of the paper "
        "(not its released configuration), so the small difference is expected.",
        f"- Classifier-free guidance is not included; with it every denoiser term doubles: "
        f"CMD {_fmt(cmd['flops_per_video_cfg'])}, 3-D UNet "
        f"{_fmt(m['unet3d']['flops_per_video_cfg'])}, DiT "
        f"{_fmt(m['video_dit']['flops_per_video_cfg'])} TFLOPs.",
        f"- Not in any total: the text encoders (once per video) and the {vae['name']} "
        f"({_fmt(vae['flops_per_video'])} TFLOPs, {_fmt(vae['macs_without_attention_per_video'])} "
        "TMACs w/o attention), which all three latent models need alike; the paper's figures "
        "leave it out too (CMD's 46.8 could not hold it).",
        "- The DiT is diffusers' Latte-1 configuration (28 spatial + 28 temporal blocks, 1152 "
        "wide, patch 2) run on the 64×128 latents: every one of the 16×32×64 tokens, every step.",
        "",
    ]


def _achieved_lines(achieved: dict | None) -> list[str]:
    """Achieved GFLOP/s per model and CMD stage beside the cores' fp32 matrix-product peak."""
    if not achieved:
        return []
    peak = achieved["fp32_peak"]
    share = lambda v: "–" if v is None else f"{v:,.1f} ({100 * v / peak:.0f} %)"  # noqa: E731
    return [
        f"Achieved GFLOP/s while sampling (FLOPs / measured time) against the fp32 peak of "
        f"these cores at these threads, {peak:,.1f} GFLOP/s (a 1024² matrix product): CMD "
        f"{share(achieved['cmd'])} — content step {share(achieved['cmd content step'])}, "
        f"motion step {share(achieved['cmd motion step'])} — and the 3-D UNet "
        f"{share(achieved['unet3d'])}.",
        "",
    ]


def _tiny_markdown(tiny: dict) -> list[str]:
    s, samp, train, flops = tiny["setting"], tiny["sampling"], tiny["training"], tiny["flops"]
    r = tiny["ratios_over_cmd"]
    lines = [
        f"## Tiny scale, measured ({s['video']}, {s['steps']} DDIM steps, {s['device']}, "
        f"{s['torch_threads']} threads)",
        "",
        "The 3-D UNet has the tiny content UNet's levels (widths, layers, group norm, "
        "cross-attention where it attends) plus diffusers' temporal convolutions and temporal "
        "attention, on the whole pixel video; text from its own built-in word encoder.",
        "",
        f"Medians of {s['repeats']} runs, batch 1, no CFG. Time per video: {s['time_per_video']}. "
        f"Peak memory: {s['memory']}. Load average during the run: {s['load_average']}.",
        "",
        "| model | parameters | GFLOPs / video | time / video (s) | peak memory (MiB) |",
        "|---|---:|---:|---:|---:|",
    ]
    for key in ("cmd", "unet3d"):
        lines.append(
            f"| {flops[key]['label']} | {_fmt(samp[key]['params_m'], 2)} M | "
            f"{_fmt(flops[key]['flops_per_video'])} | {_fmt(samp[key]['seconds_per_video'], 2)} | "
            f"{_fmt(samp[key]['peak_memory_mib'])} |"
        )
    lines += [
        f"| {flops['video_dit']['label']} (FLOPs only) | {_fmt(flops['video_dit']['params_m'], 2)} M | "
        f"{_fmt(flops['video_dit']['flops_per_video'])} | – | – |",
        f"| **3-D UNet / CMD** | | **{_fmt(r['flops_per_video'])}×** | "
        f"**{_fmt(r['time_per_video'])}×** | **{_fmt(r['peak_memory_sampling'])}×** |",
        "",
        *_achieved_lines(tiny.get("achieved_gflops_per_s")),
        f"Training, per step (batch {s['training_batch_size']}: loss, backward, clipping, AdamW, "
        "EMA; one fixed batch, data loading left out). The content and motion stages encode "
        "the batch with the frozen autoencoder every step, as `cmdvideo train` does from "
        "videos; the last column trains from a latent cache (`cmdvideo cache`) instead.",
        "",
        "| stage | parameters | s / step | 3-D UNet / stage | peak memory (MiB) | "
        "s / step from latent cache |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    names = {
        "autoencoder": "CMD autoencoder",
        "content": "CMD content model",
        "motion": "CMD motion model",
        "unet3d": "3-D UNet baseline",
    }
    for key, label in names.items():
        row = train[key]
        ratio = r["training_step"].get(key)
        lines.append(
            f"| {label} | {_fmt(row['params_m'], 2)} M | {_fmt(row['seconds_per_step'], 3)} | "
            f"{'–' if ratio is None else f'{ratio:.1f}×'} | {_fmt(row['peak_memory_mib'])} | "
            f"{_fmt(row.get('seconds_per_step_from_latent_cache'), 3)} |"
        )
    lines.append("")
    return lines


def plot_benchmark(result: dict, path: str | Path) -> Path:
    """Bar charts: paper-scale TFLOPs per video (log scale) beside the paper's; tiny time and
    memory per video; training seconds per step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = (1 if "paper" in result else 0) + (3 if "tiny" in result else 0)
    fig, axes = plt.subplots(1, panels, figsize=(4.6 * panels, 4.2), squeeze=False)
    axes = list(axes[0])
    if "paper" in result:
        ax = axes.pop(0)
        m = result["paper"]["methods"]
        names = ["CMD", "3-D UNet\n(ModelScope)", "video DiT\n(Latte)", "LVDM"]
        series = {
            "ours, 2 per MAC": [m[k]["flops_per_video"] for k in METHODS] + [None],
            "ours, MACs w/o attn.": [m[k]["macs_without_attention_per_video"] for k in METHODS]
            + [None],
            "paper (Table 4)": [
                PAPER_TFLOPS["cmd"],
                PAPER_TFLOPS["unet3d"],
                None,
                PAPER_TFLOPS["lvdm"],
            ],
        }
        _grouped_bars(ax, names, series)
        ax.set(
            yscale="log",
            ylabel="TFLOPs per video",
            title=f"Paper scale, {result['steps']} steps (meta)",
        )
    if "tiny" in result:
        tiny = result["tiny"]
        ratios, device = tiny["ratios_over_cmd"], tiny["setting"]["device"]
        names = ["CMD", "3-D UNet"]
        panels = (
            ("seconds_per_video", "time_per_video", "seconds", f"time per video ({device})"),
            ("peak_memory_mib", "peak_memory_sampling", "MiB", "peak memory, sampling"),
        )
        for key, ratio, unit, title in panels:
            ax = axes.pop(0)
            _grouped_bars(ax, names, {unit: [tiny["sampling"][k][key] for k in ("cmd", "unet3d")]})
            ax.set(ylabel=unit, title=f"Tiny: {title}, {_fmt(ratios[ratio])}×")
        ax = axes.pop(0)
        keys = ("autoencoder", "content", "motion", "unet3d")
        _grouped_bars(
            ax,
            ["CMD\nautoenc.", "CMD\ncontent", "CMD\nmotion", "3-D UNet"],
            {"s / step": [tiny["training"][k]["seconds_per_step"] for k in keys]},
        )
        ax.set(
            ylabel="seconds",
            title=f"Tiny: training step, batch {tiny['setting']['training_batch_size']}",
        )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def _grouped_bars(ax, names: list[str], series: dict[str, list]) -> None:
    n = len(series)
    width = 0.8 / n
    for i, (label, values) in enumerate(series.items()):
        xs = [j + (i - (n - 1) / 2) * width for j in range(len(names))]
        heights = [0 if v is None else v for v in values]
        bars = ax.bar(xs, heights, width, label=label if n > 1 else None)
        for bar, v in zip(bars, values):
            if v is not None:
                ax.annotate(
                    f"{v:,.0f}" if v >= 100 else f"{v:.3g}",
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                )
    ax.set_xticks(range(len(names)), names, fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    if n > 1:
        ax.legend(fontsize=7)
