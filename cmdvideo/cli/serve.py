"""``cmdvideo serve``: the web app (Gradio; the optional extra ``cmdvideo[app]``)."""

from __future__ import annotations

import argparse

from .common import add_compute_args, device_of


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        from .. import app
    except ImportError as err:
        raise ValueError(
            f"cmdvideo serve needs gradio ({err}): pip install 'cmdvideo[app]'"
        ) from None
    from ..pipelines.cmd import CMDPipeline

    limits = app.Limits(max_steps=args.max_steps, max_frames=args.max_frames,
                        max_upload_mb=args.max_upload_mb, concurrency=args.concurrency)  # fmt: skip
    for name in ("max_steps", "max_frames", "max_upload_mb", "concurrency"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    pipe = CMDPipeline.from_pretrained(args.model).to(device_of(args))
    blocks = app.build_app(pipe, limits, title=f"cmdvideo — {args.model}")
    print(f"cmdvideo serve: {args.model} on http://{args.host}:{args.port} "
          f"({args.concurrency} generation{'s' if args.concurrency != 1 else ''} at a time; "
          "Ctrl+C stops)", flush=True)  # fmt: skip
    app.launch(blocks, args.host, args.port, limits)
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
    p.add_argument("--model", default="moving-shapes-tiny",
                   help="pipeline folder or bundled name (default %(default)s)")  # fmt: skip
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default %(default)s: this machine only)")  # fmt: skip
    p.add_argument("--port", type=int, default=7860, help="port (default %(default)s)")
    p.add_argument("--concurrency", type=int, default=1,
                   help="generations at a time; more requests wait in the queue (default 1)")  # fmt: skip
    p.add_argument("--max-steps", type=int, default=100, help="largest steps a user may ask for")
    p.add_argument("--max-frames", type=int, default=128, help="longest video a user may ask for")
    p.add_argument("--max-upload-mb", type=int, default=20, help="largest upload in MB")
    add_compute_args(p)
    p.set_defaults(func=cmd_serve)
