"""GET /metrics: Prometheus' text format, read by Prometheus' own parser (prometheus-client), with
values that move when work is done: requests by route and status, latency histograms, jobs by
outcome, audio and inference seconds, refusals, the inference queue and the async backlog."""
import requests
from prometheus_client.parser import text_string_to_metric_families

from conftest import transcribe


def scrape(server):
    r = requests.get(server.url("/metrics"), timeout=10)
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
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


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
    assert value(after, "sra_http_requests_total", route=route, status="200") == \
        value(before, "sra_http_requests_total", route=route, status="200") + 1
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
