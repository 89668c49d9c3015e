"""GET /metrics: Prometheus' text format, read by Prometheus' own parser (prometheus-client), with
values that move when work is done: requests by route and status, latency histograms, jobs by
outcome, audio and inference seconds, refusals, the inference queue and the async backlog."""
import socket
import subprocess
import time

import requests
from prometheus_client.parser import text_string_to_metric_families

from conftest import BINARY, SHARED, base_env, free_port, transcribe


def scrape(server):
    return scrape_url(server.url("/metrics"))


def scrape_url(url):
    r = requests.get(url, timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    types = {}
    for family in text_string_to_metric_families(r.text):
        types[family.name] = family.type
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples, types


def value(samples, name, **labels):
    """The sample's value; None when the series is not there (never 0 by default: a missing
    series must not pass for a zero)."""
    return samples.get((name, tuple(sorted(labels.items()))))


def test_metrics_move_with_work(make_server, goforward_wav):
    server = make_server(INFERENCE_QUEUE_SIZE=0, INFERENCE_THREADS=1, EMBEDDED_BUS_WORKERS=0,
                         MAX_PENDING_TASKS=1)
    before, types = scrape(server)
    assert types["sra_http_requests"] == "counter"
    assert types["sra_http_request_duration_seconds"] == "histogram"
    assert types["sra_async_backlog_tasks"] == "gauge"
    assert value(before, "sra_inference_capacity") == 1

    assert transcribe(server, goforward_wav).status_code == 200
    assert requests.get(server.url("/async/v1/transcribe/not-a-task")).status_code == 404
    task = transcribe(server, goforward_wav, route="/async/v1/transcribe").json()["task_id"]
    assert transcribe(server, goforward_wav, route="/async/v1/transcribe").status_code == 503
    after, _ = scrape(server)

    route = "/sync/v1/transcribe"
    # The route had no request before, so it had no series.
    assert value(before, "sra_http_requests_total", route=route, status="200") is None
    assert value(after, "sra_http_requests_total", route=route, status="200") == 1
    # Ids are folded into one route label.
    assert value(after, "sra_http_requests_total", route="/async/v1/transcribe/{task_id}", status="404") == 1
    assert value(after, "sra_http_requests_total", route="/async/v1/transcribe", status="503") == 1
    assert value(after, "sra_http_request_duration_seconds_count", route=route) >= 1
    assert value(after, "sra_http_request_duration_seconds_bucket", route=route, le="+Inf") >= 1
    assert value(after, "sra_transcriptions_total", outcome="done") == 1
    assert 2.5 < value(after, "sra_audio_seconds_total") < 3.5  # goforward: about 3 s
    assert value(after, "sra_inference_seconds_total") > 0
    assert value(after, "sra_refused_total", reason="backlog") == 1
    assert value(after, "sra_async_backlog_tasks") == 1
    assert value(after, "sra_async_backlog_bytes") == goforward_wav.stat().st_size
    # Unknown paths do not make new series.
    for i in range(5):
        requests.get(server.url(f"/no/such/{i}"))
    later, _ = scrape(server)
    assert value(later, "sra_http_requests_total", route="other", status="404") == 5
    assert not [k for k in later if "/no/such" in str(k)]
    status = requests.get(server.url(f"/async/v1/transcribe/{task}")).json()
    assert status["status"] == "PENDING" and status["position"] == 1  # no worker: still waiting


def test_model_stage_times_and_load_time(make_server, goforward_wav):
    """Whisper measures its encoder and decoder; every served model reports its load time."""
    server = make_server(MODEL="whisper", SERVED_MODELS="sphinx=pocketsphinx",
                         WHISPER_MODEL_PATH=SHARED / "whisper" / "models" / "ggml-tiny-test-f16.bin")
    assert transcribe(server, goforward_wav).status_code == 200
    r = requests.post(server.url("/v1/audio/transcriptions"), data={"model": "sphinx"},
                      files={"file": ("a.wav", goforward_wav.read_bytes())}, timeout=60)
    assert r.status_code == 200, r.text
    samples, types = scrape(server)
    assert types["sra_model_stage_seconds"] == "counter"
    assert value(samples, "sra_model_stage_seconds_total", stage="encode") > 0
    assert value(samples, "sra_model_stage_seconds_total", stage="decode") > 0
    stages = value(samples, "sra_model_stage_seconds_total", stage="encode") + \
        value(samples, "sra_model_stage_seconds_total", stage="decode")
    assert stages <= value(samples, "sra_inference_seconds_total")
    assert types["sra_model_load_seconds"] == "gauge"
    assert value(samples, "sra_model_load_seconds", model="whisper") > 0
    assert value(samples, "sra_model_load_seconds", model="sphinx") > 0


def test_failed_bus_calls_are_counted(make_server):
    """A broker that is down: /ready fails and the failed calls show by part and operation."""
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
        server = make_server(MESSAGE_BUS="huey", HUEY_BUS_REDIS_HOST=f"127.0.0.1:{dead}")
        assert requests.get(server.url("/ready"), timeout=30).status_code == 503
        assert requests.get(server.url("/async/v1/transcribe/9b2f9a0e-3f5e-4a4c-8d3e-2c7d1f0b6a11"),
                            timeout=30).status_code == 503
        samples, _ = scrape(server)
    assert value(samples, "sra_part_errors_total", part="bus", operation="check_ready") >= 1
    assert value(samples, "sra_part_errors_total", part="bus", operation="get_task_result") == 1
    assert value(samples, "sra_part_errors_total", part="storage", operation="check_ready") == 0


def test_worker_serves_its_metrics(make_server, tmp_path, goforward_wav, long_wav):
    """`worker --metrics-port`: the worker's own jobs, tasks by outcome, model load time; bounded
    like the API (404, 405, garbage dropped)."""
    server = make_server(workdir=tmp_path, EMBEDDED_BUS_WORKERS=0, POCKETSPHINX_CHUNK_SECONDS=2)
    port = free_port()
    log = open(tmp_path / "worker.log", "wb")
    worker = subprocess.Popen([str(BINARY), "worker", "--metrics-port", str(port)], cwd=tmp_path,
                              env=base_env(POCKETSPHINX_CHUNK_SECONDS=2), stdout=log,
                              stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 30
        while True:
            try:
                requests.get(url + "/health", timeout=2)
                break
            except requests.ConnectionError:
                assert time.time() < deadline and worker.poll() is None, (tmp_path / "worker.log").read_text()
                time.sleep(0.1)
        done = transcribe(server, goforward_wav, route="/async/v1/transcribe").json()["task_id"]
        running = transcribe(server, long_wav, route="/async/v1/transcribe").json()["task_id"]
        deadline = time.time() + 60
        while requests.get(server.url(f"/async/v1/transcribe/{running}")).json().get("progress", 0) == 0:
            assert time.time() < deadline
            time.sleep(0.05)
        samples, types = scrape_url(url + "/metrics")
        assert value(samples, "sra_async_tasks_running", bus="embedded") == 1
        assert requests.delete(server.url(f"/async/v1/transcribe/{running}")).status_code == 202
        deadline = time.time() + 30
        while requests.get(server.url(f"/async/v1/transcribe/{running}")).json()["status"] == "PENDING":
            assert time.time() < deadline
            time.sleep(0.05)
        assert requests.get(server.url(f"/async/v1/transcribe/{done}")).json()["status"] == "SUCCESS"
        samples, types = scrape_url(url + "/metrics")
        assert types["sra_async_tasks"] == "counter"
        assert value(samples, "sra_async_tasks_total", bus="embedded", outcome="success") == 1
        assert value(samples, "sra_async_tasks_total", bus="embedded", outcome="cancelled") == 1
        assert value(samples, "sra_async_tasks_running", bus="embedded") == 0
        assert value(samples, "sra_transcriptions_total", outcome="done") == 1
        assert value(samples, "sra_audio_seconds_total") > 2.5
        assert value(samples, "sra_model_load_seconds", model="pocketsphinx") > 0
        # The API counted the submissions.
        api, _ = scrape(server)
        assert value(api, "sra_async_tasks_submitted_total", bus="embedded") == 2
        # Bounded and strict.
        assert requests.get(url + "/other", timeout=5).status_code == 404
        assert requests.post(url + "/metrics", timeout=5).status_code == 405
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n")
            s.settimeout(5)
            try:
                assert not s.recv(100).startswith(b"HTTP/1.1 200")
            except (ConnectionResetError, socket.timeout):
                pass
        assert requests.get(url + "/metrics", timeout=5).status_code == 200
    finally:
        worker.send_signal(2)
        assert worker.wait(30) == 0
