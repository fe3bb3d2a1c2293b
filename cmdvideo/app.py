"""``cmdvideo serve``: a Gradio web app over a :class:`CMDPipeline` — every generation feature
the pipeline has, in the browser and as named API endpoints (``gradio_client``).

Tabs and endpoints:

- Text / class to video: ``/generate``
- Image to video: ``/image_to_video``
- Motion transfer: ``/transfer``
- Edit a video: ``/edit``
- Long video: ``/long_video``

Adapters the server was started with (``--lora``) are chosen per request (all when an API call
leaves "Adapters" out), one such request at a time: they switch shared layers.

Offline by construction: analytics off, no share link, fonts served by the app itself, models
loaded from a local folder. Bad input (out-of-range numbers, a file that is not an image or a
video, uploads over the size or duration bounds) ends in a Gradio error shown in the page and
raised to API callers; nothing a user sends names a path on the server (uploads are Gradio's
temporary files; the model is fixed at start). Requests queue, ``concurrency`` at a time.
"""

from __future__ import annotations

import copy
import os
import tempfile
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .data.video_io import VideoReadError, probe_info, write_video
from .pipelines.arguments import (
    ARGUMENTS,
    MAX_FRAMES,
    InvalidArgument,
    PipelineSpec,
    check_arguments,
    check_value,
)
from .pipelines.samplers import SAMPLERS

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported
import gradio as gr  # noqa: E402  (an optional extra: cmdvideo[app]; only `serve` imports this)

from .data.moving_shapes import DEMO_PROMPTS

# Per-stage progress in the page: the pipeline's tqdm bars ("content frame", "motion latent").
PROGRESS = gr.Progress(track_tqdm=True)

NO_CLASS = "(none)"
# Generation arguments as the page names its fields (InvalidArgument.arg -> field).
APP_NAMES = {
    "prompt": "Prompt",
    "class_labels": "Class",
    "num_inference_steps": "Steps",
    "content_guidance_scale": "Content guidance",
    "motion_guidance_scale": "Motion guidance",
    "num_frames": "Frames",
    "strength": "Strength",
    "overlap": "Overlap",
    "seed": "Seed",
    "sampler": "Sampler",
    "image": "Image",
    "video": "Video",
    "content": "Content video",
    "motion": "Motion video",
    "edit": "Re-generate",
    "adapters": "Adapters",
}


@dataclass
class Limits:
    """What this server lets one request ask for, beyond the bounds every front end shares
    (``cmdvideo.pipelines.arguments.ARGUMENTS``): lower caps on steps and frames (None: the
    shared bound), upload sizes, and how many requests run and wait."""

    max_steps: int | None = None
    max_frames: int | None = None
    max_upload_mb: int = 20
    max_upload_seconds: float = 60.0
    max_upload_frames: int = 2_000
    concurrency: int = 1  # generations at a time (one on a CPU: memory and threads)
    queue_size: int = 64  # requests waiting beyond that are refused
    display_upscale: int = 8  # pixel upscale of the shown and downloadable videos


class AppError(ValueError):
    """A request the app refuses (shown as a Gradio error)."""


def _error(message: str) -> gr.Error:
    return gr.Error(message, print_exception=False)


