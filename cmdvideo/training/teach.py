"""Teaching a frozen pipeline new words from a few captioned clips (``cmdvideo teach``).

CMD splits a video into what it shows (the content frame) and how it moves (the motion latent),
so a new *look* is a content-stage concept and a new *motion* a motion-stage one (DESIGN §10).
The clips are encoded once by the base's own autoencoder; each new word gets an embedding in
both stages' word encoders, and the stage(s) the clips concern get LoRA layers on their denoiser
(peft, diffusers' conventions). Which stages: decided from the data — the base's denoising loss
on the clips against its loss on its own world — or told. Half of every batch is the base's own
world (prior preservation), so prompts without the new words keep what the base did. The base's
weights never change; the result is an adapter folder (:mod:`cmdvideo.pipelines.adapters`).

The optimisation is the one training loop's (:class:`~cmdvideo.training.trainer.Trainer`):
progress with an ETA, atomic checkpoints, exact ``--resume`` after Ctrl-C.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from diffusers import DDPMScheduler
from torch import nn

from ..config import Config
from ..data.video_io import write_text
from ..models.content import content_prediction, num_content_classes
from ..models.text import encode_prompts
from ..pipelines.adapters import (
    ADAPTER_FILE,
    ADAPTER_FORMAT,
    DENOISERS,
    ENCODERS,
    LORA_FILE,
    WORDS_FILE,
    base_fingerprint,
    base_name,
    require_peft,
    save_words,
)
from ..pipelines.cmd import CMDPipeline
from .losses import PredictionType, diffusion_loss
from .stage import Stage, TrainableModules
from .teach_data import (
    Contents,
    Latents,
    TeachingSet,
    encode_clips,
    new_words,
    read_clips,
    transfer_clips,
    word_encoders,
    world_contents,
    world_prior,
)
from .trainer import Trainer

logger = logging.getLogger(__name__)

TEACHING = "teaching"  # the adapter name while it is being taught
STAGES = {"content": "content_model", "motion": "motion_model"}
CONDITION_DROPOUT = 0.1  # the base's condition dropout (tiny config), kept on its world's rows


@dataclass
class TeachPlan:
    """What a teaching run learns: its new words, the denoisers that get LoRA layers, and the
    measurement that chose them (a stage's loss on the clips / on the base's world)."""

    words: list[str]
    lora: list[str]  # "content" and/or "motion"
    ratios: dict[str, float]
    chosen_by: str  # "the data" or "--stage"

    def describe(self) -> str:
        measured = ", ".join(f"{s} {r:.2f}x" for s, r in self.ratios.items())
        return (
            f"new words: {', '.join(self.words)}; LoRA on the {' and '.join(self.lora)} "
            f"model{'s' if len(self.lora) > 1 else ''} (chosen by {self.chosen_by}; the base's "
            f"loss on the clips against its own world: {measured})"
        )


# -- deciding where the clips are new ----------------------------------------------------------


@torch.no_grad()
def stage_ratios(pipe, clips: Latents, prior: Latents | None, repeats: int = 8) -> dict:
    """Per stage, the base's denoising loss on the clips over its loss on as many videos of its
    own world (same noise and timesteps): well above 1 where the clips show what the base
    cannot make. Without a prior, the ratio is against the clips' own loss (1.0)."""
    n = len(clips) if prior is None else min(len(clips), len(prior))
    ratios = {}
    for stage in STAGES:
        if stage == "motion" and not pipe.motion_model.config.text_embed_dim:
            continue
        loss = []
        for latents in (clips, prior):
            if latents is None:
                continue
            g = torch.Generator().manual_seed(0)
            values = [
                _base_loss(pipe, stage, latents, slice(0, n), g).item() for _ in range(repeats)
            ]
            loss.append(sum(values) / len(values))
        ratios[stage] = loss[0] / loss[1] if len(loss) == 2 else 1.0
    return ratios


def _base_loss(pipe, stage: str, latents: Latents, rows: slice, generator) -> torch.Tensor:
    captions = latents.captions[rows]
    scheduler = DDPMScheduler.from_config(getattr(pipe, f"{stage}_scheduler").config)
    prediction = PredictionType(scheduler.config.prediction_type)
    if stage == "content":
        text = encode_prompts(pipe.text_encoder, pipe.tokenizer, captions, pipe.device)
        null = encode_prompts(pipe.text_encoder, pipe.tokenizer, [""], pipe.device)

        def denoiser(noisy, t):
            return content_prediction(pipe.content_model, noisy, t, None, text, null)

        clean = latents.content[rows]
    else:
        encoder = pipe.motion_text_encoder or pipe.text_encoder
        pooled = encode_prompts(encoder, pipe.tokenizer, captions, pipe.device).pooled
        content = latents.content[rows]

        def denoiser(noisy, t):
            return pipe.motion_model(noisy, t, content, None, pooled)

        clean = latents.motion[rows]
    return diffusion_loss(denoiser, clean, scheduler, prediction, generator)


