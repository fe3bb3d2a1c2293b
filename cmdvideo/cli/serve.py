"""``cmdvideo serve``: the web app (Gradio; the optional extra ``cmdvideo[app]``)."""

from __future__ import annotations

import argparse

from .common import add_compute_args, add_lora_arg, device_of


def check_port(host: str, port: int) -> None:
    """Refuse a --port another program listens on (or one this user may not open) and a --host
    that is not an address here, before anything loads: bind it once, as the server will (with
    SO_REUSEADDR, so a port only in TIME_WAIT counts as free)."""
    import errno
    import socket

    if not 1 <= port <= 65535:
        raise ValueError(f"--port must be an integer in [1, 65535], got {port}")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as err:
        raise ValueError(f"--host {host}: not an address of this machine ({err})") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise ValueError(
                    f"--port {port}: {host}:{port} is already in use by another "
                    "program; stop it or choose another --port"
                ) from None
            if err.errno == errno.EACCES:
                raise ValueError(
                    f"--port {port}: not allowed here (ports below 1024 need "
                    "privileges); choose another --port"
                ) from None
            raise ValueError(f"--host {host} --port {port}: cannot listen there ({err})") from None


def check_serve(args: argparse.Namespace) -> None:
    from ..pipelines.arguments import MAX_FRAMES, PipelineSpec

    for name in ("max_upload_mb", "concurrency"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    spec = PipelineSpec.from_folder(args.model)  # a missing or broken folder: before anything
    for name, bound in (
        ("max_steps", spec.max_steps if spec else None),
        ("max_frames", MAX_FRAMES),
    ):
        value = getattr(args, name)
        if value is not None and (value < 1 or (bound is not None and value > bound)):
            flag = f"--{name.replace('_', '-')}"
            raise ValueError(
                f"{flag} lowers the bound every front end shares: give an integer "
                f"in [1, {bound}], got {value}"
            )
    check_port(args.host, args.port)


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        from .. import app
    except ImportError as err:
        raise ValueError(
            f"cmdvideo serve needs gradio ({err}): pip install 'cmdvideo[app]'"
        ) from None
    from ..pipelines.cmd import CMDPipeline

    limits = app.Limits(
        max_steps=args.max_steps,
        max_frames=args.max_frames,
        max_upload_mb=args.max_upload_mb,
        concurrency=args.concurrency,
    )
    pipe = CMDPipeline.from_pretrained(args.model).to(device_of(args))
    for path, scale in args.lora:  # chosen per request in the page
        pipe.load_lora_weights(path, scale=scale)
    pipe.set_threads(args.threads)
    blocks = app.build_app(pipe, limits, title=f"cmdvideo — {args.model}")
    try:
        app.launch(blocks, args.host, args.port, limits, block=False)
    except OSError as err:  # taken since check_port looked
        raise ValueError(f"--port {args.port}: {err}") from None
    print(
        f"cmdvideo serve: {args.model} on http://{args.host}:{args.port} "
        f"({args.concurrency} generation{'s' if args.concurrency != 1 else ''} at a time; "
        "Ctrl+C stops)",
        flush=True,
    )
    blocks.block_thread()
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="web app: every generation feature in the browser (Gradio; pip install "
        "'cmdvideo[app]')",
        description="Start a Gradio app over a pipeline: text/class to video, image to video, "
        "motion transfer, editing, long videos; each also an API endpoint (/generate, "
        "/image_to_video, /transfer, /edit, /long_video) for gradio_client. Offline: no "
        "analytics, no share link.",
    )
    p.add_argument(
        "--model",
        default="moving-shapes-tiny",
        help="pipeline folder or bundled name (default %(default)s)",
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default %(default)s: this machine only)",
    )
    p.add_argument("--port", type=int, default=7860, help="port (default %(default)s)")
    p.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="generations at a time; more requests wait in the queue (default 1)",
    )
    p.add_argument(
        "--max-steps",
        type=int,
        default=None,
        help="lower the steps a user may ask for (default: the bound every front end "
        "shares, the noise schedule's length)",
    )
    p.add_argument(
        "--max-frames",
        type=int,
        default=None,
        help="lower the frames a user may ask for (default: the shared bound, 1024)",
    )
    p.add_argument("--max-upload-mb", type=int, default=20, help="largest upload in MB")
    add_lora_arg(p)
    add_compute_args(p)
    p.set_defaults(func=cmd_serve, check=check_serve)