class AppHandlers:
    """The work behind every tab: checks, the pipeline call, files to show and download."""

    def __init__(self, pipe, limits: Limits, out_dir: str | Path | None = None):
        self.pipe, self.limits = pipe, limits
        self.spec = PipelineSpec.from_pipeline(pipe)
        self.caps = {"num_inference_steps": limits.max_steps, "num_frames": limits.max_frames}
        self.out_dir = Path(out_dir or tempfile.mkdtemp(prefix="cmdvideo-app-"))
        self.classes = [NO_CLASS, *pipe.config.class_names]
        self.adapters = pipe.loaded_adapters() if hasattr(pipe, "loaded_adapters") else []
        self._adapter_lock = threading.Lock()

    def adapter_labels(self) -> list[tuple[str, str]]:
        """(shown label, adapter name) of each loaded adapter: its name and its words."""
        words = self.pipe.adapter_words() if self.adapters else {}
        return [(f"{n} ({', '.join(w for w in words if words[w] == n)})", n) for n in self.adapters]

    @contextmanager
    def _using(self, adapters):
        """This request's adapters (None: all loaded ones), one request at a time."""
        with self._adapter_lock, self.pipe.adapters_in_use(adapters):
            yield

    # -- checks: the one table of bounds, under the page's names ----------------------------

    def _check(self, **values) -> dict:
        """Widget values -> pipeline arguments, checked (``check_arguments`` with this server's
        caps): a number field's float becomes an int where the argument is one; an empty field
        is refused by name."""
        out = {}
        for arg, value in values.items():
            if ARGUMENTS[arg].kind in ("int", "number"):
                if value is None or (isinstance(value, float) and np.isnan(value)):
                    raise InvalidArgument(arg, ": give a number")
                if ARGUMENTS[arg].kind == "int" and isinstance(value, float) and value.is_integer():
                    value = int(value)
            out[arg] = value
        check_arguments(self.spec, self.caps, **out)
        return out

    @staticmethod
    def _prompt(prompt: str | None) -> str | None:
        return (prompt or "").strip() or None

    @staticmethod
    def _class(label: str | None) -> str | None:
        return None if label in (None, "", NO_CLASS) else label

    def _upload(self, path: str | None, arg: str) -> str:
        """An uploaded video's temporary path: within this server's size, frame and duration
        limits, and (the shared bound) a video our reader reads, at least a clip long."""
        what = APP_NAMES[arg]
        if not path:
            raise AppError(f"{what}: upload a video")
        size_mb = Path(path).stat().st_size / 2**20
        if size_mb > self.limits.max_upload_mb:
            raise AppError(f"{what}: {size_mb:.0f} MB, at most {self.limits.max_upload_mb} MB")
        try:
            check_value(arg, path, self.spec)
        except InvalidArgument as err:
            raise AppError(f"{what}: not a video we can read ({err.message})") from None
        info = probe_info(path)
        seconds = info["num_frames"] / info["fps"] if info["fps"] else 0.0
        if info["num_frames"] > self.limits.max_upload_frames or (
            seconds > self.limits.max_upload_seconds
        ):
            raise AppError(
                f"{what}: {info['num_frames']} frames ({seconds:.0f} s), at most "
                f"{self.limits.max_upload_frames} frames and {self.limits.max_upload_seconds:g} s"
            )
        return path

    def _sampling(self, steps, content_guidance, motion_guidance, sampler) -> dict:
        checked = self._check(
            num_inference_steps=steps,
            content_guidance_scale=content_guidance,
            motion_guidance_scale=motion_guidance,
            sampler=sampler,
        )
        checked.pop("sampler")
        return checked

    def _pipe(self, sampler: str):
        """The shared models with this request's own schedulers (requests may run at once)."""
        pipe = copy.copy(self.pipe)
        pipe.set_sampler(sampler)
        pipe.set_progress_bar_config(disable=False)  # gr.Progress(track_tqdm) shows the stages
        return pipe

    # -- results ---------------------------------------------------------------------------

    def _results(self, out, seconds: float, what: str):
        """(mp4 path, content frame image, gif path, summary) of a pipeline output."""
        folder = Path(tempfile.mkdtemp(dir=self.out_dir))
        frames = out.frames[0]
        up = self.limits.display_upscale
        mp4 = write_video(folder / "video.mp4", frames, fps=8, upscale=up)
        gif = write_video(folder / "video.gif", frames, fps=8, upscale=up)
        still = (np.clip(out.content_frames[0], 0, 1) * 255).round().astype(np.uint8)
        still = still.repeat(up, axis=0).repeat(up, axis=1)
        t, h, w, _ = frames.shape
        summary = f"{what}: {t} frames at {h}×{w} in {seconds:.2f} s (device {self.pipe.device})"
        return str(mp4), still, str(gif), summary

    def _run(self, what: str, call, adapters=None):
        start = time.perf_counter()
        try:
            with torch.no_grad(), self._using(adapters) if self.adapters else nullcontext():
                out = call()
        except (ValueError, VideoReadError) as err:  # the pipeline's own checks
            raise _error(_message(err)) from None
        return self._results(out, time.perf_counter() - start, what)

    # -- the tabs --------------------------------------------------------------------------

    def generate(
        self,
        prompt,
        class_label,
        seed,
        steps,
        content_guidance,
        motion_guidance,
        sampler,
        num_frames,
        adapters=None,
        progress=PROGRESS,
    ):
        try:
            prompt, label = self._prompt(prompt), self._class(class_label)
            if prompt is None and label is None:
                raise AppError("give a prompt or a class")
            sampling = self._sampling(steps, content_guidance, motion_guidance, sampler)
            checked = self._check(
                prompt=prompt, class_labels=label, num_frames=num_frames, seed=seed
            )
            pipe = self._pipe(sampler)
        except (AppError, ValueError) as err:
            raise _error(_message(err)) from None
        generator = torch.Generator().manual_seed(checked["seed"])
        return self._run(
            "text/class to video",
            lambda: pipe(
                prompt, label, num_frames=checked["num_frames"], generator=generator, **sampling
            ),
            adapters,
        )

    def image_to_video(
        self,
        image,
        prompt,
        class_label,
        strength,
        seed,
        steps,
        content_guidance,
        motion_guidance,
        sampler,
        adapters=None,
        progress=PROGRESS,
    ):
        try:
            if image is None:
                raise AppError("Image: upload an image")
            prompt, label = self._prompt(prompt), self._class(class_label)
            sampling = self._sampling(steps, content_guidance, motion_guidance, sampler)
            checked = self._check(prompt=prompt, class_labels=label, strength=strength, seed=seed)
            pipe = self._pipe(sampler)
        except (AppError, ValueError) as err:
            raise _error(_message(err)) from None
        generator = torch.Generator().manual_seed(checked["seed"])
        return self._run(
            "image to video",
            lambda: pipe.image_to_video(
                np.asarray(image),
                prompt,
                label,
                generator=generator,
                strength=checked["strength"],
                **sampling,
            ),
            adapters,
        )

    def transfer(self, content_video, motion_video, progress=PROGRESS):
        try:
            content = self._upload(content_video, "content")
            motion = self._upload(motion_video, "motion")
        except (AppError, ValueError) as err:
            raise _error(_message(err)) from None
        return self._run("motion transfer", lambda: self.pipe.transfer_motion(content, motion))

    def edit(
        self,
        video,
        prompt,
        class_label,
        edit,
        strength,
        seed,
        steps,
        content_guidance,
        motion_guidance,
        sampler,
        adapters=None,
        progress=PROGRESS,
    ):
        try:
            path = self._upload(video, "video")
            prompt, label = self._prompt(prompt), self._class(class_label)
            if prompt is None and label is None and edit != "motion":
                raise AppError("give a prompt or a class: what the video becomes")
            sampling = self._sampling(steps, content_guidance, motion_guidance, sampler)
            checked = self._check(
                prompt=prompt, class_labels=label, edit=edit, strength=strength, seed=seed
            )
            pipe = self._pipe(sampler)
        except (AppError, ValueError) as err:
            raise _error(_message(err)) from None
        generator = torch.Generator().manual_seed(checked["seed"])
        return self._run(
            f"edit ({edit})",
            lambda: pipe.edit_video(
                path,
                prompt,
                label,
                strength=checked["strength"],
                edit=edit,
                generator=generator,
                **sampling,
            ),
            adapters,
        )


