"""The OpenAPI document is true: every route in it exists, every route the server has is in it,
and schemathesis finds no 5xx and no response outside the schema."""
import json
import pathlib
import subprocess
import sys

import pytest
import requests

from conftest import SHARED, Server, base_env

ROUTES_OF_THE_SERVER = {
    ("get", "/health"), ("get", "/ready"), ("get", "/metrics"), ("post", "/sync/v1/transcribe"), ("post", "/async/v1/transcribe"),
    ("get", "/async/v1/transcribe/{task_id}"), ("delete", "/async/v1/transcribe/{task_id}"),
    ("post", "/v1/audio/transcriptions"),
    ("post", "/v1/audio/translations"), ("post", "/v1/audio/language"), ("post", "/v1/audio/diarization"),
    ("get", "/v1/realtime"),
    ("get", "/v1/models"), ("get", "/v1/models/{model}"), ("post", "/v1/listen"), ("get", "/v1/listen"),
    ("get", "/openapi.json"), ("get", "/docs"), ("get", "/"),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("openapi"),
               base_env(MODEL="whisper", LOG_LEVEL="warn",
                        WHISPER_MODEL_PATH=SHARED / "whisper" / "models" / "ggml-tiny-test-f16.bin",
                        MAX_UPLOAD_BYTES=1_000_000, INFERENCE_QUEUE_SIZE=256)).start()
    yield s
    s.stop()


def test_document_lists_exactly_the_routes(server):
    spec = requests.get(server.url("/openapi.json")).json()
    assert spec["openapi"].startswith("3.1")
    documented = {(m, p) for p, ops in spec["paths"].items() for m in ops}
    assert documented == ROUTES_OF_THE_SERVER
    # Each documented route answers (not "no such route"), with a documented status.
    for method, path in sorted(documented):
        concrete = path.replace("{task_id}", "00000000-0000-4000-8000-000000000000").replace("{model}", "whisper-1")
        r = requests.request(method.upper(), server.url(concrete), timeout=30)
        statuses = spec["paths"][path][method]["responses"]
        assert str(r.status_code) in statuses, (method, path, r.status_code, r.text[:200])
    # Routes not documented do not exist.
    assert requests.get(server.url("/admin")).status_code == 404
    assert requests.get(server.url("/v1/audio/speech")).status_code == 404


def test_swagger_ui_is_served(server):
    page = requests.get(server.url("/docs"))
    assert page.status_code == 200 and "swagger-ui-bundle.js" in page.text
    bundle = requests.get(server.url("/docs/swagger-ui-bundle.js"))
    assert bundle.status_code == 200, bundle.text[:200]
    assert bundle.headers["Content-Type"] == "application/javascript" and len(bundle.content) > 100_000
    assert requests.get(server.url("/docs/../../etc/passwd")).status_code == 404
    assert requests.get(server.url("/docs/package.json")).status_code == 404


def test_schemathesis_finds_no_server_error_and_no_schema_violation(server, tmp_path):
    report = tmp_path / "junit.xml"
    cmd = [str(pathlib.Path(sys.executable).parent / "schemathesis"), "run", server.url("/openapi.json"),
           "--url", server.url(""),
           "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
                       "response_schema_conformance,response_headers_conformance",
           "--phases", "examples,coverage,fuzzing",
           "--max-examples", "25", "--workers", "2", "--seed", "1",
           "--report", "junit", "--report-junit-path", str(report)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    print(r.stdout[-4000:])
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]


def test_option_table_drives_readme_and_document(server):
    """The configuration document's tables (settings, Whisper options, VAD options, subtitle
    fields) and the OpenAPI document's form fields are generated from the tables in the code:
    equal to what `speech-recognition-api options` prints."""
    from conftest import BINARY, REPO
    table = subprocess.run([str(BINARY), "options"], capture_output=True, text=True, check=True).stdout
    readme = (REPO / "docs" / "configuration.md").read_text() + (REPO / "docs" / "api.md").read_text()
    settings = subprocess.run([str(BINARY), "options", "--settings"], capture_output=True, text=True,
                              check=True).stdout
    begin = readme.index("\n", readme.index("<!-- settings:begin")) + 1
    end = readme.index("<!-- settings:end -->")
    assert readme[begin:end] == settings, "docs out of date: paste `speech-recognition-api options --settings`"
    begin = readme.index("<!-- options:begin")
    begin = readme.index("\n", begin) + 1
    end = readme.index("<!-- options:end -->")
    assert readme[begin:end] == table, "docs out of date: paste `speech-recognition-api options`"
    subtitles = subprocess.run([str(BINARY), "options", "--subtitles"], capture_output=True, text=True,
                               check=True).stdout
    begin = readme.index("\n", readme.index("<!-- subtitle-options:begin")) + 1
    end = readme.index("<!-- subtitle-options:end -->")
    assert readme[begin:end] == subtitles, "docs out of date: paste `speech-recognition-api options --subtitles`"
    spec = requests.get(server.url("/openapi.json")).json()
    assert spec == json.loads(subprocess.run([str(BINARY), "options", "--openapi"], capture_output=True,
                                             text=True, check=True).stdout)
    seed = spec["components"]["schemas"]["SeedUpload"]["properties"]
    openai = spec["components"]["schemas"]["TranscriptionRequest"]["properties"]
    for row in table.splitlines()[2:]:
        field = row.split("(field `")[1].split("`")[0]
        assert field in seed and field in openai, field
    beam = seed["beam_size"]["anyOf"][0]
    assert (beam["type"], beam["minimum"], beam["maximum"]) == ("integer", 1, 10)
    assert seed["max_initial_timestamp"]["anyOf"][0]["maximum"] == 30
    assert "6 comma-separated" in seed["temperature"]["description"]
    vad = subprocess.run([str(BINARY), "options", "--vad"], capture_output=True, text=True, check=True).stdout
    begin = readme.index("\n", readme.index("<!-- vad-options:begin")) + 1
    end = readme.index("<!-- vad-options:end -->")
    assert readme[begin:end] == vad, "docs out of date: paste `speech-recognition-api options --vad`"
    for row in vad.splitlines()[2:]:
        field = row.split("(field `")[1].split("`")[0]
        assert field in seed and field in openai, field
    for row in subtitles.splitlines()[2:]:
        field = row.split("`")[1]
        assert field in openai and field not in seed, field
    # OpenAI's own definition of its fields is kept.
    assert openai["temperature"]["type"] == "number"
