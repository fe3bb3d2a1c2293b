"""transformers is an extra (`cmdvideo[text]`): generating with built-in text encoders works
without it and never imports it; what needs it says how to install it."""

import sys
import textwrap
from pathlib import Path

import pytest
import transformers
from conftest import run_isolated

ROOT = Path(__file__).resolve().parents[2]

WITHOUT_TRANSFORMERS = textwrap.dedent(
    """
    import sys
    sys.path[:0] = [sys.argv[1], sys.argv[2]]  # the repository, site-packages less transformers
    from cmdvideo.cli import main

    out = sys.argv[3]
    assert main(["sample", "--model", "moving-shapes-tiny", "--prompt", "a red circle moving left",
                 "--steps", "2", "--out", out, "--threads", "1", "--quiet"]) == 0
    print("imported:", "transformers" in sys.modules)
    from cmdvideo.models.text import load_text_encoder
    try:
        load_text_encoder(out)
    except ModuleNotFoundError as err:
        print("error:", err)
    print("status:", main(["eval", "clipsim", "--videos", out, "--clip", out]))
    """
)


@pytest.mark.slow
def test_generating_needs_no_transformers(tmp_path):
    site = Path(transformers.__file__).resolve().parents[1]
    lean = tmp_path / "site-packages"
    lean.mkdir()
    for entry in site.iterdir():  # peft (`cmdvideo[adapters]`) needs transformers: gone with it
        if not entry.name.startswith(("transformers", "peft", "__editable__")):
            (lean / entry.name).symlink_to(entry)
    argv = [
        sys.executable,
        "-S",
        "-c",
        WITHOUT_TRANSFORMERS,
        str(ROOT),
        str(lean),
        str(tmp_path / "out"),
    ]
    proc = run_isolated(argv, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "out" / "video-000.mp4").is_file()
    assert "imported: False" in proc.stdout
    assert "needs the transformers package: pip install 'cmdvideo[text]'" in proc.stdout
    assert "status: 2" in proc.stdout
    assert "CLIPSIM (a CLIP model) needs the transformers package" in proc.stderr