def _message(err: Exception) -> str:
    """A refusal as the page says it: table bounds under the page's field names."""
    return err.render(APP_NAMES) if isinstance(err, InvalidArgument) else str(err)


class _Page:
    """The page's parts: the widgets every tab shares and one method per tab, each wiring its
    inputs to a handler of ``AppHandlers`` under the API name a client calls."""

    def __init__(self, pipe, gen: AppHandlers, limits: Limits):
        self.pipe, self.gen = pipe, gen
        self.max_steps = min(limits.max_steps or gen.spec.max_steps, gen.spec.max_steps)
        self.max_frames = min(limits.max_frames or MAX_FRAMES, MAX_FRAMES)
        self.clip = int(pipe.config.num_frames)

    def sampling_inputs(self) -> list:
        """Seed, steps, content and motion guidance, sampler: the pipeline's own defaults."""
        content_g, motion_g = self.pipe.guidance_scales()
        own = self.pipe.sampler_name()
        with gr.Accordion("Sampling", open=False):
            with gr.Row():
                seed = gr.Number(0, label="Seed", precision=0)
                steps = gr.Slider(
                    1, self.max_steps, self.pipe.default_steps(), step=1, label="Steps"
                )
                sampler = gr.Dropdown(
                    sorted(SAMPLERS), value=own if own in SAMPLERS else "ddim", label="Sampler"
                )
            with gr.Row():
                cg = gr.Number(content_g, label="Content guidance")
                mg = gr.Number(motion_g, label="Motion guidance")
        return [seed, steps, cg, mg, sampler]

    def adapter_input(self) -> list:
        """The loaded adapters to use (all by default); nothing when the server has none."""
        if not self.gen.adapters:
            return []
        labels = self.gen.adapter_labels()
        return [gr.CheckboxGroup(labels, value=self.gen.adapters, label="Adapters (taught words)")]

    @staticmethod
    def outputs() -> list:
        with gr.Row():
            video = gr.Video(label="Video", format="mp4", autoplay=True, loop=True)
            still = gr.Image(label="Content frame", type="numpy", format="png")
        with gr.Row():
            gif = gr.File(label="GIF")
            info = gr.Markdown()
        return [video, still, gif, info]

    def class_input(self):
        return gr.Dropdown(self.gen.classes, value=NO_CLASS, label="Class")

    def run_button(self, text: str, handler, inputs: list, api_name: str, sampled: bool = True):
        """The tab's button under its inputs (then sampling and adapters), wired to the
        handler with the shared outputs below it."""
        extra = [*self.sampling_inputs(), *self.adapter_input()] if sampled else []
        button = gr.Button(text, variant="primary")
        button.click(handler, [*inputs, *extra], self.outputs(), api_name=api_name)

    def prompt_tab(self, tab: str, api_name: str, frames: tuple[int, int], examples: bool):
        """A prompt (or class) to a video of ``frames`` = (fewest, default) frames."""
        with gr.Tab(tab):
            placeholder = "a red circle moving left on a blue background"
            prompt = gr.Textbox(label="Prompt", max_lines=2, placeholder=placeholder)
            with gr.Row():
                label = self.class_input()
                length = gr.Slider(frames[0], self.max_frames, frames[1], step=1, label="Frames")
            extra = [*self.sampling_inputs(), length, *self.adapter_input()]
            button = gr.Button("Generate", variant="primary")
            out = self.outputs()
            if examples:
                gr.Examples([[p] for p in DEMO_PROMPTS], inputs=[prompt])
            button.click(self.gen.generate, [prompt, label, *extra], out, api_name=api_name)

    def image_to_video(self) -> None:
        with gr.Tab("Image to video"):
            with gr.Row():
                image = gr.Image(
                    label="Image (becomes the content frame)", type="numpy", image_mode="RGBA"
                )  # transparency: flattened or refused
                with gr.Column():
                    prompt = gr.Textbox(label="Prompt", max_lines=2)
                    label = self.class_input()
                    strength = gr.Slider(0, 1, 0, step=0.05, label="Strength (0: keep the image)")
            inputs = [image, prompt, label, strength]
            self.run_button("Animate", self.gen.image_to_video, inputs, "image_to_video")

    def transfer(self) -> None:
        with gr.Tab("Motion transfer"):
            with gr.Row():
                content_video = gr.File(label="Content from this video")
                motion_video = gr.File(label="Motion from this video")
            inputs = [content_video, motion_video]
            self.run_button("Transfer", self.gen.transfer, inputs, "transfer", sampled=False)

    def edit(self) -> None:
        with gr.Tab("Edit a video"):
            with gr.Row():
                video = gr.File(label="Video")
                with gr.Column():
                    prompt = gr.Textbox(label="Prompt: what it becomes", max_lines=2)
                    label = self.class_input()
                    kind = gr.Radio(
                        ["content", "motion", "both"], value="content", label="Re-generate"
                    )
                    strength = gr.Slider(0, 1, 0.6, step=0.05, label="Strength")
            self.run_button("Edit", self.gen.edit, [video, prompt, label, kind, strength], "edit")


