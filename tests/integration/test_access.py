"""API keys and CORS: with API_KEY set, every route but /health, /ready, /metrics and the static
documents needs `Authorization: Bearer <key>` (401 in each route's shape otherwise; OpenAI's SDK
with and without the key); keys never reach the logs; the rate limiter counts per key; a page of
another origin calls the API from Chromium only when CORS_ALLOW_ORIGINS allows it."""
import json
import pathlib
import subprocess

import openai
import pytest
import requests

from conftest import transcribe

NODE_DIR = pathlib.Path(__file__).parent / "node"
KEYS = "sk-first-4b1d9e, sk-second-77c0aa"


def test_routes_need_a_key(make_server, goforward_wav):
    server = make_server(API_KEY=KEYS, EMBEDDED_BUS_WORKERS=0)
    r = transcribe(server, goforward_wav)
    assert r.status_code == 401 and "API_KEY" in r.json()["detail"]
    assert r.headers["WWW-Authenticate"] == "Bearer"
    wrong = {"Authorization": "Bearer sk-first-4b1d9"}  # a prefix of a key is not a key
    assert requests.get(server.url("/async/v1/transcribe/x"), headers=wrong).status_code == 401
    good = {"Authorization": "Bearer sk-second-77c0aa"}
    with open(goforward_wav, "rb") as f:
        r = requests.post(server.url("/sync/v1/transcribe"), files={"file": f}, headers=good)
    assert r.status_code == 200 and r.json()["transcription"] == "go forward ten meters"
    for open_path in ["/health", "/ready", "/metrics", "/", "/openapi.json"]:
        assert requests.get(server.url(open_path)).status_code == 200, open_path

    with pytest.raises(openai.AuthenticationError) as e:
        openai.OpenAI(base_url=server.url("/v1"), api_key="sk-nope", max_retries=0).models.list()
    assert e.value.status_code == 401 and e.value.code == "invalid_api_key"
    client = openai.OpenAI(base_url=server.url("/v1"), api_key="sk-first-4b1d9e", max_retries=0)
    assert "whisper-1" in [m.id for m in client.models.list()]
    with open(goforward_wav, "rb") as f:
        assert client.audio.transcriptions.create(model="whisper-1", file=f).text == "go forward ten meters"
    log = server.log()
    assert "sk-first" not in log and "sk-second" not in log and "sk-nope" not in log


def test_keys_from_a_file_and_rate_limits_per_key(make_server, tmp_path, goforward_wav):
    keys = tmp_path / "keys"
    keys.write_text("# team A\nsk-a-111\n\nsk-b-222\n")
    server = make_server(API_KEY_FILE=keys, RATE_LIMIT_REQUESTS_PER_MINUTE=1, EMBEDDED_BUS_WORKERS=0)
    post = lambda key: transcribe(server, goforward_wav, route="/async/v1/transcribe",
                                  headers={"Authorization": f"Bearer {key}"})
    assert post("sk-a-111").status_code == 200
    assert post("sk-a-111").status_code == 429  # key A used its minute
    assert post("sk-b-222").status_code == 200  # key B, same address, has its own
    assert post("sk-c-333").status_code == 401


def test_unreadable_key_file_stops_the_server(make_server, tmp_path):
    server = make_server(start=False, API_KEY_FILE=tmp_path / "missing")
    with pytest.raises(RuntimeError) as e:
        server.start()
    assert "API_KEY_FILE" in str(e.value)


def cors_fetch(page_server, api_url, key):
    out = subprocess.run(["node", str(NODE_DIR / "cors.mjs"), page_server.url("/"), api_url, key],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_page_of_another_origin_in_chromium(make_server):
    page = make_server()  # serves the page whose origin calls the API
    origin = f"http://127.0.0.1:{page.port}"
    api = make_server(API_KEY="sk-cors-5150", CORS_ALLOW_ORIGINS=f"https://example.org, {origin}")
    result = cors_fetch(page, api.url("/v1/models"), "sk-cors-5150")
    assert result.get("status") == 200, result
    assert "whisper-1" in [m["id"] for m in result["body"]["data"]]
    # The key is checked after the preflight, and the page can read the 401.
    assert cors_fetch(page, api.url("/v1/models"), "sk-wrong")["status"] == 401
    # The preflight as the browser sends it.
    r = requests.options(api.url("/v1/audio/transcriptions"),
                         headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                                  "Access-Control-Request-Headers": "authorization,content-type"})
    assert r.status_code == 204 and r.headers["Access-Control-Allow-Origin"] == origin
    assert "Authorization" in r.headers["Access-Control-Allow-Headers"]
    # An origin that is not allowed: its preflight gets 403 in the route's error shape, with no
    # Access-Control-Allow-Origin, so the browser refuses to hand the answer to the page.
    for path, shape in (("/v1/audio/transcriptions", "openai"), ("/sync/v1/transcribe", "detail")):
        r = requests.options(api.url(path),
                             headers={"Origin": "https://evil.example",
                                      "Access-Control-Request-Method": "POST"})
        assert r.status_code == 403, (path, r.text)
        assert "Access-Control-Allow-Origin" not in r.headers
        body = r.json()
        if shape == "openai":
            assert body["error"]["type"] == "invalid_request_error", body
            assert "CORS_ALLOW_ORIGINS" in body["error"]["message"]
        else:
            assert "CORS_ALLOW_ORIGINS" in body["detail"], body
    closed = make_server(API_KEY="sk-cors-5150")
    assert "error" in cors_fetch(page, closed.url("/v1/models"), "sk-cors-5150")


def test_the_web_page_sends_the_key(make_server):
    server = make_server(API_KEY="sk-page-2718")
    out = subprocess.run(["node", str(NODE_DIR / "page_key.mjs"), server.url(""), "sk-page-2718"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["before"] == 0 and "whisper-1" in result["after"]
