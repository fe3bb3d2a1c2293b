"""The web app (`cmdvideo serve`), as its users meet it: a real server process on a free local
port, driven through `gradio_client` (the API endpoints) and through Debian's Chromium with
Playwright (the page). Skipped with a message where gradio, Playwright or Chromium is missing;
CI installs all three (Makefile, .ci/run)."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

pytest.importorskip("gradio", reason="the app extra (gradio) is not installed")
from gradio_client import Client, handle_file  # noqa: E402

from cmdvideo.data.video_io import read_video, write_video  # noqa: E402

MODEL = "moving-shapes-tiny"
PROMPT = "a red circle moving left on a blue background"
CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or shutil.which("chromium-browser"))
SCREENSHOT = os.environ.get("CMDVIDEO_APP_SCREENSHOT")  # where to keep the page's screenshot


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = _free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cmdvideo.cli",
                "serve",
                "--model",
                MODEL,
                "--port",
                str(port),
                "--max-upload-mb",
                "20",
                "--max-frames",
                "64",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 300  # a shared 2-core CPU under training jobs: minutes to import
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                _end(proc)
                pytest.fail(f"the server did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
    yield {"url": url, "pid": proc.pid, "log": log}
    _end(proc)


def _end(proc) -> None:
    """Stop the server's whole process group: SIGTERM, then SIGKILL."""
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 30)):
        if proc.poll() is not None:
            return
        os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            pass


def _generate(client, seed=0, steps=10, frames=16, prompt=PROMPT):
    return client.predict(
        prompt, "(none)", seed, steps, 1.0, 3.0, "ddim", frames, api_name="/generate"
    )


def _alive(server) -> None:
    """The server still serves after a refused request."""
    assert urllib.request.urlopen(server["url"], timeout=10).status == 200


def test_generate_endpoint_returns_a_video_of_the_asked_length(server):
    client = Client(server["url"], verbose=False)
    mp4, still, gif, summary = _generate(client)
    assert read_video(mp4).shape[0] == 16 and read_video(gif).shape[0] == 16
    assert Path(still).is_file() and "16 frames" in summary
    # long video: clip by clip
    assert read_video(_generate(client, frames=40)[0]).shape[0] == 40


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda c: _generate(c, prompt="x" * 400), "at most 300"),
        (lambda c: _generate(c, prompt=""), "give a prompt or a class"),
    ],
)
def test_bad_requests_are_errors_and_the_server_keeps_serving(server, call, message):
    client = Client(server["url"], verbose=False)
    with pytest.raises(Exception, match=message):
        call(client)
    _alive(server)


def test_uploads_are_read_by_the_project_reader_and_bounded(server, tmp_path):
    client = Client(server["url"], verbose=False)
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    with pytest.raises(Exception, match="not a video we can read"):
        client.predict(handle_file(str(text)), handle_file(str(text)), api_name="/transfer")
    big = tmp_path / "big.mp4"
    with open(big, "wb") as f:  # 200 MB (sparse): over the 20 MB bound
        f.truncate(200 * 2**20)
    with pytest.raises(Exception):  # noqa: B017 - refused by the upload route itself (413)
        client.predict(handle_file(str(big)), handle_file(str(big)), api_name="/transfer")
    _alive(server)
    # a real transfer and an edit from generated videos
    a = read_video(_generate(client, seed=1)[0])
    b = read_video(_generate(client, seed=2, prompt="a green square moving up")[0])
    pa, pb = write_video(tmp_path / "a.mp4", a), write_video(tmp_path / "b.mp4", b)
    out = client.predict(handle_file(str(pa)), handle_file(str(pb)), api_name="/transfer")
    assert read_video(out[0]).shape[0] == 16
    out = client.predict(
        handle_file(str(pa)),
        "a blue circle moving left",
        "(none)",
        "content",
        0.6,
        0,
        10,
        1.0,
        3.0,
        "ddim",
        api_name="/edit",
    )
    assert read_video(out[0]).shape[0] == 16
    frame = tmp_path / "frame.png"
    from PIL import Image

    Image.fromarray(a[8]).save(frame)
    out = client.predict(
        handle_file(str(frame)),
        "moving up",
        "(none)",
        0.0,
        0,
        10,
        1.0,
        3.0,
        "ddim",
        api_name="/image_to_video",
    )
    assert read_video(out[0]).shape[0] == 16