def build_app(pipe, limits: Limits | None = None, title: str = "cmdvideo"):
    """The Gradio Blocks app for ``pipe`` (not launched): a tab per way of making a video,
    those the pipeline offers."""
    limits = limits or Limits()
    page = _Page(pipe, AppHandlers(pipe, limits), limits)
    h, w = pipe.video_size()
    with gr.Blocks(title=title, analytics_enabled=False, delete_cache=(3600, 3600)) as app:
        gr.Markdown(
            f"# {title}\nCMD: a content frame from an image diffusion model, a motion latent "
            f"from a motion transformer guided by it, decoded into the video ({page.clip} frames "
            f"at {h}×{w}; longer videos clip by clip)."
        )
        own_world = (pipe.config.get("training_data") or {}).get("source") == "moving-shapes"
        page.prompt_tab("Text / class to video", "generate", (1, page.clip), own_world)
        if hasattr(pipe, "image_to_video"):  # the tabs of what this pipeline can do
            page.image_to_video()
        if hasattr(pipe, "transfer_motion"):
            page.transfer()
        if hasattr(pipe, "edit_video"):
            page.edit()
        longer = min(4 * page.clip, page.max_frames)
        page.prompt_tab("Long video", "long_video", (page.clip, longer), examples=False)
    app.queue(default_concurrency_limit=limits.concurrency, max_size=limits.queue_size)
    return app


def launch(
    app, host: str = "127.0.0.1", port: int = 7860, limits: Limits | None = None, block: bool = True
):
    """Serve ``app`` (no share link); returns (FastAPI app, local URL)."""
    limits = limits or Limits()
    app_, url, _ = app.launch(
        server_name=host,
        server_port=port,
        share=False,
        inbrowser=False,
        quiet=True,
        max_file_size=f"{limits.max_upload_mb}mb",
        ssr_mode=False,
        footer_links=["api"],
        prevent_thread_lock=not block,
        show_error=False,
    )
    return app_, url