def plan_teaching(pipe, clips, prior, found_words, stage: str, threshold: float) -> TeachPlan:
    """The words to learn and the denoisers to adapt: ``stage`` when told, else every stage
    whose ratio (:func:`stage_ratios`) is over ``threshold`` and at least half as far above 1
    as the largest one's — at least the stage with the largest."""
    for encoder in word_encoders(pipe).values():  # expected here: no warning about them
        encoder.report_unknown_words(clips.captions)
    ratios = stage_ratios(pipe, clips, prior)
    if stage != "auto":
        lora = list(STAGES) if stage == "both" else [stage]
        return TeachPlan(found_words, lora, ratios, "--stage")
    top = max(ratios.values())
    # new to a stage: well over the base's own loss, and not far below the stage most surprised
    # (a new shape's clips also move a little unlike the world: 1.2-1.4x on the motion model)
    lora = [s for s, r in ratios.items() if r > threshold and r - 1 >= (top - 1) / 2]
    if not lora:
        lora = [max(ratios, key=ratios.get)]
    return TeachPlan(found_words, lora, ratios, "the data")


# -- the stage the training loop runs ----------------------------------------------------------


class TeachStage(Stage):
    """New words in every word encoder and LoRA layers on the planned denoisers of ``pipe``,
    learned by the denoising losses on a :class:`TeachingSet`'s batches."""

    name = "teach"

    def __init__(self, pipe, plan: TeachPlan, config: Config, adapter_dir: Path, info: dict):
        self.pipe, self.plan, self.config, self.cfg = pipe, plan, config, config.teach
        self.adapter_dir, self.info = Path(adapter_dir), info
        self.encoders = word_encoders(pipe)
        if not pipe.motion_model.config.text_embed_dim:  # a motion model without text
            self.encoders.pop("motion_text_encoder", None)
        self.schedulers = {
            s: DDPMScheduler.from_config(getattr(pipe, f"{s}_scheduler").config) for s in STAGES
        }
        # Word vectors live as offsets in units of each encoder's own embedding spread, from
        # its mean word: one learning rate fits encoders whose embeddings differ 50x in scale.
        self.word_base = {}
        for name, encoder in self.encoders.items():
            table = encoder.token_embed.weight.detach()[3:]  # the vocabulary's words
            self.word_base[name] = (table.mean(0), table.std(0).mean())
        self._model = None

    def model(self) -> TrainableModules:
        if self._model is not None:
            return self._model
        peft = require_peft("teach")
        for name in (*DENOISERS, *ENCODERS, "autoencoder", "vae"):
            module = getattr(self.pipe, name, None)
            if isinstance(module, nn.Module):
                module.requires_grad_(False)
        modules: dict[str, nn.Module] = {}
        for stage in self.plan.lora:
            model = getattr(self.pipe, STAGES[stage])
            targets = self.cfg.content_targets if stage == "content" else self.cfg.motion_targets
            config = peft.LoraConfig(
                r=self.cfg.rank,
                lora_alpha=self.cfg.rank,
                init_lora_weights="gaussian",
                target_modules=list(targets),
            )
            model.add_adapter(config, adapter_name=TEACHING)
            modules[STAGES[stage]] = model
        offsets = {
            f"{name}__{word}": nn.Parameter(torch.zeros(encoder.config.hidden_size))
            for name, encoder in self.encoders.items()
            for word in self.plan.words
        }
        modules["words"] = nn.ParameterDict(offsets)
        self._model = TrainableModules(self, **modules)
        return self._model

    def word_vectors(self, modules) -> dict[str, dict[str, torch.Tensor]]:
        """{encoder component: {word: (D,) vector}} from the learned offsets."""
        vectors = {}
        for name in self.encoders:
            mean, spread = self.word_base[name]
            vectors[name] = {
                w: mean.to(modules.words[f"{name}__{w}"]) + spread * modules.words[f"{name}__{w}"]
                for w in self.plan.words
            }
        return vectors

    def _words_into_encoders(self, modules) -> None:
        for name, vectors in self.word_vectors(modules).items():
            self.encoders[name].add_words(vectors, TEACHING)

    def _drops(self, labels: torch.Tensor, prior: torch.Tensor):
        """(drop_class, drop_text): the world's rows as the base was trained (all conditions
        dropped at CONDITION_DROPOUT, else both, only the class or only the text); the clips'
        rows keep their text and have no class."""
        u, v = torch.rand(labels.shape[0]), torch.rand(labels.shape[0])
        none = (prior & (u < CONDITION_DROPOUT)) | (~prior & (u < self.cfg.clip_dropout))
        drop_class = (labels < 0) | none | (prior & (v < 1 / 3))
        drop_text = none | (prior & (v >= 1 / 3) & (v < 2 / 3))
        return drop_class.to(labels.device), drop_text.to(labels.device)

    def _reads_words(self, stage: str) -> bool:
        """Whether ``stage``'s denoiser reads the prompt through a word encoder."""
        if stage == "content":
            return "text_encoder" in self.encoders
        return bool(self.pipe.motion_model.config.text_embed_dim) and bool(self.encoders)

    def objective(self, modules, batch):
        self._words_into_encoders(modules)
        prior = batch["prior"].bool().cpu()
        motion_only = batch["motion_only"].bool().cpu()
        total, logged = 0.0, {}
        for stage in STAGES:
            adapted = stage in self.plan.lora
            if not adapted and not self._reads_words(stage):
                continue
            rows = torch.ones_like(prior) if adapted else ~prior  # else only the words learn
            if stage == "content":
                rows = rows & ~motion_only  # another clip's motion on world content
            if not rows.any():
                continue
            model = (
                getattr(modules, STAGES[stage]) if adapted else getattr(self.pipe, STAGES[stage])
            )
            loss = self._stage_loss(stage, model, batch, rows, prior)
            total = total + loss
            logged[f"{stage}_loss"] = loss.item()
        return total, logged

    def _stage_loss(self, stage, model, batch, rows, prior) -> torch.Tensor:
        index = rows.nonzero()[:, 0]
        captions = [batch["caption"][i] for i in index.tolist()]
        labels, prior = batch["label"][index], prior[index]
        drop_class, drop_text = self._drops(labels.cpu(), prior)
        device = batch["content"].device
        drop_class, drop_text = drop_class.to(device), drop_text.to(device)
        content = batch["content"][index]
        scheduler = self.schedulers[stage]
        prediction = PredictionType(scheduler.config.prediction_type)
        if stage == "content":
            text = encode_prompts(self.pipe.text_encoder, self.pipe.tokenizer, captions, device)
            null = encode_prompts(self.pipe.text_encoder, self.pipe.tokenizer, [""], device)
            classes = labels.clamp(min=0) if num_content_classes(model) else None

            def denoiser(noisy, t):
                return content_prediction(
                    model, noisy, t, classes, text, null, drop_class, drop_text
                )

            return diffusion_loss(denoiser, content, scheduler, prediction)
        encoder = self.pipe.motion_text_encoder or self.pipe.text_encoder
        pooled = encode_prompts(encoder, self.pipe.tokenizer, captions, device).pooled
        classes = labels.clamp(min=0) if model.config.num_classes else None

        def denoiser(noisy, t):
            return model(noisy, t, content, classes, pooled, drop_class, drop_text)

        return diffusion_loss(denoiser, batch["motion"][index], scheduler, prediction)

    def save_model(self, model, out_dir: Path) -> list[Path]:
        """The adapter folder (``self.adapter_dir``), each file written in one step."""
        from peft.utils import get_peft_model_state_dict

        out = self.adapter_dir
        staging = out / f".{TEACHING}-files"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        layers = {}
        for stage in self.plan.lora:
            denoiser = getattr(model, STAGES[stage])
            layers[f"{STAGES[stage]}_lora_layers"] = get_peft_model_state_dict(
                denoiser, adapter_name=TEACHING
            )
            layers[f"{STAGES[stage]}_lora_adapter_metadata"] = denoiser.peft_config[
                TEACHING
            ].to_dict()
        CMDPipeline.save_lora_weights(staging, **layers)
        save_words(staging, self.word_vectors(model))
        (staging / ADAPTER_FILE).write_text(json.dumps(self.info, indent=2) + "\n")
        paths = []
        for name in (LORA_FILE, WORDS_FILE, ADAPTER_FILE):
            os.replace(staging / name, out / name)
            paths.append(out / name)
        shutil.rmtree(staging)
        return paths


