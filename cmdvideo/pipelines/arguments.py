"""Every argument of every generating call, with its one bound, checked once and before any
weights are read.

The pipeline's methods, the command line's generating verbs (``sample``, ``demo``, ``edit``,
``transfer``) and the web app's endpoints all check through :func:`check_arguments`, against
the bounds of ``ARGUMENTS``. What depends on the model — its classes, its clip length, whether
it reads text, the length of its noise schedule — is a :class:`PipelineSpec`, read from the
pipeline folder's JSON configs alone, so that a command refuses a bad value in a fraction of a
second instead of after loading the models.

A bad value raises :class:`InvalidArgument`, which carries the argument's name in the Python API
(``num_inference_steps``); each front end shows it under its own name (``--steps`` on the
command line, "Steps" in the web app) with :meth:`InvalidArgument.render`.

Nothing here imports torch: the command line checks before it pays for that import.
"""

from __future__ import annotations

import json
import logging
import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..models.conditioning import config_of, content_num_classes, content_uses_text
from .samplers import SAMPLERS

logger = logging.getLogger(__name__)

OUTPUT_TYPES = ("np", "pt", "pil")
EDIT_KINDS = ("content", "motion", "both")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")

MAX_PROMPT_CHARS = 300
MAX_GUIDANCE = 30.0  # far past any useful scale; colours saturate beyond ~10
MAX_FRAMES = 1024  # beyond the training length videos are made clip by clip: 127 clips of 16
MAX_VIDEOS = 2048  # per prompt: one FVD set (the protocol's count) in one command
MAX_SEED = 2**31 - 1  # what a browser's number field and every generator take
MAX_UPSCALE = 16


@dataclass(frozen=True)
class Bound:
    """What one argument accepts.

    Attributes:
        kind: "int", "number", "text" (``low``..``high`` characters), "choice" (``choices``),
            "class" (a name or index of the pipeline's classes), "image" / "video" (a file, or
            an array in the Python API), "image or video".
        low, high: inclusive bounds; ``high`` may name a :class:`PipelineSpec` attribute (a
            bound that depends on the model).
        choices: the accepted values of a "choice".
    """

    kind: str
    low: float | None = None
    high: float | str | None = None
    choices: tuple = ()


# The one table, for the Python API, the command line and the web app alike; a web app's server
# may lower the two marked "cap" (serve --max-steps / --max-frames), never raise them.
ARGUMENTS: dict[str, Bound] = {
    "prompt": Bound("text", 1, MAX_PROMPT_CHARS),
    "class_labels": Bound("class"),
    "num_inference_steps": Bound("int", 1, "max_steps"),  # cap; at most the schedule's length
    "guidance_scale": Bound("number", 0, MAX_GUIDANCE),  # 0: unconditional; 1: no guidance
    "content_guidance_scale": Bound("number", 0, MAX_GUIDANCE),
    "motion_guidance_scale": Bound("number", 0, MAX_GUIDANCE),
    "guidance_rescale": Bound("number", 0, 1),
    "num_videos_per_prompt": Bound("int", 1, MAX_VIDEOS),
    "num_frames": Bound("int", 1, MAX_FRAMES),  # cap; any count: clip by clip beyond a clip
    "overlap": Bound("int", 1, "max_overlap"),
    "strength": Bound("number", 0, 1),
    "edit": Bound("choice", choices=EDIT_KINDS),
    "output_type": Bound("choice", choices=OUTPUT_TYPES),
    "sampler": Bound("choice", choices=tuple(sorted(SAMPLERS))),
    "seed": Bound("int", 0, MAX_SEED),
    "upscale": Bound("int", 1, MAX_UPSCALE),
    "image": Bound("image"),
    "video": Bound("video"),
    "content": Bound("image or video"),
    "motion": Bound("video"),
}


