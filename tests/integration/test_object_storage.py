"""S3 and Google Cloud Storage against real servers (moto's S3 with signature checks,
fake-gcs-server) and the official clients (boto3, google-cloud-storage)."""
import hashlib
import json
import sqlite3
import struct
import subprocess
import time
import uuid

import pytest
import requests

from conftest import BINARY, PS_DATA, base_env, raw_to_wav, transcribe, wait_task
from object_storage_servers import FakeGcs, MotoS3, TinyServer, b64url_decode, proxy_to, reply


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    server = MotoS3(tmp_path_factory.mktemp("moto"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gcs(tmp_path_factory):
    server = FakeGcs(tmp_path_factory.mktemp("gcs"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    return raw_to_wav(PS_DATA / "goforward.raw", tmp_path_factory.mktemp("speech") / "goforward.wav")


def storage_cli(env, *args, cwd=None):
    return subprocess.run([str(BINARY), "storage", *args], env=base_env(**env), cwd=cwd,
                          capture_output=True, timeout=120)


def random_bytes(n, seed=0):
    out = bytearray()
    block = hashlib.sha256(str(seed).encode()).digest()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block * 64
    return bytes(out[:n])


def task_count(workdir):
    db = workdir / "data" / "tasks.sqlite3"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as c:
        return c.execute("select count(*) from tasks").fetchone()[0]


# ---- S3 ----

@pytest.mark.parametrize("size", [1000, 20 * 1024 * 1024 + 5])  # one PUT; a multipart upload
def test_s3_what_we_write_boto3_reads_and_the_reverse(s3, tmp_path, size):
    data = random_bytes(size, size)
    path = tmp_path / "blob"
    path.write_bytes(data)
    r = storage_cli(s3.env(), "put", str(path))
    assert r.returncode == 0, r.stderr.decode()
    file_id = r.stdout.decode().strip()
    assert uuid.UUID(file_id)
    got = s3.client.get_object(Bucket="audio", Key=f"uploads/{file_id}")["Body"].read()
    assert got == data

    theirs = str(uuid.uuid4())
    s3.client.put_object(Bucket="audio", Key=f"uploads/{theirs}", Body=data[::-1])
    r = storage_cli(s3.env(), "get", theirs, str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr.decode()
    assert (tmp_path / "out").read_bytes() == data[::-1]

    assert storage_cli(s3.env(), "delete", file_id).returncode == 0
    with pytest.raises(s3.client.exceptions.NoSuchKey):
        s3.client.get_object(Bucket="audio", Key=f"uploads/{file_id}")


def test_s3_signatures_are_checked(s3):
    assert storage_cli(s3.env(), "check").returncode == 0
    r = storage_cli(s3.env(AWS_SECRET_ACCESS_KEY="wrong-secret"), "check")
    assert r.returncode == 1
    assert "refused the credentials (SignatureDoesNotMatch)" in r.stderr.decode()
    r = storage_cli(s3.env(AWS_ACCESS_KEY_ID="AKIAUNKNOWN"), "check")
    assert r.returncode == 1 and "refused the credentials" in r.stderr.decode()


def test_s3_credentials_from_a_profile(s3, tmp_path):
    (tmp_path / "credentials").write_text(f"[ci]\naws_access_key_id = {s3.key_id}\n"
                                          f"aws_secret_access_key = {s3.secret}\n")
    (tmp_path / "config").write_text("[profile ci]\nregion = us-east-1\n")
    env = s3.env(AWS_PROFILE="ci", AWS_SHARED_CREDENTIALS_FILE=tmp_path / "credentials",
                 AWS_CONFIG_FILE=tmp_path / "config")
    del env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
    r = storage_cli(env, "check")
    assert r.returncode == 0, r.stderr.decode()


def test_s3_credentials_from_instance_metadata_imdsv2(s3):
    token = "imds-session-token"

    def imds(h):
        if h.command == "PUT" and h.path == "/latest/api/token":
            assert h.headers["X-aws-ec2-metadata-token-ttl-seconds"]
            return reply(h, 200, token.encode())
        if h.headers.get("X-aws-ec2-metadata-token") != token:
            return reply(h, 401)
        if h.path == "/latest/meta-data/iam/security-credentials/":
            return reply(h, 200, b"worker-role")
        if h.path == "/latest/meta-data/iam/security-credentials/worker-role":
            return reply(h, 200, json.dumps({"AccessKeyId": s3.key_id, "SecretAccessKey": s3.secret, "Token": "",
                                             "Expiration": "2099-01-01T00:00:00Z"}).encode())
        reply(h, 404)

    server = TinyServer(imds)
    try:
        env = s3.env(AWS_EC2_METADATA_DISABLED="false", AWS_EC2_METADATA_SERVICE_ENDPOINT=server.url,
                     HOME="/nonexistent")
        del env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
        r = storage_cli(env, "check")
        assert r.returncode == 0, r.stderr.decode()
        assert [p for _, p, _, _ in server.requests][:3] == [
            "/latest/api/token", "/latest/meta-data/iam/security-credentials/",
            "/latest/meta-data/iam/security-credentials/worker-role"]
    finally:
        server.stop()
    env = s3.env(HOME="/nonexistent")
    del env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
    r = storage_cli(env, "check")
    assert r.returncode == 78 and "no AWS credentials" in r.stderr.decode()


def test_s3_async_flow_with_a_worker_process(s3, make_server, tmp_path, speech):
    workdir = tmp_path / "node"
    env = s3.env(EMBEDDED_BUS_POLL_SECONDS=0.1, DELETE_AUDIO_AFTER_TASK="true")
    server = make_server(workdir=workdir, EMBEDDED_BUS_WORKERS=0, **env)
    assert requests.get(server.url("/ready")).json() == {"status": "ready"}
    task = transcribe(server, speech, route="/async/v1/transcribe").json()["task_id"]
    keys = [o["Key"] for o in s3.client.list_objects_v2(Bucket="audio", Prefix="uploads/").get("Contents", [])]
    worker = subprocess.Popen([str(BINARY), "worker"], cwd=workdir, env=base_env(**env),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_task(server, task) == {"status": "SUCCESS", "transcription": "go forward ten meters"}
    finally:
        worker.terminate()
        worker.wait(30)
    after = [o["Key"] for o in s3.client.list_objects_v2(Bucket="audio", Prefix="uploads/").get("Contents", [])]
    assert len(set(keys) - set(after)) == 1  # the task's audio, deleted once done


def test_s3_failures_are_503_with_the_reason_and_leave_nothing(s3, make_server, tmp_path, speech):
    cases = {
        "down": (s3.env(AWS_ENDPOINT_URL="http://127.0.0.1:9", S3_STORAGE_MAX_ATTEMPTS=2), "failed"),
        "no bucket": (s3.env(S3_STORAGE_BUCKET_NAME="missing-bucket"), "does not exist"),
        "bad secret": (s3.env(AWS_SECRET_ACCESS_KEY="wrong"), "refused the credentials"),
    }
    before = s3.client.list_objects_v2(Bucket="audio").get("KeyCount", 0)
    for name, (env, reason) in cases.items():
        workdir = tmp_path / name.replace(" ", "-")
        server = make_server(workdir=workdir, EMBEDDED_BUS_WORKERS=0, **env)
        r = transcribe(server, speech, route="/async/v1/transcribe")
        assert r.status_code == 503, (name, r.text)
        assert reason in r.json()["detail"], (name, r.text)
        # What the operator must fix, never the bucket's name, object keys or upstream bodies.
        assert "missing-bucket" not in r.text and "uploads/" not in r.text, r.text
        assert r.headers["Retry-After"]
        ready = requests.get(server.url("/ready"))
        assert ready.status_code == 503 and reason in ready.json()["detail"], (name, ready.text)
        assert task_count(workdir) == 0, name
        assert requests.get(server.url("/health")).status_code == 200
        server.stop()
    assert s3.client.list_objects_v2(Bucket="audio").get("KeyCount", 0) == before


def test_s3_abandoned_multipart_upload_is_aborted(s3, make_server, tmp_path):
    server = make_server(workdir=tmp_path / "abort", EMBEDDED_BUS_WORKERS=0, MAX_UPLOAD_BYTES=50_000_000, **s3.env())
    junk = tmp_path / "junk.bin"
    junk.write_bytes(random_bytes(20 * 1024 * 1024, 7))  # two parts sent, then refused as not audio
    before = s3.client.list_objects_v2(Bucket="audio").get("KeyCount", 0)
    r = transcribe(server, junk, route="/async/v1/transcribe")
    assert r.status_code == 415
    assert s3.client.list_multipart_uploads(Bucket="audio").get("Uploads", []) == []
    assert s3.client.list_objects_v2(Bucket="audio").get("KeyCount", 0) == before


def wav_header(data_bytes):
    return (b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVEfmt " +
            struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16) + b"data" + struct.pack("<I", data_bytes))


def peak_rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0


@pytest.mark.parametrize("backend", ["s3", "gcs"])
def test_200_mib_upload_streams_with_bounded_memory(request, backend, make_server, tmp_path):
    store = request.getfixturevalue(backend)
    size = 200 * 1024 * 1024
    big = tmp_path / "big.wav"
    with open(big, "wb") as f:
        f.write(wav_header(size))
        chunk = random_bytes(1024 * 1024, 3)
        for _ in range(size // len(chunk)):
            f.write(chunk)
    server = make_server(workdir=tmp_path / "big", EMBEDDED_BUS_WORKERS=0, MAX_UPLOAD_BYTES=300_000_000,
                         LOG_LEVEL="warn", **store.env())
    baseline = peak_rss_mib(server.proc.pid)
    started = time.monotonic()
    with open(big, "rb") as f:
        r = requests.post(server.url("/async/v1/transcribe"), files={"file": ("big.wav", f)}, timeout=600)
    seconds = time.monotonic() - started
    assert r.status_code == 200, r.text
    peak = peak_rss_mib(server.proc.pid)
    print(f"\n{backend}: 200 MiB upload in {seconds:.1f} s; server peak RSS {peak:.0f} MiB "
          f"(before the upload {baseline:.0f} MiB)")
    assert peak - baseline < 64, f"peak RSS grew by {peak - baseline:.0f} MiB"
    file_id = None
    if backend == "s3":
        objects = store.client.list_objects_v2(Bucket="audio", Prefix="uploads/")["Contents"]
        assert any(o["Size"] == size + 44 for o in objects)
    else:
        blobs = list(store.client().list_blobs("audio", prefix="uploads/"))
        assert any(b.size == size + 44 for b in blobs)


# ---- Google Cloud Storage ----

@pytest.mark.parametrize("size", [1000, 20 * 1024 * 1024 + 5])  # one request; a resumable upload
def test_gcs_what_we_write_the_official_client_reads_and_the_reverse(gcs, tmp_path, size):
    data = random_bytes(size, size + 1)
    path = tmp_path / "blob"
    path.write_bytes(data)
    r = storage_cli(gcs.env(), "put", str(path))
    assert r.returncode == 0, r.stderr.decode()
    file_id = r.stdout.decode().strip()
    bucket = gcs.client().bucket("audio")
    assert bucket.blob(f"uploads/{file_id}").download_as_bytes() == data
    theirs = str(uuid.uuid4())
    bucket.blob(f"uploads/{theirs}").upload_from_string(data[::-1])
    r = storage_cli(gcs.env(), "get", theirs, str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr.decode()
    assert (tmp_path / "out").read_bytes() == data[::-1]
    assert storage_cli(gcs.env(), "delete", file_id).returncode == 0
    assert not bucket.blob(f"uploads/{file_id}").exists()


def test_gcs_async_flow_with_a_worker_process(gcs, make_server, tmp_path, speech):
    workdir = tmp_path / "node"
    env = gcs.env(EMBEDDED_BUS_POLL_SECONDS=0.1)
    server = make_server(workdir=workdir, EMBEDDED_BUS_WORKERS=0, **env)
    assert requests.get(server.url("/ready")).json() == {"status": "ready"}
    task = transcribe(server, speech, route="/async/v1/transcribe").json()["task_id"]
    worker = subprocess.Popen([str(BINARY), "worker"], cwd=workdir, env=base_env(**env),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_task(server, task) == {"status": "SUCCESS", "transcription": "go forward ten meters"}
    finally:
        worker.terminate()
        worker.wait(30)


def test_gcs_failures_are_503_with_the_reason(gcs, make_server, tmp_path, speech):
    for name, env, reason in [("no-bucket", gcs.env(GOOGLE_CLOUD_STORAGE_BUCKET_NAME="missing-bucket"), "does not exist"),
                              ("down", gcs.env(STORAGE_EMULATOR_HOST="http://127.0.0.1:9",
                                               GOOGLE_CLOUD_STORAGE_MAX_ATTEMPTS=2), "failed")]:
        server = make_server(workdir=tmp_path / name, EMBEDDED_BUS_WORKERS=0, **env)
        r = transcribe(server, speech, route="/async/v1/transcribe")
        assert r.status_code == 503 and reason in r.json()["detail"], (name, r.text)
        assert "missing-bucket" not in r.text and "uploads/" not in r.text, r.text
        assert requests.get(server.url("/ready")).status_code == 503
        assert task_count(tmp_path / name) == 0
        server.stop()


def test_gcs_service_account_jwt_grant(gcs, tmp_path):
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    grants = []

    def token_endpoint(h):
        form = dict(p.split("=", 1) for p in h.body.decode().split("&"))
        assert form["grant_type"] == "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"
        header, claims, signature = form["assertion"].split(".")
        key.public_key().verify(b64url_decode(signature), f"{header}.{claims}".encode(),
                                padding.PKCS1v15(), hashes.SHA256())  # raises if forged
        grants.append((json.loads(b64url_decode(header)), json.loads(b64url_decode(claims))))
        reply(h, 200, json.dumps({"access_token": "token-1", "expires_in": 3600, "token_type": "Bearer"}).encode(),
              {"Content-Type": "application/json"})

    tokens = TinyServer(token_endpoint)
    recorder = TinyServer(proxy_to(gcs.url))
    try:
        key_file = tmp_path / "sa.json"
        key_file.write_text(json.dumps({"type": "service_account", "client_email": "sra@test.iam.gserviceaccount.com",
                                        "private_key": pem, "token_uri": tokens.url + "/token"}))
        env = gcs.env(GOOGLE_APPLICATION_CREDENTIALS=key_file, GOOGLE_CLOUD_STORAGE_ENDPOINT=recorder.url)
        del env["STORAGE_EMULATOR_HOST"]
        data = tmp_path / "blob"
        data.write_bytes(b"x" * 5000)
        r = storage_cli(env, "put", str(data))
        assert r.returncode == 0, r.stderr.decode()
        r = storage_cli(env, "get", r.stdout.decode().strip(), str(tmp_path / "out"))
        assert r.returncode == 0 and (tmp_path / "out").read_bytes() == b"x" * 5000
    finally:
        tokens.stop()
        recorder.stop()
    header, claims = grants[0]
    assert header == {"alg": "RS256", "typ": "JWT"}
    assert claims["iss"] == "sra@test.iam.gserviceaccount.com" and claims["aud"] == tokens.url + "/token"
    assert claims["exp"] - claims["iat"] == 3600 and "devstorage" in claims["scope"]
    assert len(grants) == 2  # one per process: each CLI run fetched one token, then reused it
    assert all(hdrs.get("Authorization") == "Bearer token-1" for _, _, hdrs, _ in recorder.requests)
    # A key the token endpoint does not accept: the error says so.
    refuse = TinyServer(lambda h: reply(h, 400, b'{"error":"invalid_grant"}'))
    try:
        key_file.write_text(json.dumps({"type": "service_account", "client_email": "x@y", "private_key": pem,
                                        "token_uri": refuse.url + "/token"}))
        r = storage_cli(env, "check")
        assert r.returncode == 1 and "refused to issue a token" in r.stderr.decode()
    finally:
        refuse.stop()


def test_gcs_metadata_server_token(gcs, tmp_path):
    def metadata(h):
        if h.headers.get("Metadata-Flavor") != "Google":
            return reply(h, 403)
        reply(h, 200, json.dumps({"access_token": "meta-token", "expires_in": 3000}).encode(),
              {"Content-Type": "application/json"})

    meta = TinyServer(metadata)
    recorder = TinyServer(proxy_to(gcs.url))
    try:
        env = gcs.env(GCE_METADATA_HOST=f"127.0.0.1:{meta.port}", GOOGLE_CLOUD_STORAGE_ENDPOINT=recorder.url)
        del env["STORAGE_EMULATOR_HOST"]
        r = storage_cli(env, "check")
        assert r.returncode == 0, r.stderr.decode()
        assert meta.requests[0][1] == "/computeMetadata/v1/instance/service-accounts/default/token"
        assert recorder.requests[-1][2].get("Authorization") == "Bearer meta-token"
    finally:
        meta.stop()
        recorder.stop()


def test_retries_5xx_and_429_with_backoff_but_never_4xx(s3):
    answers = []

    def flaky(h):
        status = answers.pop(0) if answers else 200
        body = b"<ListBucketResult></ListBucketResult>" if status == 200 else \
            b"<Error><Code>SlowDown</Code></Error>" if status in (429, 503) else b"<Error><Code>AccessDenied</Code></Error>"
        reply(h, status, body, {"Content-Type": "application/xml"})

    server = TinyServer(flaky)
    try:
        env = s3.env(AWS_ENDPOINT_URL=server.url)
        answers[:] = [503, 429, 500]
        r = storage_cli(env, "check")
        assert r.returncode == 0, r.stderr.decode()
        assert len(server.requests) == 4
        server.requests.clear()
        answers[:] = [403]
        r = storage_cli(env, "check")
        assert r.returncode == 1 and "denied access" in r.stderr.decode()
        assert len(server.requests) == 1
        server.requests.clear()
        answers[:] = [503] * 10
        r = storage_cli(dict(env, S3_STORAGE_MAX_ATTEMPTS=3), "check")
        assert r.returncode == 1 and "HTTP 503" in r.stderr.decode()
        assert len(server.requests) == 3
    finally:
        server.stop()