def test_eight_concurrent_requests_all_complete(server, capsys):
    client = Client(server["url"], verbose=False)
    results, errors = {}, []

    def one(i):
        try:
            start = time.perf_counter()
            results[i] = (_generate(client, seed=i), time.perf_counter() - start)
        except Exception as err:  # noqa: BLE001 - collected and asserted below
            errors.append(err)

    start = time.perf_counter()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    wall = time.perf_counter() - start
    assert not errors and len(results) == 8
    assert all(read_video(r[0][0]).shape[0] == 16 for r in results.values())
    figures = {
        "requests": 8,
        "wall_s": round(wall, 2),
        "slowest_request_s": round(max(r[1] for r in results.values()), 2),
        "server_peak_rss_mib": round(_peak_rss_mib(server["pid"]), 1),
    }
    with capsys.disabled():
        print("\nconcurrent requests:", json.dumps(figures))
    assert wall < 240


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (apt-get install chromium)")
def test_the_page_in_a_real_browser(server, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    hosts = set()
    start = time.perf_counter()
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.set_default_timeout(120_000)  # a busy 2-core machine runs server and browser
        page.on("request", lambda r: hosts.add(urlparse(r.url).hostname))
        page.goto(server["url"], wait_until="domcontentloaded")
        page.get_by_label("Prompt").first.fill(PROMPT)
        page.get_by_role("button", name="Generate").first.click()
        video = page.locator("video[src]").first
        video.wait_for(timeout=120_000)
        page.wait_for_timeout(500)
        response = page.request.get(video.get_attribute("src"))
        (tmp_path / "page.mp4").write_bytes(response.body())
        shot = Path(SCREENSHOT) if SCREENSHOT else tmp_path / "app.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    seconds = time.perf_counter() - start
    assert read_video(tmp_path / "page.mp4").shape[0] == 16
    assert hosts <= {"127.0.0.1", "localhost"}, f"the page fetched from {hosts}"
    print(f"browser test: {seconds:.1f} s; screenshot {shot}")


# -- the same bounds as the command line, without a server -----------------------------------


@pytest.fixture(scope="module")
def generator():
    from cmdvideo.app import AppHandlers, Limits
    from cmdvideo.pipelines.cmd import CMDPipeline

    return AppHandlers(CMDPipeline.from_pretrained(MODEL), Limits())


@pytest.mark.parametrize(
    "request_, in_the_page, flags, on_the_command_line",
    [
        (
            dict(prompt="x" * 301),
            "Prompt has 301 characters, at most 300",
            ["--prompt", "x" * 301],
            "--prompt has 301 characters, at most 300",
        ),
        (
            dict(content_guidance=31.0),
            "Content guidance must be a number in [0, 30], got 31.0",
            ["--guidance", "31"],
            "--guidance must be a number in [0, 30], got 31.0",
        ),
        (
            dict(steps=1001),
            "Steps must be an integer in [1, 1000], got 1001",
            ["--steps", "1001"],
            "--steps must be an integer in [1, 1000], got 1001",
        ),
        (
            dict(num_frames=1025),
            "Frames must be an integer in [1, 1024], got 1025",
            ["--num-frames", "1025"],
            "--num-frames must be an integer in [1, 1024], got 1025",
        ),
        (
            dict(seed=-1.0),
            "Seed must be an integer in [0, 2147483647], got -1",
            ["--seed", "-1"],
            "--seed must be an integer in [0, 2147483647], got -1",
        ),
        (
            dict(class_label="sideways"),
            "Class: unknown class 'sideways'",
            ["--class", "sideways"],
            "--class: unknown class 'sideways'",
        ),
    ],
)
def test_the_app_and_the_command_line_refuse_the_same_values(
    generator, request_, in_the_page, flags, on_the_command_line, capsys, tmp_path
):
    """One bound per argument: the web app refuses a value under its field's name exactly when
    the command line refuses it under its flag."""
    import gradio as gr

    from cmdvideo.cli import main

    values = dict(
        prompt=PROMPT,
        class_label="(none)",
        seed=0,
        steps=10,
        content_guidance=1.0,
        motion_guidance=3.0,
        sampler="ddim",
        num_frames=16,
    )
    with pytest.raises(gr.Error) as refused:
        generator.generate(**{**values, **request_})
    assert in_the_page in refused.value.message
    assert main(["sample", "--prompt", PROMPT, *flags, "--out", str(tmp_path)]) == 2
    assert on_the_command_line in capsys.readouterr().err


def test_a_server_may_lower_the_bounds_and_says_so(generator):
    import gradio as gr

    from cmdvideo.app import AppHandlers, Limits

    strict = AppHandlers(generator.pipe, Limits(max_steps=50, max_frames=64))
    values = dict(
        prompt=PROMPT,
        class_label="(none)",
        seed=0,
        steps=51,
        content_guidance=1.0,
        motion_guidance=3.0,
        sampler="ddim",
        num_frames=16,
    )
    with pytest.raises(gr.Error, match=r"Steps must be an integer in \[1, 50\] on this server"):
        strict.generate(**values)
    with pytest.raises(gr.Error, match=r"Frames must be an integer in \[1, 64\] on this server"):
        strict.generate(**{**values, "steps": 10, "num_frames": 65})


def test_a_fully_transparent_image_is_refused_by_name(generator):
    import gradio as gr
    import numpy as np

    clear = np.zeros((16, 16, 4), np.uint8)  # what gr.Image(image_mode="RGBA") hands over
    with pytest.raises(gr.Error, match="Image: the image is fully transparent"):
        generator.image_to_video(clear, "moving up", "(none)", 0.0, 0, 2, 1.0, 3.0, "ddim")


def test_the_moving_shapes_examples_only_for_a_moving_shapes_model():
    """The page offers the embedded world's prompts as examples for a model trained on it, and
    none for a model of other data."""
    from cmdvideo.app import build_app
    from cmdvideo.data.moving_shapes import DEMO_PROMPTS
    from cmdvideo.pipelines.cmd import CMDPipeline

    pipe = CMDPipeline.from_pretrained(MODEL)
    shown = json.dumps(build_app(pipe).get_config_file())
    assert DEMO_PROMPTS[1] in shown  # ([0] is also the placeholder)
    pipe.register_to_config(training_data={"source": "my-videos"})
    assert DEMO_PROMPTS[1] not in json.dumps(build_app(pipe).get_config_file())
