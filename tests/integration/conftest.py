"""Integration tests: the real binary, started on a free port, spoken to over HTTP."""
import os
import pathlib
import signal
import socket
import subprocess
import time
import wave

import pytest
import requests

REPO = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("SRA_BUILD_DIR", REPO / "build"))
BINARY = BUILD / "app" / "speech-recognition-api"
PLUGIN = BUILD / "examples" / "plugin-model" / "libsra_vad_model.so"
SHARED = pathlib.Path(os.environ.get("SRA_SHARED_DIR", REPO.parent / "shared"))
AUDIO = SHARED / "audio"
PS_DATA = pathlib.Path("/usr/share/pocketsphinx/test/data")
BASE_MODEL = REPO / "models" / "ggml-base.bin"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env(**extra):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root"),
           "LOG_LEVEL": "info"}
    # The sanitizer builds' settings (scripts/sanitize.sh) reach the server too.
    env.update({k: v for k, v in os.environ.items() if k.endswith("SAN_OPTIONS")})
    env.update({k: str(v) for k, v in extra.items()})
    return env


class Server:
    """One `speech-recognition-api serve` process in its own working directory."""

    def __init__(self, workdir, env, port=None):
        self.workdir = pathlib.Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.env = env
        self.port = port or free_port()
        self.proc = None
        self.log_path = self.workdir / f"server-{self.port}.log"

    def start(self, wait=True):
        self.log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen([str(BINARY), "serve", "--port", str(self.port)],
                                     cwd=self.workdir, env=self.env, stdout=self.log_file,
                                     stderr=subprocess.STDOUT)
        if wait:
            self.wait_healthy()
        return self

    def wait_healthy(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if requests.get(self.url("/health"), timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server not healthy after {timeout} s:\n{self.log()}")

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout=60):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise
        return self.proc.returncode

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


@pytest.fixture
def make_server(tmp_path):
    servers = []

    def make(workdir=None, start=True, **env):
        server = Server(workdir or tmp_path / f"srv{len(servers)}", base_env(**env))
        servers.append(server)
        return server.start() if start else server

    yield make
    for s in servers:
        try:
            s.stop(timeout=30)
        except Exception:
            pass


@pytest.fixture
def server(make_server):
    return make_server()


def raw_to_wav(raw_path, wav_path, rate=16000):
    data = pathlib.Path(raw_path).read_bytes()
    with wave.open(str(wav_path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(data)
    return wav_path


def concat_wavs(paths, out_path):
    frames = b""
    for p in paths:
        with wave.open(str(p)) as w:
            assert w.getframerate() == 16000 and w.getnchannels() == 1
            frames += w.readframes(w.getnframes())
    with wave.open(str(out_path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(frames)
    return out_path


@pytest.fixture(scope="session")
def goforward_wav(tmp_path_factory):
    return raw_to_wav(PS_DATA / "goforward.raw", tmp_path_factory.mktemp("audio") / "goforward.wav")


@pytest.fixture(scope="session")
def long_wav(tmp_path_factory):
    """About a minute of real speech: PocketSphinx takes seconds on it."""
    clips = sorted((PS_DATA / "librivox").glob("*.wav"))
    return concat_wavs(clips + [AUDIO / "seed-audio.wav"] + clips,
                       tmp_path_factory.mktemp("audio") / "long.wav")


def words(text):
    import re
    return re.findall(r"[a-z0-9']+", text.lower())


def word_error_rate(reference, hypothesis):
    r, h = words(reference), words(hypothesis)
    prev = list(range(len(h) + 1))
    for i in range(1, len(r) + 1):
        cur = [i] + [0] * len(h)
        for j in range(1, len(h) + 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r[i - 1] != h[j - 1]))
        prev = cur
    return prev[len(h)], len(r)


def wait_until(condition, timeout=60, what="the condition"):
    """Polls `condition` until it returns a true value (which is returned), failing after
    `timeout` seconds: the way tests wait for another process's state, never a bare sleep."""
    deadline = time.time() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.05)


def metric(server, name):
    """The value of the /metrics series `name` (with its labels, as the text writes them), or
    None when the series is not there."""
    for line in requests.get(server.url("/metrics"), timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


def transcribe(server, path, route="/sync/v1/transcribe", **kw):
    with open(path, "rb") as f:
        return requests.post(server.url(route), files={"file": (pathlib.Path(path).name, f)},
                             timeout=kw.pop("timeout", 120), **kw)


def wait_task(server, task_id, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = requests.get(server.url(f"/async/v1/transcribe/{task_id}"), timeout=10)
        assert r.status_code == 200, r.text
        body = r.json()
        if body["status"] != "PENDING":
            return body
        time.sleep(0.1)
    raise AssertionError(f"task {task_id} still PENDING after {timeout} s")


def file_sha256(path):
    """The SHA-256 of a file, read a MiB at a time."""
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def report_fields(text):
    """What a benchmark report says, without its figures: its headings, the header rows of its
    tables and the labels of its data lines ("- label: value; label: value"), every number
    replaced by #. Commentary is not a field: lines that start "- **", and everything after a
    heading that says "(by hand)". A committed report must have the fields its script writes."""
    import re
    number = re.compile(r"\d+(?:\.\d+)?")
    lines = text.splitlines()
    fields = set()
    for i, line in enumerate(lines):
        if line.startswith("#") and "(by hand)" in line:
            break
        if line.startswith("#"):
            fields.add(number.sub("#", line))
        elif line.startswith("|") and i + 1 < len(lines) and lines[i + 1].startswith("|---"):
            fields.add(number.sub("#", line))
        elif re.match(r"- [A-Za-z/][^:;*]*?:", line):
            for label in re.findall(r"(?:^- |; )([A-Za-z/][^:;]*?):", line):
                fields.add("- " + number.sub("#", label))
    return fields


def assert_report_fields_match(committed, smoke_report, full_only=()):
    """The committed report (a path) has the fields of what its script just wrote in its smoke
    run, and no others but `full_only` (fields only a full run writes, such as a table per
    model)."""
    have = report_fields(pathlib.Path(committed).read_text())
    want = report_fields(smoke_report)
    assert want - have == set(), f"{committed} lacks what its script writes: {sorted(want - have)}"
    stale = have - want - set(full_only)
    assert stale == set(), f"{committed} has what its script no longer writes: {sorted(stale)}"


def run_benchmark_smoke(script, out, timeout=1500):
    """Runs bench/<script> --smoke --out OUT and returns the report it wrote."""
    import sys
    r = subprocess.run([sys.executable, str(REPO / "bench" / script), "--smoke", "--out", str(out)],
                       capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return out.read_text()
