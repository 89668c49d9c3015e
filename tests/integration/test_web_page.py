"""The web page in headless Chromium (Debian's), driven by playwright-core: a sync transcription,
then an async task that shows its progress before its result. Screenshots are kept in
tests/integration/artifacts/."""
import json
import pathlib
import signal
import subprocess

from conftest import AUDIO, BASE_MODEL, BINARY, base_env, words

NODE_DIR = pathlib.Path(__file__).parent / "node"
ARTIFACTS = pathlib.Path(__file__).parent / "artifacts"


def test_upload_sync_then_async_with_progress(make_server, tmp_path):
    assert BASE_MODEL.exists(), "scripts/fetch-base-model.sh assembles models/ggml-base.bin"
    assert pathlib.Path("/usr/bin/chromium").exists(), "Debian's chromium package is needed"
    workdir = tmp_path / "web"
    env = dict(MODEL="whisper", WHISPER_MODEL_PATH=BASE_MODEL, EMBEDDED_BUS_POLL_SECONDS=0.2)
    server = make_server(workdir=workdir, EMBEDDED_BUS_WORKERS=0, **env)  # async waits for a worker
    node = subprocess.Popen(["node", str(NODE_DIR / "web_page.mjs"), server.url(""), str(AUDIO / "jfk.wav"),
                             str(ARTIFACTS)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    worker = None
    try:
        line = node.stdout.readline()
        assert line.strip() == "ASYNC_PENDING", line + node.stderr.read()
        worker = subprocess.Popen([str(BINARY), "worker"], cwd=workdir, env=base_env(**env),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out, err = node.communicate(timeout=300)
    finally:
        if node.poll() is None:
            node.kill()
        if worker:
            worker.send_signal(signal.SIGTERM)
            worker.wait(30)
    assert node.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    jfk = words("And so my fellow Americans, ask not what your country can do for you, "
                "ask what you can do for your country.")
    assert "whisper-1" in summary["models"]
    assert words(summary["sync_text"]) == jfk
    assert summary["sync_rows"] and all(len(r) == 3 for r in summary["sync_rows"])
    assert summary["sync_rows"][0][0] == "0:00.00"
    assert summary["sync_status"].startswith("Done")
    assert summary["async_progress_visible"] and "PENDING" in summary["async_pending_status"]
    assert "position 1" in summary["async_pending_status"], summary["async_pending_status"]  # its place
    assert words(summary["async_text"]) == jfk and summary["async_rows"] >= 1
    assert not summary["async_progress_visible_after"]
    # The microphone path: a recording (webm/opus from MediaRecorder) is decoded and transcribed.
    assert summary["recording"].startswith("recorded")
    assert summary["record_status"].startswith("Done"), summary["record_status"]
    for shot in ("web-sync.png", "web-async-pending.png", "web-async-done.png"):
        assert (ARTIFACTS / shot).stat().st_size > 10_000


def test_async_progress_bar_partial_transcript_and_cancel(make_server, tmp_path, long_wav):
    """A minute of speech in short PocketSphinx pieces: the page's bar and partial transcript move
    while the task runs, and its Cancel button stops a second run (DELETE)."""
    server = make_server(workdir=tmp_path / "progress", POCKETSPHINX_CHUNK_SECONDS=2)
    node = subprocess.run(["node", str(NODE_DIR / "page_progress.mjs"), server.url(""), str(long_wav),
                           str(ARTIFACTS)], capture_output=True, text=True, timeout=400)
    assert node.returncode == 0, node.stderr
    summary = json.loads(node.stdout.strip().splitlines()[-1])
    running, done = summary["running"], summary["done"]
    assert running["determinate"] and 0.2 < running["value"] < 1
    assert "running" in running["status"] and running["cancelVisible"]
    assert running["rows"] >= 2 and len(words(running["transcript"])) >= 5
    # The partial transcript is the start of the final one.
    assert words(done["transcript"])[:5] == words(running["transcript"])[:5]
    assert not done["cancelVisible"]
    assert summary["cancelled_status"] == "Cancelled"
    assert "cancelled" in server.log()
    for shot in ("web-async-running.png", "web-async-cancelled.png"):
        assert (ARTIFACTS / shot).stat().st_size > 10_000
