"""The two diffusion stages (paper §3.2, §3.3): content frames and motion latents of a frozen
autoencoder, a DDPM noise schedule, class / text conditions and their dropout for
classifier-free guidance. The trainable module of each is an
:class:`~cmdvideo.training.stage.TrainableModules` whose ``forward(batch)`` runs the denoiser (and the
learned text encoder when there is one)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import DDIMScheduler

from ..config import Config
from ..data import batch_source
from ..data.video_io import write_frame_grid
from ..evaluation.quality import psnr_per_frame
from ..models.codec import VideoCodec
from ..models.content import (
    build_content_dit,
    build_content_unet,
    content_prediction,
    load_content_model,
    num_content_classes,
    uses_text,
)
from ..models.motion_dit import MotionDiT, motion_dit_preset
from ..models.text import (
    TextEmbeddings,
    WordTextEncoder,
    encode_prompts,
    load_text_encoder,
    text_embed_dim,
)
from ..pipelines.denoise import sample_content, sample_motion
from .losses import PredictionType, check_timestep_range, diffusion_loss
from .previews import write_preview
from .schedule import build_schedulers, init_scheduler_config, resolve_schedule
from .stage import Stage, TrainableModules

CONDITIONS = ("class", "text", "class+text", "none")


class DiffusionStage(Stage):
    """What the content and motion stages share: a frozen autoencoder that supplies the
    training pairs, a DDPM noise schedule, conditions (class labels, text) and their dropout for
    classifier-free guidance, and saving model + scheduler."""

    section = "motion"  # the config section: config.motion or config.content

    def __init__(
        self,
        config: Config,
        codec: VideoCodec,
        num_classes: int = 0,
        captions: list[str] | None = None,
        class_names: list[str] | None = None,
    ):

        cfg = getattr(config, self.section)
        if cfg.condition not in CONDITIONS:
            raise ValueError(
                f"{self.section}.condition must be one of {CONDITIONS}, got {cfg.condition!r}"
            )
        self.use_class = cfg.uses_class
        self.use_text = cfg.uses_text
        if self.use_class and num_classes < 1:
            raise ValueError(
                f"{self.section}.condition is {cfg.condition!r} but the data has no class labels; "
                "use a UCF-101 style folder (one subfolder per class) or "
                f"--set {self.section}.condition=text (captions) or none"
            )
        self.config, self.cfg = config, cfg
        self.codec = codec.eval().requires_grad_(False)
        self.num_classes = num_classes if self.use_class else 0
        self.captions = captions
        self.class_names = list(class_names) if class_names and self.use_class else None
        # The schedule: the config's, else the pretrained model's (content.init), else ours;
        # the sampler (DDIM) saved with the model is built from the same values.
        pretrained = init_scheduler_config(getattr(cfg, "init", None), cfg.init_subfolder)
        self.schedule, self.schedule_source = resolve_schedule(cfg, pretrained)
        self.prediction_type = PredictionType(self.schedule["prediction_type"])
        self.scheduler, self.sampler = build_schedulers(self.schedule, **self.clip_range(codec))

        # fail before training, naming the setting
        check_timestep_range(
            cfg.timestep_range,
            self.schedule["num_train_timesteps"],
            f"{self.section}.timestep_range",
        )
        # Text: a frozen encoder loaded from cfg.text_encoder, or (content stage) the built-in
        # WordTextEncoder, learned with the model when cfg.text_encoder is "builtin".
        self.text_encoder, self.tokenizer = None, None
        self.learns_text = self.use_text and cfg.text_encoder in (None, "builtin")
        if self.use_text and not self.learns_text:
            self.text_encoder, self.tokenizer = load_text_encoder(cfg.text_encoder)
        # A frozen sentence encoder gives every caption the same states at every step, and its
        # forward costs ~10x a tiny UNet step: each caption is encoded once (_frozen_text).
        self._text_memo: dict | None = None
        if self.text_encoder is not None and getattr(self.tokenizer, "padding_side", "") == "right":
            self._text_memo = {}
        self._model = None

    def clip_range(self, codec: VideoCodec) -> dict:
        """Whether samplers clip their x0 estimates: pixel content frames to [-1, 1];
        latent-mode content frames (VAE latents) are unbounded. Motion latents are never
        clipped, although they are tanh outputs times the scaling factor: DDIM clips x0 but
        keeps the ε it derived from the unclipped v-prediction, and under CFG, where guided x0
        estimates overshoot the range, that reversed the motion (left became right, grow
        became shrink) of an autoencoder whose latents fill their range (scaling factor 1.84;
        experiments/upright-world)."""
        if self.section == "motion":
            return {"clip_sample": False, "clip_sample_range": codec.motion_scale}
        return {"clip_sample": not codec.latent_mode, "clip_sample_range": 1.0}

    @torch.no_grad()
    def _encode(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(content_frame, scaled motion_latent, class labels or None) of a batch: encoded now,
        or read from a latent cache batch."""
        if batch_source(batch) == "latents":  # cmdvideo cache
            content, motion = batch["content"], batch["motion"]
            self.codec.to(content.device)
        else:
            video = batch["video"]
            self.codec.to(video.device)
            content, motion = self.codec.encode(video)  # (B, C, H, W), (B, D_m, T, h+w)
        labels = None
        if self.num_classes:
            labels = batch["label"]
            if (labels < 0).any():
                raise ValueError("class-conditioned training needs a label for every video")
        return content, motion, labels

    def _text(self, encoder, prompts: list[str], device, with_null: bool = True):
        """(prompt embeddings, empty-prompt embeddings or None when ``with_null`` is False);
        gradients only into a learned encoder."""

        if self._text_memo is not None and encoder is self.text_encoder:
            text = self._frozen_text(prompts, device)
            return text, self._frozen_text([""], device) if with_null else None
        with torch.set_grad_enabled(self.learns_text and torch.is_grad_enabled()):
            text = encode_prompts(encoder, self.tokenizer, prompts, device)
            null = encode_prompts(encoder, self.tokenizer, [""], device) if with_null else None
        return text, null

    @torch.no_grad()
    def _frozen_text(self, prompts: list[str], device):
        """`encode_prompts` of the frozen sentence encoder, each distinct prompt encoded once:
        the states of its real tokens are kept (on the CPU) and padded back to the same length
        with the same mask. Padding is masked in the UNet's cross-attention and left out of the
        pooled mean, so this equals encoding the batch (up to float rounding)."""

        if self._text_memo is None:  # switched off for an encoder without a padding mask
            return encode_prompts(self.text_encoder, self.tokenizer, prompts, device)
        missing = sorted({p for p in prompts if p not in self._text_memo})
        if missing:
            new = encode_prompts(self.text_encoder, self.tokenizer, missing, device)
            if new.mask is None:  # padding tokens carry meaning (CLIP): nothing to cut
                self._text_memo = None
                return encode_prompts(self.text_encoder, self.tokenizer, prompts, device)
            self._text_length = new.hidden.shape[1]
            for row, prompt in enumerate(missing):
                n = int(new.mask[row].sum())
                assert new.mask[row, :n].all(), "right padding expected"
                self._text_memo[prompt] = (new.hidden[row, :n].cpu(), new.pooled[row].cpu())
        states = [self._text_memo[p] for p in prompts]
        width = states[0][0].shape[-1]
        hidden = torch.zeros(len(prompts), self._text_length, width, dtype=states[0][0].dtype)
        mask = torch.zeros(len(prompts), self._text_length, dtype=torch.bool)
        for row, (tokens, _) in enumerate(states):
            hidden[row, : len(tokens)], mask[row, : len(tokens)] = tokens, True
        pooled = torch.stack([p for _, p in states])  # (B, D)
        return TextEmbeddings(hidden.to(device), pooled.to(device), mask.to(device))

    def _new_text_encoder(self):
        """The built-in word encoder to learn with this stage's model: continued from
        ``init/text_encoder`` when initialising from a run that learned one, else fresh."""

        init = getattr(self.cfg, "init", None)
        if init:
            run = Path(init).parent if (Path(init) / "config.json").is_file() else Path(init)
            if (run / "text_encoder" / "config.json").is_file():  # a run that learned one
                return WordTextEncoder.from_pretrained(run / "text_encoder")
        if not self.captions:
            raise ValueError("the built-in text encoder needs the training captions")
        return WordTextEncoder.from_captions(self.captions, **self.cfg.text_encoder_overrides)

    def _encoder(self, modules):
        """The text encoder: the one learned with the model (a submodule), else the frozen one."""
        return getattr(modules, "text_encoder", None) or self.text_encoder

    def _text_conditions(self, model, batch, device, with_null: bool = True):
        """(text, null_text) embeddings of a batch's captions; (None, None) without text."""
        if not self.use_text:
            return None, None
        return self._text(self._encoder(model).to(device), batch["caption"], device, with_null)

    def _dropped(self, batch_size: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        """(drop_class, drop_text) masks. A row drops every condition with probability
        ``condition_dropout`` (the unconditional model of CFG); with both class and text, the
        other rows keep both, only the class or only the text, with equal probability, so one
        model serves class-, prompt- and class+prompt-conditioned sampling.

        From the global RNG, which checkpoints restore: resumed runs drop the same rows."""
        u = torch.rand(batch_size, device=device)
        v = torch.rand(batch_size, device=device)
        none = u < self.cfg.condition_dropout
        if not (self.use_class and self.use_text):
            return none, none
        return none | (v < 1 / 3), none | ((v >= 1 / 3) & (v < 2 / 3))

    def _loss(self, denoiser, clean: torch.Tensor) -> torch.Tensor:
        """The training loss: the denoising loss on this stage's timestep range."""

        return diffusion_loss(
            denoiser,
            clean,
            self.scheduler,
            self.prediction_type,
            timestep_range=self.cfg.timestep_range,
        )

    VALIDATION_REPEATS = 16  # noise draws per preview video for the validation loss

    @torch.no_grad()
    def validation_loss(self, denoise_fn, clean: torch.Tensor) -> float:
        """Denoising loss on held-out samples with fixed noise and timesteps (seeded), so the
        numbers of different checkpoints and runs are comparable: ``preview/val_loss``."""

        generator = torch.Generator().manual_seed(1234)
        repeat = (self.VALIDATION_REPEATS,) + (1,) * (clean.ndim - 1)
        loss = diffusion_loss(
            denoise_fn, clean.repeat(*repeat), self.scheduler, self.prediction_type, generator
        )
        return loss.item()

    def _ddim(self):
        return DDIMScheduler.from_config(self.sampler.config)

    def _save_text_encoder(self, encoder, out_dir: Path) -> list[Path]:
        paths = []
        if encoder is not None:
            paths.append(Path(out_dir) / "text_encoder")
            encoder.save_pretrained(paths[-1])
            if self.tokenizer is not None:
                paths.append(Path(out_dir) / "tokenizer")
                self.tokenizer.save_pretrained(paths[-1])
        return paths

    def save_model(self, model, out_dir: Path) -> list[Path]:
        """``OUT/<name>`` (the denoiser), ``OUT/<name>_scheduler``, and the text encoder it
        was trained with (``OUT/text_encoder``, ``OUT/tokenizer`` for CLIP)."""
        paths = [Path(out_dir) / self.name, Path(out_dir) / f"{self.name}_scheduler"]
        model.net.save_pretrained(paths[0])
        self.sampler.save_pretrained(paths[1])  # the schedule, as the DDIM the pipeline uses
        if self.class_names:
            paths.append(Path(out_dir) / "classes.json")
            paths[-1].write_text(json.dumps(self.class_names))
        return paths + self._save_text_encoder(self._encoder(model), out_dir)


class MotionStage(DiffusionStage):
    """Stage 3 (paper §3.3): learn to denoise motion latents of the frozen autoencoder, guided
    by the encoder's content frame (at sampling time: the generated one) and the class label
    and/or the prompt's pooled embedding.

    Independent of the content stage, so both can train at the same time in two processes.
    With the built-in text encoder each stage learns its own (the pipeline keeps both); a CLIP
    text model is frozen and shared. The trainable module is ``:class:`TrainableModules`: ``net`` (the
    MotionDiT) and ``text_encoder`` when learned.
    """

    name = "motion"
    section = "motion"

    def __init__(self, config: Config, codec: VideoCodec, num_classes: int = 0, **kwargs):
        super().__init__(config, codec, num_classes, **kwargs)
        if codec.autoencoder.config.motion_scaling_factor is None:
            raise ValueError(
                "the autoencoder has no motion_scaling_factor; run `cmdvideo calibrate "
                "--autoencoder DIR` once (training with `cmdvideo train autoencoder` does it)"
            )

    def model(self):
        if self._model is None:  # built inside Trainer.train, after the seed is set
            modules = {"text_encoder": self._new_text_encoder()} if self.learns_text else {}
            encoder = modules.get("text_encoder", self.text_encoder)
            ae = self.codec.autoencoder.config
            kwargs = motion_dit_preset(self.cfg.preset)
            kwargs.update(self.cfg.overrides or {})
            dit = MotionDiT(
                **kwargs,
                motion_channels=ae.motion_channels,
                content_channels=ae.in_channels,
                num_classes=self.num_classes,
                text_embed_dim=text_embed_dim(encoder) if self.use_text else 0,
            )
            if self.config.train.gradient_checkpointing:
                dit.enable_gradient_checkpointing()
            self._model = TrainableModules(self, net=dit, **modules)
        return self._model

    def _pooled(self, model, batch, device) -> torch.Tensor | None:
        # the DiT has a learned null text: no empty prompt to encode
        text, _ = self._text_conditions(model, batch, device, with_null=False)
        return None if text is None else text.pooled

    def objective(self, modules, batch):
        content, motion, labels = self._encode(batch)
        text = self._pooled(modules, batch, motion.device)
        drop_class, drop_text = self._dropped(motion.shape[0], motion.device)

        def denoiser(noisy, t):
            return modules.net(noisy, t, content, labels, text, drop_class, drop_text)

        return self._loss(denoiser, motion), {}

    def preview(self, model, batch, out_dir: Path, step: int) -> dict[str, float]:
        """Real content frames + sampled motion, decoded; PSNR against the real video says how
        close the sampled motion is to the one that happened (a rough signal, not a metric)."""

        content, real_motion, labels = self._encode(batch)
        generator = torch.Generator(device=content.device).manual_seed(0)
        h, w = self.codec.autoencoder.token_grid(*content.shape[-2:])
        pooled = self._pooled(model, batch, content.device)
        motion = sample_motion(
            model.net,
            self._ddim(),
            content,
            self.config.data.num_frames,
            h + w,
            labels,
            pooled,
            self.cfg.preview_guidance,
            self.cfg.preview_steps,
            generator,
            progress=False,
        )
        video = batch.get("video")
        if video is None:  # latent cache: compare with the reconstruction instead
            video = self.codec.decode(content, real_motion).float().clamp(-1, 1)
        decoded = self.codec.decode(content, motion).float().clamp(-1, 1)
        content_px = self.codec.content_to_pixels(content)
        names = ("source", "content", "sampled")
        write_preview(Path(out_dir) / f"step-{step:06d}", video, content_px, decoded, names=names)
        r = self.VALIDATION_REPEATS

        def conditional(noisy, t):
            return model.net(
                noisy,
                t,
                content.repeat(r, 1, 1, 1),
                None if labels is None else labels.repeat(r),
                None if pooled is None else pooled.repeat(r, 1),
            )

        return {
            "psnr_sampled_motion": psnr_per_frame(decoded, video).mean().item(),
            "val_loss": self.validation_loss(conditional, real_motion),
        }


class ContentStage(DiffusionStage):
    """Stage 2 (paper §3.2): an image diffusion model over content frames.

    ``content.init`` starts from a pretrained image UNet (no new parameters); ``content.target
    = frames`` trains on single frames of the videos instead (image pretraining), and a later
    run with ``content.init`` pointing at that model fine-tunes it on content frames. With text
    conditioning the UNet cross-attends to the prompt's token states: a frozen CLIP text model
    (``content.text_encoder``) or the built-in word encoder learned here.

    The trainable module is an :class:`TrainableModules`: ``net`` (the UNet) and ``text_encoder``
    when learned.
    """

    name = "content"
    section = "content"

    def model(self):
        if self._model is not None:
            return self._model
        if self.cfg.target not in ("content_frame", "frames"):
            raise ValueError(
                f"content.target must be 'content_frame' or 'frames', got {self.cfg.target!r}"
            )
        modules = {"text_encoder": self._new_text_encoder()} if self.learns_text else {}
        encoder = modules.get("text_encoder", self.text_encoder)
        dim = text_embed_dim(encoder) if self.use_text else 0
        if self.cfg.init:
            init, subfolder = self.cfg.init, self.cfg.init_subfolder
            if subfolder is None and (Path(init) / "content" / "config.json").is_file():
                subfolder = "content"  # a `cmdvideo train content` run folder
            unet = load_content_model(init, subfolder)
            if num_content_classes(unet) != self.num_classes:
                raise ValueError(
                    f"content.init has {num_content_classes(unet)} classes, the data "
                    f"{self.num_classes}; initialise from a model with the same classes"
                )
            width = getattr(unet.config, "cross_attention_dim", None) or getattr(
                unet.config, "text_embed_dim", 0
            )
            if uses_text(unet) != self.use_text or (dim and width != dim):
                raise ValueError(
                    f"content.init {'is' if uses_text(unet) else 'is not'} text-conditioned "
                    f"(width {width}) but content.condition is {self.cfg.condition!r} with text "
                    f"width {dim}"
                )
        else:
            ae = self.codec.autoencoder.config
            f = self.codec.frame_vae.downsample if self.codec.latent_mode else 1
            size = (self.config.data.height // f, self.config.data.width // f)
            if self.cfg.backbone not in ("unet", "dit"):
                raise ValueError(
                    f"content.backbone must be 'unet' or 'dit', got {self.cfg.backbone!r}"
                )
            build = build_content_unet if self.cfg.backbone == "unet" else build_content_dit
            unet = build(
                self.cfg.preset, ae.in_channels, size, self.num_classes, self.cfg.overrides, dim
            )
        if self.config.train.gradient_checkpointing:
            unet.enable_gradient_checkpointing()
        self._model = TrainableModules(self, net=unet, **modules)
        return self._model

    def _targets(self, batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        content, _, labels = self._encode(batch)
        if self.cfg.target == "frames":
            if "video" not in batch:
                raise ValueError("content.target=frames needs videos, not a latent cache")
            video = self.codec.to_model_space(batch["video"])  # (B, C, T, H, W)
            pick = torch.randint(0, video.shape[2], (video.shape[0],), device=video.device)
            content = video[torch.arange(video.shape[0], device=video.device), :, pick]
        return content, labels

    def objective(self, modules, batch):
        target, labels = self._targets(batch)
        text, null = self._text_conditions(modules, batch, target.device)
        drop_class, drop_text = self._dropped(target.shape[0], target.device)

        def denoiser(noisy, t):
            return content_prediction(
                modules.net, noisy, t, labels, text, null, drop_class, drop_text
            )

        return self._loss(denoiser, target), {}

    def preview(self, model, batch, out_dir: Path, step: int) -> dict[str, float]:
        """A grid: the real content frames (top row) and content frames sampled for the same
        class labels / captions (bottom row)."""

        real, labels = self._targets(batch)
        text, null = self._text_conditions(model, batch, real.device)
        generator = torch.Generator(device=real.device).manual_seed(0)
        sampled = sample_content(
            model.net,
            self._ddim(),
            real.shape[0],
            labels,
            text,
            null,
            self.cfg.preview_guidance,
            self.cfg.preview_steps,
            generator,
            real.device,
            progress=False,
            size=tuple(real.shape[-2:]),
        )
        rows = [
            torch.stack(list(self.codec.content_to_pixels(x).float().clamp(-1, 1)), dim=1)
            for x in (real, sampled)
        ]  # each (3, B, H, W): one image per column
        out = Path(out_dir) / f"step-{step:06d}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        write_frame_grid(out, rows, labels=["real", "sampled"], upscale=2)
        r = self.VALIDATION_REPEATS

        def conditional(noisy, t):
            return content_prediction(
                model.net,
                noisy,
                t,
                None if labels is None else labels.repeat(r),
                None if text is None else text.tile(r),
                null,
            )

        return {"val_loss": self.validation_loss(conditional, real)}
