"""Adapters on a frozen pipeline: LoRA layers on the two denoisers plus the new words they were
taught with (``cmdvideo teach``), loaded, combined and unloaded as diffusers' LoRA loaders do.

An adapter folder::

    ADAPTER/pytorch_lora_weights.safetensors   LoRA layers, diffusers' layout: keys
                                               "content_model.<module>.lora_A.weight", ...,
                                               "motion_model.<module>.lora_B.weight"; the LoRA
                                               configs in the file's metadata
    ADAPTER/learned_words.safetensors          "<text encoder>.<word>": (D,) embeddings of the
                                               new words in each stage's word encoder
    ADAPTER/cmdvideo_adapter.json              the base it was taught on (name, fingerprint), its
                                               words and stages, how it was taught

The base's weights never change: ``unload_lora_weights()`` gives back the base, bit for bit.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from contextlib import contextmanager
from pathlib import Path

import torch
from diffusers.loaders.lora_base import LoraBaseMixin
from safetensors.torch import load_file, save_file

from ..models.text import WordTextEncoder

logger = logging.getLogger(__name__)

LORA_FILE = "pytorch_lora_weights.safetensors"  # diffusers' LORA_WEIGHT_NAME_SAFE
WORDS_FILE = "learned_words.safetensors"
ADAPTER_FILE = "cmdvideo_adapter.json"
ADAPTER_FORMAT = 1
DENOISERS = ("content_model", "motion_model")  # the pipeline's LoRA-loadable components
ENCODERS = ("text_encoder", "motion_text_encoder")  # where words are added
ADAPTERS_EXTRA = "pip install 'cmdvideo[adapters]'"  # peft (and transformers, which it needs)


def require_peft(purpose: str):
    """The ``peft`` module, or an error saying what needs it and how to install it."""
    try:
        import peft
    except ModuleNotFoundError as err:
        if err.name != "peft":
            raise
        raise ModuleNotFoundError(f"{purpose} needs peft: {ADAPTERS_EXTRA}", name="peft") from None
    from diffusers.utils import USE_PEFT_BACKEND

    if not USE_PEFT_BACKEND:  # diffusers also asks for transformers
        raise ModuleNotFoundError(f"{purpose} needs peft and transformers: {ADAPTERS_EXTRA}")
    return peft


def _base_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The module's own weights, whatever adapters are loaded into it (peft moves a wrapped
    layer's weight to ``<name>.base_layer.weight`` and adds ``lora_A`` / ``lora_B``)."""
    state = {}
    for key, value in module.state_dict().items():
        if ".lora_" in key or "lora_magnitude" in key:
            continue
        state[key.replace(".base_layer.", ".")] = value
    return state