# -- the whole command -------------------------------------------------------------------------


@dataclass
class TeachResult:
    """What a finished teaching run wrote and measured."""

    out: Path
    plan: TeachPlan
    clips: int
    items: int
    skipped: dict
    steps: int
    seconds: float
    adapter_bytes: int


def teach(
    data: str | Path,
    out: str | Path,
    config: Config,
    model: str | Path = "moving-shapes-tiny",
    resume: bool = False,
    pipe=None,
) -> TeachResult:
    """Teach the pipeline ``model`` (or ``pipe``, left as it was) the new words of the clips in
    ``data``; the adapter goes to ``out`` and the run (config, metrics, checkpoints until it
    ends) to ``out/teaching``.

    Raises:
        ValueError: too few readable clips, clips without captions, captions without a new
            word, a base without built-in word encoders.
        FileNotFoundError: ``data`` missing; ``resume`` without a checkpoint.
    """

    start = time.perf_counter()
    out = Path(out)
    run_dir = out / TEACHING
    cfg = config.teach
    name = base_name(pipe) if pipe is not None else str(model)
    pipe = pipe if pipe is not None else CMDPipeline.from_pretrained(str(model))
    if pipe.loaded_adapters():
        raise ValueError(
            f"the pipeline has adapters loaded ({', '.join(pipe.loaded_adapters())}); teach on "
            "the base alone (unload_lora_weights), then load the new adapter beside them"
        )
    folder, skipped = read_clips(data, pipe, cfg.clips_per_video, cfg.min_clips, config.train.seed)
    found = new_words(pipe, folder.captions())
    clips = encode_clips(pipe, folder)
    prior = world_prior(pipe, cfg.prior_videos)
    saved_plan = run_dir / "plan.json"
    if resume and saved_plan.is_file():  # the same plan as the run being resumed
        plan = TeachPlan(**json.loads(saved_plan.read_text()))
    else:
        plan = plan_teaching(pipe, clips, prior, found, cfg.stage, cfg.stage_threshold)
    logger.info("teach: %s", plan.describe())
    taught_on = {"clips": len(folder.samples), "items": len(clips), "data": str(data)}
    info = _adapter_info(pipe, name, plan, config, {**taught_on, "skipped": skipped})
    stage = TeachStage(pipe, plan, config, out, info)
    trainer = Trainer(stage, _teaching_set(pipe, plan, cfg, clips, prior), config, run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text(saved_plan, json.dumps(asdict(plan)) + "\n")
    try:
        trainer.train(resume=resume)
    finally:  # the pipeline as it was given
        pipe.delete_adapters(TEACHING)
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)  # finished: nothing to resume
    size = sum((out / n).stat().st_size for n in (LORA_FILE, WORDS_FILE, ADAPTER_FILE))
    return TeachResult(
        out,
        plan,
        len(folder.samples),
        len(clips),
        skipped,
        config.train.max_steps,
        time.perf_counter() - start,
        size,
    )


def _adapter_info(pipe, name: str, plan: TeachPlan, config: Config, taught_on: dict) -> dict:
    """What the adapter records beside its weights: its base, the words it adds and to which
    encoders, the stages it adapts, the plan and the settings it was taught with."""
    return {
        "format": ADAPTER_FORMAT,
        "base": {"name": name, "fingerprint": base_fingerprint(pipe)},
        "words": {w: sorted(word_encoders(pipe)) for w in plan.words},
        "lora": plan.lora,
        "plan": asdict(plan),
        "taught_on": taught_on,
        "settings": {"teach": asdict(config.teach), "steps": config.train.max_steps},
    }


def _teaching_set(pipe, plan: TeachPlan, cfg, clips: Latents, prior) -> TeachingSet:
    """The clips, the base's world as prior and, for a new motion (not a new look), the clips'
    motions moved onto the world's content frames."""
    transferred = None
    if plan.lora == ["motion"] and cfg.transfers_per_clip > 0:
        contents = world_contents(pipe, cfg.prior_videos) or Contents(clips.content)
        phrase = " ".join(plan.words)
        transferred = transfer_clips(pipe, clips, contents, cfg.transfers_per_clip, phrase)
    return TeachingSet(clips, prior, cfg.prior_fraction, transferred)
