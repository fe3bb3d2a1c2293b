"""Where a model comes from: a name bundled with the package, a local folder, or a Hugging Face
Hub id — and one clear error when it cannot be loaded.

diffusers' ``from_pretrained`` treats every string that is not an existing folder as a hub id,
so a mistyped local path turns into a network request and a long traceback about DNS or repo
names. Here nothing goes to the network unless the caller asks for it (``allow_download``): a
name that is not a local folder must be an ``owner/name`` id already in the Hugging Face cache
(``huggingface-cli download owner/name`` puts it there), and every failure is one line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

# Pipelines shipped inside the package, loadable by short name wherever a folder is accepted.
ASSETS = Path(__file__).resolve().parent / "assets"
BUNDLED_PIPELINES = {"moving-shapes-tiny": ASSETS / "moving-shapes-tiny"}

_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}")


class ModelLoadError(OSError):
    """A model folder exists but its files could not be read (truncated, corrupt, mismatched)."""


def is_hub_id(name: str | Path) -> bool:
    """True when ``name`` can only mean a Hub repository (``owner/name``), not a local path."""
    text = str(name)
    if isinstance(name, Path) or not _HUB_ID.fullmatch(text) or text.endswith((".", "-")):
        return False
    owner = text.split("/", 1)[0]
    return not Path(owner).is_dir()  # "runs/pipe" with a runs/ folder here: a local path


def resolve_model_path(
    name_or_path: str | Path,
    what: str,
    marker: str | None = None,
    how_to_make: str = "",
    bundled: Mapping[str, Path] | None = None,
    bundled_hint: str = "reinstall cmdvideo",
    allow_download: bool = False,
) -> str | Path:
    """The folder (or hub id) to load ``what`` from.

    Args:
        name_or_path: a bundled short name, a local folder, or an ``owner/name`` hub id.
        what: what is loaded, for messages ("pipeline", "autoencoder", ...).
        marker: a file a valid folder holds (e.g. ``model_index.json``), checked locally.
        how_to_make: appended to "not a folder" errors (e.g. "make one with `cmdvideo ...`").
        bundled: short names shipped with the package -> their folders.
        bundled_hint: what to do when a bundled folder is missing.
        allow_download: a hub id missing from the local cache may be downloaded.

    Raises:
        FileNotFoundError: a local path that does not exist or is not a ``what`` folder.
    """
    bundled = dict(bundled or {})
    if str(name_or_path) in bundled:
        path = bundled[str(name_or_path)]
        if marker and not (path / marker).is_file():
            raise FileNotFoundError(
                f"the bundled {what} {str(name_or_path)!r} is missing from {path}: {bundled_hint}"
            )
        return path
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not path.is_dir():
            raise FileNotFoundError(f"{path} is a file; give the {what} folder")
        if marker and not (path / marker).is_file():
            raise FileNotFoundError(
                f"{path} is not a {what} folder (it has no {marker})"
                + (f"; {how_to_make}" if how_to_make else "")
            )
        return path
    names = f"; bundled: {', '.join(sorted(bundled))}" if bundled else ""
    if not is_hub_id(name_or_path):
        raise FileNotFoundError(f"no {what} folder {str(name_or_path)!r}{names}")
    if allow_download or is_cached(str(name_or_path), marker or "config.json"):
        return str(name_or_path)
    raise FileNotFoundError(
        f"no {what} folder {str(name_or_path)!r}{names}; as a Hugging Face Hub id it is not in the "
        f"local cache (cmdvideo does not download on its own: `huggingface-cli download "
        f"{name_or_path}` fetches it)"
    )


def resolve_pipeline_path(name_or_path: str | Path, allow_download: bool = False) -> str | Path:
    """A bundled pipeline's folder for its short name, a local pipeline folder, or a hub id in
    the local Hugging Face cache (any hub id with ``allow_download``).

    Raises:
        FileNotFoundError: a path that does not exist or holds no ``model_index.json``; never a
            network request unless ``allow_download``.
    """
    return resolve_model_path(
        name_or_path,
        "pipeline",
        "model_index.json",
        "make one with `cmdvideo pipeline assemble`",
        BUNDLED_PIPELINES,
        "reinstall cmdvideo, or retrain it with `make bundle`",
        allow_download,
    )


def is_cached(repo_id: str, filename: str) -> bool:
    """Whether ``filename`` of Hub repository ``repo_id`` is in the local Hugging Face cache."""
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(repo_id, filename), str)
    except ValueError:  # not a valid repo id after all
        return False


def load_pretrained(loader: Callable[..., T], name_or_path: str | Path, what: str, **kwargs) -> T:
    """``loader(name_or_path, **kwargs)`` (a ``from_pretrained``), its failures as one line.

    Raises:
        FileNotFoundError: a hub id that is neither cached nor reachable.
        ModelLoadError: a local folder whose files cannot be read.
    """
    from safetensors import SafetensorError

    try:
        return loader(name_or_path, **kwargs)
    except (OSError, ValueError, SafetensorError) as err:
        if isinstance(err, (ModelLoadError, FileNotFoundError)):
            raise  # already says what is missing
        reason = _first_line(err)
        if isinstance(name_or_path, str) and is_hub_id(name_or_path):
            raise FileNotFoundError(
                f"{name_or_path!r} is not a local folder, and the Hugging Face Hub could not "
                f"provide the {what} ({reason}); check the name, or download it where there is "
                "a network and pass the folder"
            ) from err
        raise ModelLoadError(
            f"could not load the {what} in {name_or_path}: {reason} (a weights file may be "
            "truncated or corrupt: copy or export the folder again)"
        ) from err


def _first_line(err: BaseException, limit: int = 240) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