class InvalidArgument(ValueError):
    """A bad value of one argument, refused before any model runs.

    Attributes:
        arg: the argument's name in the Python API (a key of ``ARGUMENTS``).
        message: what is wrong and what to do, following the argument's name; other arguments
            it mentions are written ``{name}`` and shown under the front end's names too.

    ``str(err)`` uses the Python API's names; :meth:`render` a front end's.
    """

    def __init__(self, arg: str, message: str):
        self.arg, self.message = arg, message
        super().__init__(self.render())

    def __reduce__(self):  # pickled as its two fields (e.g. across processes)
        return type(self), (self.arg, self.message)

    def render(self, names: Mapping[str, str] | Callable[[str], str] | None = None) -> str:
        """The message with each argument called as ``names`` calls it (a mapping, missing
        keys keeping their own name, or a function of the name)."""
        if names is None:
            name = str
        elif callable(names):
            name = names
        else:
            name = lambda arg: names.get(arg, arg)  # noqa: E731
        text = self.message
        for other in ARGUMENTS:
            if "{" + other + "}" in text:
                text = text.replace("{" + other + "}", name(other))
        return f"{name(self.arg)}{'' if text[:1] in (':', ';', ',') else ' '}{text}"


# -- what a pipeline accepts -----------------------------------------------------------------