def base_fingerprint(pipe) -> str:
    """A short hash of the base weights an adapter depends on (both denoisers, the word
    encoders, the autoencoder, the frame VAE); the same with or without adapters loaded."""
    digest = hashlib.sha256()
    for name in (*DENOISERS, *ENCODERS, "autoencoder", "vae"):
        module = getattr(pipe, name, None)
        if module is None:
            continue
        digest.update(name.encode())
        for key, value in sorted(_base_state(module).items()):
            digest.update(key.encode())
            digest.update(value.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def base_name(pipe) -> str:
    return str(pipe.config.get("_name_or_path") or getattr(pipe, "name_or_path", "") or "?")


def adapter_name_for(path: Path) -> str:
    """A default adapter name: the folder's name, in letters, digits, - and _."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", path.resolve().name).strip("-") or "adapter"


def read_adapter(path: str | Path) -> dict:
    """The adapter folder's description (``cmdvideo_adapter.json``), checked."""
    path = Path(path)
    info = path / ADAPTER_FILE
    if not path.is_dir() or not info.is_file():
        raise FileNotFoundError(
            f"{path} is not an adapter folder (no {ADAPTER_FILE}); give the --out folder of "
            "`cmdvideo teach`"
        )
    meta = json.loads(info.read_text())
    if meta.get("format") != ADAPTER_FORMAT:
        raise ValueError(f"{path}: adapter format {meta.get('format')}, this cmdvideo reads 1")
    return meta


class CMDLoraLoaderMixin(LoraBaseMixin):
    """``load_lora_weights`` / ``set_adapters`` / ``unload_lora_weights`` for CMD pipelines:
    LoRA layers on ``content_model`` and ``motion_model`` (diffusers' loaders do the layers),
    and the adapter's new words in the word encoders."""

    _lora_loadable_modules = list(DENOISERS)

    @classmethod
    def lora_state_dict(cls, path: str | Path, **kwargs):
        """(LoRA state dict, metadata) of an adapter folder (local files only)."""
        from diffusers.loaders.lora_base import _fetch_state_dict

        return _fetch_state_dict(
            pretrained_model_name_or_path_or_dict=str(path),
            weight_name=kwargs.pop("weight_name", LORA_FILE),
            use_safetensors=True,
            local_files_only=True,
            cache_dir=None,
            force_download=False,
            proxies=None,
            token=None,
            revision=None,
            subfolder=None,
            user_agent={"file_type": "attn_procs_weights", "framework": "pytorch"},
            allow_pickle=False,
        )

    def load_lora_weights(
        self, path: str | Path, adapter_name: str | None = None, scale: float | None = None
    ):
        """Load an adapter folder (``cmdvideo teach --out``): its LoRA layers into the
        denoisers and its words into the word encoders, as adapter ``adapter_name`` (default:
        the folder's name). ``scale``: its weight, as ``set_adapters`` sets it (default 1).

        Raises:
            FileNotFoundError: not an adapter folder.
            ValueError: taught on another base; a word another loaded adapter has; the name in
                use.
        """
        require_peft("loading an adapter")
        path = Path(path)
        meta = read_adapter(path)
        name = adapter_name or adapter_name_for(path)
        self._check_adapter(path, meta, name)
        state_dict, metadata = self.lora_state_dict(path)
        for component in DENOISERS:
            if any(key.startswith(f"{component}.") for key in state_dict):
                getattr(self, component).load_lora_adapter(
                    state_dict, prefix=component, adapter_name=name, metadata=metadata
                )
        vectors = load_file(str(path / WORDS_FILE)) if (path / WORDS_FILE).is_file() else {}
        for component in ENCODERS:
            encoder = getattr(self, component, None)
            mine = {k.split(".", 1)[1]: v for k, v in vectors.items() if k.startswith(component)}
            if mine and isinstance(encoder, WordTextEncoder):
                encoder.add_words({w: v.to(encoder.dtype) for w, v in mine.items()}, name)
        self._activate(name, scale)
        return name

    def _check_adapter(self, path: Path, meta: dict, name: str) -> None:
        """Everything that can refuse an adapter, before anything is loaded."""
        fingerprint = base_fingerprint(self)
        base = meta.get("base", {})
        if base.get("fingerprint") != fingerprint:
            raise ValueError(
                f"the adapter {path} was taught on {base.get('name', '?')} "
                f"({base.get('fingerprint', '?')}), this pipeline is {base_name(self)} "
                f"({fingerprint}): teach it again on this pipeline (cmdvideo teach --model)"
            )
        if name in self.loaded_adapters():
            raise ValueError(
                f"an adapter named {name!r} is loaded already; pass another adapter_name "
                "(--lora DIR gives the folder's name)"
            )
        for component in ENCODERS:
            encoder = getattr(self, component, None)
            if not isinstance(encoder, WordTextEncoder):
                continue
            for word in meta.get("words", {}):
                owner = encoder.added_words.get(word)
                if owner is not None:
                    raise ValueError(
                        f"the word {word!r} comes with two adapters, {owner!r} and {name!r} "
                        f"({path}): load one of them"
                    )

    def loaded_adapters(self) -> list[str]:
        """Names of the adapters loaded (in any denoiser or as words)."""
        names = {n for names in self.get_list_adapters().values() for n in names}
        for component in ENCODERS:
            encoder = getattr(self, component, None)
            if isinstance(encoder, WordTextEncoder):
                names.update(encoder.added_words.values())
        return sorted(names)

    def adapter_words(self) -> dict[str, str]:
        """Word -> adapter, for every word the loaded adapters add."""
        found = {}
        for component in ENCODERS:
            encoder = getattr(self, component, None)
            if isinstance(encoder, WordTextEncoder):
                found.update(encoder.added_words)
        return found

    def _word_encoders(self) -> list[WordTextEncoder]:
        found = [getattr(self, c, None) for c in ENCODERS]
        return [e for e in found if isinstance(e, WordTextEncoder)]

    def set_adapters(self, adapter_names, adapter_weights=None):
        """Use only these adapters, at these weights (diffusers' ``set_adapters``): their LoRA
        layers and their words; the words of the others read as unknown."""
        names = [adapter_names] if isinstance(adapter_names, str) else list(adapter_names)
        weights = adapter_weights
        if not isinstance(weights, list):
            weights = [weights] * len(names)
        present = {n for found in self.get_list_adapters().values() for n in found}
        pairs = [(n, w) for n, w in zip(names, weights) if n in present]
        if pairs:
            super().set_adapters([n for n, _ in pairs], [w for _, w in pairs])
        for encoder in self._word_encoders():
            encoder.set_active_owners(names)

    def disable_lora(self):
        """The base alone (adapters stay loaded): no LoRA layer acts, no adapter word is read."""
        super().disable_lora()
        for encoder in self._word_encoders():
            encoder.set_active_owners(())

    def enable_lora(self):
        super().enable_lora()
        for encoder in self._word_encoders():
            encoder.set_active_owners(None)

    @contextmanager
    def adapters_in_use(self, names: list[str] | None = None):
        """Only the loaded adapters ``names`` (None: all; []: the base alone), each at its
        scale, for the calls in the block; afterwards every loaded adapter is active again."""
        scales = self.__dict__.get("_lora_scales", {})
        loaded = self.loaded_adapters()
        chosen = loaded if names is None else list(names)
        unknown = sorted(set(chosen) - set(loaded))
        if unknown:
            raise ValueError(f"adapters {unknown} are not loaded (loaded: {loaded})")
        try:
            if chosen:
                self.enable_lora()
                self.set_adapters(chosen, [scales.get(n, 1.0) for n in chosen])
            elif loaded:
                self.disable_lora()
            yield self
        finally:
            if loaded:
                self.enable_lora()
                self.set_adapters(loaded, [scales.get(n, 1.0) for n in loaded])

    def _activate(self, name: str, scale: float | None) -> None:
        """Every loaded adapter active, each at its scale (``name`` at ``scale``, default 1)."""
        scales = self.__dict__.setdefault("_lora_scales", {})
        scales[name] = 1.0 if scale is None else float(scale)
        present = {n for names in self.get_list_adapters().values() for n in names}
        names = [n for n in scales if n in present]
        if names:
            self.set_adapters(names, [scales[n] for n in names])

    def unload_lora_weights(self):
        """Remove every adapter: LoRA layers and words. The pipeline is the base again."""
        for component in DENOISERS:
            model = getattr(self, component)
            if getattr(model, "peft_config", None):
                model.unload_lora()
        for component in ENCODERS:
            encoder = getattr(self, component, None)
            if isinstance(encoder, WordTextEncoder):
                encoder.remove_words()
        self.__dict__.pop("_lora_scales", None)

    def delete_adapters(self, adapter_names: list[str] | str):
        """Remove the named adapters (LoRA layers and words); the others stay."""
        names = [adapter_names] if isinstance(adapter_names, str) else list(adapter_names)
        for component in DENOISERS:
            model = getattr(self, component)
            present = [n for n in names if n in getattr(model, "peft_config", {})]
            if present:
                model.delete_adapters(present)
        for component in ENCODERS:
            encoder = getattr(self, component, None)
            if isinstance(encoder, WordTextEncoder):
                for name in names:
                    encoder.remove_words(name)
        for name in names:
            self.__dict__.get("_lora_scales", {}).pop(name, None)

    @classmethod
    def save_lora_weights(
        cls,
        save_directory: str | Path,
        content_model_lora_layers: dict | None = None,
        motion_model_lora_layers: dict | None = None,
        content_model_lora_adapter_metadata: dict | None = None,
        motion_model_lora_adapter_metadata: dict | None = None,
        weight_name: str = LORA_FILE,
    ) -> None:
        """Write LoRA layers in diffusers' layout (``<component>.<module>.lora_A.weight``)."""
        layers, metadata = {}, {}
        for component, state, meta in (
            ("content_model", content_model_lora_layers, content_model_lora_adapter_metadata),
            ("motion_model", motion_model_lora_layers, motion_model_lora_adapter_metadata),
        ):
            if state:
                layers[component], metadata[component] = state, meta
        if not layers:
            raise ValueError("no LoRA layers to save")
        cls._save_lora_weights(
            save_directory=str(save_directory),
            lora_layers=layers,
            lora_metadata=metadata,
            weight_name=weight_name,
        )


def save_words(path: str | Path, words: dict[str, dict[str, torch.Tensor]]) -> None:
    """``{encoder component: {word: (D,) vector}}`` -> ``learned_words.safetensors``."""
    flat = {
        f"{component}.{word}": vector.detach().float().cpu().contiguous()
        for component, vectors in words.items()
        for word, vector in vectors.items()
    }
    save_file(flat, str(Path(path) / WORDS_FILE))
