"""The ``cmdvideo`` command: one module per verb group, each registering its subcommands.

    cmdvideo train autoencoder --config tiny --data moving-shapes --out runs/ae
    cmdvideo eval autoencoder --model runs/ae --num-videos 256 --json
    cmdvideo sample --model moving-shapes-tiny --prompt "a red circle moving left"
    cmdvideo sample --image frame.png --prompt "moving up" --num-frames 64
    cmdvideo transfer --content a.mp4 --motion b.mp4
    cmdvideo edit --video a.mp4 --prompt "a blue circle moving left"
    cmdvideo teach --data my_clips/index.jsonl --out adapters/star
    cmdvideo sample --lora adapters/star --prompt "a red star moving up"
    cmdvideo demo
    cmdvideo serve          # the web app on http://127.0.0.1:7860

User errors (a missing folder, a bad value) end in one line naming the flag and what to do, and
exit status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import logging
import sys

from ..pipelines.arguments import InvalidArgument
from . import bench, data, edit, evaluate, generate, serve, teach, train
from .common import apply_threads, flag_of

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
# packages of extras that a command may need: what to install
OPTIONAL_PACKAGES = {
    "transformers": "pip install 'cmdvideo[text]'",
    "peft": "pip install 'cmdvideo[adapters]'",
}


def _version() -> str:
    from .. import __version__

    return __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cmdvideo",
        description="Efficient video diffusion by content-frame / motion-latent decomposition (CMD).",
    )
    parser.add_argument("--version", action="version", version=f"cmdvideo {_version()}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--debug", action="store_true", help="show the Python traceback of an error"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (train, teach, data, evaluate, generate, edit, serve, bench):
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("accelerate", "diffusers", "PIL", "matplotlib", "httpx", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    ok = False
    try:
        if getattr(args, "check", None):  # generating verbs: every argument, before torch loads
            args.check(args)
        apply_threads(args)
        status = args.func(args)
        ok = True
        return status
    except InvalidArgument as err:  # a bad value of a generation argument: its flag
        if args.debug:
            raise
        print(f"error: {err.render(flag_of)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ValueError, OSError) as err:  # user errors: bad values, missing or broken files
        if args.debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except ModuleNotFoundError as err:  # an optional package (e.g. a CLIP pipeline's transformers)
        if args.debug or err.name not in OPTIONAL_PACKAGES:
            raise
        hint = OPTIONAL_PACKAGES[err.name]
        print(f"error: {err}" + ("" if hint in str(err) else f"; {hint}"), file=sys.stderr)
        return EXIT_USAGE
    finally:
        _end_processes(barrier=ok)


def _end_processes(barrier: bool) -> None:
    """Under torchrun / accelerate launch: shut the process group down before the interpreter
    exits (left to interpreter teardown, gloo's destructor can deadlock)."""
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        from ..training.loop_utils import end_process_group

        end_process_group(barrier=barrier)