@dataclass(frozen=True)
class PipelineSpec:
    """What a pipeline accepts, from its configs alone (no weights).

    Attributes:
        class_names: names of the class labels (indices work too).
        num_classes: class labels the models take (0: no class conditioning).
        accepts_text: whether a prompt conditions anything.
        clip_frames: the training length (a clip; longer videos are made clip by clip).
        max_steps: the shorter of the two noise schedules.
    """

    class_names: tuple[str, ...] = ()
    num_classes: int = 0
    accepts_text: bool = True
    clip_frames: int = 16
    max_steps: int = 1000

    @property
    def max_overlap(self) -> int:
        return self.clip_frames - 1

    @classmethod
    def from_configs(
        cls, index: Mapping, content: Mapping, motion: Mapping, schedulers: list[Mapping]
    ) -> PipelineSpec:
        """From ``model_index.json``, the two models' configs and the schedulers' configs."""
        motion_classes = int(motion.get("num_classes") or 0)
        return cls(
            class_names=tuple(index.get("class_names") or ()),
            num_classes=max(content_num_classes(content), motion_classes),
            accepts_text=content_uses_text(content) or (motion.get("text_embed_dim") or 0) > 0,
            clip_frames=int(index.get("num_frames") or 16),
            max_steps=min(int(s.get("num_train_timesteps") or 1000) for s in schedulers),
        )

    @classmethod
    def from_pipeline(cls, pipe) -> PipelineSpec:
        """From a loaded :class:`~cmdvideo.pipelines.cmd.CMDPipeline`."""
        schedulers = [pipe.content_scheduler.config, pipe.motion_scheduler.config]
        return cls.from_configs(
            pipe.config, config_of(pipe.content_model), pipe.motion_model.config, schedulers
        )

    @classmethod
    def from_folder(cls, name_or_path) -> PipelineSpec | None:
        """From a pipeline folder or bundled name, reading only its JSON files; None for a
        hub id that is not a folder here (the pipeline checks itself once loaded).

        Raises:
            FileNotFoundError: no such pipeline (as :func:`resolve_pipeline_path` says).
            ValueError: a config file that is not valid JSON (one line, naming the file).
        """
        from ..hub import resolve_pipeline_path

        root = resolve_pipeline_path(name_or_path)
        if not isinstance(root, Path):
            return None

        def read(*parts: str) -> dict:
            path = root.joinpath(*parts)
            if not path.is_file():
                return {}
            try:
                return json.loads(path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                raise ValueError(
                    f"{path}: not valid JSON ({err}); copy or export the pipeline folder again"
                ) from None

        schedulers = [
            read(s, "scheduler_config.json") for s in ("content_scheduler", "motion_scheduler")
        ]
        return cls.from_configs(
            read("model_index.json"),
            read("content_model", "config.json"),
            read("motion_model", "config.json"),
            schedulers,
        )


# -- checks ----------------------------------------------------------------------------------


def _describe(bound: Bound, high: float) -> str:
    shown = (lambda x: f"{x:.0f}") if bound.kind == "int" else (lambda x: f"{x:g}")  # noqa: E731
    kind = "an integer" if bound.kind == "int" else "a number"
    if high == math.inf:
        return f"{kind} >= {shown(bound.low)}"
    return f"{kind} in [{shown(bound.low)}, {shown(high)}]"


def _high(bound: Bound, spec: PipelineSpec | None) -> float:
    if isinstance(bound.high, str):
        return getattr(spec, bound.high) if spec is not None else math.inf
    return math.inf if bound.high is None else bound.high


def check_value(
    arg: str,
    value,
    spec: PipelineSpec | None = None,
    cap: float | None = None,
    min_frames: int | None = None,
):
    """Refuse ``value`` of ``arg`` outside its bound (``ARGUMENTS``); ``cap`` lowers the upper
    bound (a server's own limit); ``min_frames``: frames a video file must have (default: a
    clip). None (the default) is always accepted.

    Raises:
        InvalidArgument: naming ``arg``.
    """
    bound = ARGUMENTS[arg]
    if value is None:
        return
    if bound.kind in ("int", "number"):
        high = _high(bound, spec)
        where = ""
        if cap is not None and cap < high:
            high, where = cap, " on this server"
        integral = isinstance(value, numbers.Integral)
        ok = integral if bound.kind == "int" else isinstance(value, numbers.Real)
        if isinstance(value, bool) or not ok or not bound.low <= value <= high:
            shown = float(value) if isinstance(value, numbers.Real) and not integral else value
            raise InvalidArgument(arg, f"must be {_describe(bound, high)}{where}, got {shown!r}")
    elif bound.kind == "choice":
        if value not in bound.choices:
            raise InvalidArgument(arg, f"must be one of {', '.join(bound.choices)}; got {value!r}")
    elif bound.kind == "text":
        texts = [value] if isinstance(value, str) else value
        if not isinstance(texts, (list, tuple)) or not all(isinstance(p, str) for p in texts):
            raise InvalidArgument(arg, "must be text or a list of texts")
        if not texts or any(not p.strip() for p in texts):
            raise InvalidArgument(
                arg,
                "is empty; give some text (for unconditional videos give no prompt and no class)",
            )
        longest = max(len(p) for p in texts)
        if longest > bound.high:
            raise InvalidArgument(arg, f"has {longest} characters, at most {bound.high:g}")
    elif bound.kind == "class":
        class_ids(value, spec)
    elif bound.kind in ("image", "video", "image or video") and isinstance(value, (str, Path)):
        if bound.kind == "image" or (bound.kind == "image or video" and is_image_path(value)):
            check_image_file(arg, value)
        else:
            check_video_file(arg, value, min_frames or (spec.clip_frames if spec else 1))


def class_ids(class_labels, spec: PipelineSpec | None) -> list[int]:
    """Class labels (ints, names, a list or a tensor) -> indices, each checked.

    Raises:
        InvalidArgument: ``class_labels``: an unknown name, an index out of range, or a
            pipeline without classes.
    """
    if hasattr(class_labels, "flatten") and hasattr(class_labels, "tolist"):  # tensor / array
        labels = class_labels.flatten().tolist()
    else:
        labels = list(class_labels) if isinstance(class_labels, (list, tuple)) else [class_labels]
    if spec is None:
        return labels
    if spec.num_classes == 0:
        raise InvalidArgument(
            "class_labels",
            "is not accepted: this pipeline has no class conditioning; give {prompt} instead",
        )
    names, out = list(spec.class_names), []
    for label in labels:
        if isinstance(label, str):
            if label.lstrip("-").isdigit():
                label = int(label)
            elif label not in names:
                raise InvalidArgument(
                    "class_labels", f": unknown class {label!r}; classes: {', '.join(names)}"
                )
            else:
                label = names.index(label)
        if isinstance(label, bool) or not isinstance(label, numbers.Real):
            raise InvalidArgument(
                "class_labels", f": {label!r} is neither a class name nor an index"
            )
        if not float(label).is_integer():
            raise InvalidArgument("class_labels", f": class {label} is not an integer")
        if not 0 <= int(label) < spec.num_classes:
            raise InvalidArgument(
                "class_labels", f": class {int(label)} out of range [0, {spec.num_classes})"
            )
        out.append(int(label))
    return out


def check_arguments(
    spec: PipelineSpec | None = None, caps: Mapping[str, float] | None = None, **values
) -> None:
    """Check every given argument against ``ARGUMENTS`` and the rules between arguments: a
    prompt needs a text-conditioned pipeline, class labels one per prompt or one for all, an
    overlap a video longer than a clip. None means "the default" and is not checked.

    Args:
        spec: what the pipeline accepts (None: only the model-independent bounds).
        caps: lower upper bounds of some arguments (the web app's server limits).
        values: arguments by their Python API names (keys of ``ARGUMENTS``).

    Raises:
        InvalidArgument: the first bad argument, by name.
        TypeError: a name that is not in ``ARGUMENTS`` (a programming error).
    """
    unknown = set(values) - set(ARGUMENTS)
    if unknown:
        raise TypeError(f"check_arguments: unknown arguments {sorted(unknown)}")
    caps = caps or {}
    files = [arg for arg in values if ARGUMENTS[arg].kind in ("image", "video", "image or video")]
    for arg in [a for a in values if a not in files] + files:  # numbers first: files need them
        check_value(arg, values[arg], spec, caps.get(arg), values.get("num_frames"))
    prompt, labels = values.get("prompt"), values.get("class_labels")
    prompts = [prompt] if isinstance(prompt, str) else prompt
    if prompt is not None and spec is not None and not spec.accepts_text:
        raise InvalidArgument(
            "prompt",
            "is not accepted: this pipeline has no text conditioning; give {class_labels} instead",
        )
    if prompts is not None and labels is not None:
        count = len(class_ids(labels, None))
        if count not in (1, len(prompts)):
            raise InvalidArgument(
                "class_labels",
                f": {len(prompts)} prompts but {count} class "
                "labels; give one {class_labels} or one per prompt",
            )
    frames, overlap = values.get("num_frames"), values.get("overlap")
    if overlap is not None and spec is not None and (frames or 0) <= spec.clip_frames:
        raise InvalidArgument(
            "overlap",
            f"joins the clips of a long video; give {{num_frames}} "
            f"above the clip length {spec.clip_frames} too",
        )


# -- files -----------------------------------------------------------------------------------


def is_image_path(path) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def _check_exists(arg: str, path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise InvalidArgument(arg, f"{path}: no such file")
    return path


def check_image_file(arg: str, path) -> None:
    """An image file PIL reads, not fully transparent.

    Raises:
        InvalidArgument: naming ``arg`` and the file.
    """
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    path = _check_exists(arg, path)
    try:
        with Image.open(path) as image:
            pixels = image_array(image)
    except (UnidentifiedImageError, OSError) as err:
        raise InvalidArgument(arg, f"{path}: not an image file PIL can read ({err})") from None
    if pixels.shape[-1] == 4:
        check_alpha(arg, np.asarray(pixels[..., 3]) / 255.0, str(path))


def image_array(image):
    """A PIL image -> uint8 (H, W, 3), or (H, W, 4) when it has transparency."""
    import numpy as np

    transparent = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    return np.asarray(image.convert("RGBA" if transparent else "RGB"))


def check_alpha(arg: str, alpha, what: str = "the image") -> float:
    """Refuse an image that is transparent everywhere; return the fraction of (partly)
    transparent pixels. ``alpha`` in [0, 1], any shape."""
    if float(alpha.max()) == 0.0:
        raise InvalidArgument(
            arg,
            f": {what} is fully transparent (alpha 0 everywhere), so it shows nothing to "
            "animate; flatten it onto a background first",
        )
    return float(((alpha < 1) * 1.0).mean())  # numpy or torch


def check_video_file(arg: str, path, min_frames: int = 1) -> int:
    """A video our reader reads, with at least ``min_frames`` frames; returns its frame count.

    Raises:
        InvalidArgument: naming ``arg``, the file and the reason.
    """
    path = _check_exists(arg, path)
    from ..data.video_io import VideoReadError, probe_video

    try:
        count = probe_video(path)
    except VideoReadError as err:
        raise InvalidArgument(arg, f"{err}") from None
    if count < min_frames:
        raise InvalidArgument(arg, f"{path}: {count} frames, fewer than the {min_frames} needed")
    return count
