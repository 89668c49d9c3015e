"""Real object storage servers for the tests: moto's S3 server with IAM authentication (so SigV4
signatures are verified) and fake-gcs-server; plus small HTTP servers playing Google's token
endpoint, the GCE metadata server and a recording proxy."""
import base64
import http.server
import json
import os
import pathlib
import shutil
import socket
import subprocess
import threading
import time
import urllib.request

from conftest import REPO, free_port

VENV_BIN = pathlib.Path(os.sys.executable).parent


def wait_port(port, proc, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"port {port} never opened")


class MotoS3:
    """moto_server with IAM auth on after the set-up actions; a bucket `audio` and a user whose
    keys may do anything with S3."""

    def __init__(self, tmp):
        import boto3
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="4")
        self.log = open(tmp / "moto.log", "wb")
        self.proc = subprocess.Popen([str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
                                     env=env, stdout=self.log, stderr=subprocess.STDOUT)
        wait_port(self.port, self.proc)
        setup = dict(endpoint_url=self.endpoint, region_name="us-east-1",
                     aws_access_key_id="setup", aws_secret_access_key="setup")
        iam = boto3.client("iam", **setup)
        iam.create_user(UserName="sra")
        key = iam.create_access_key(UserName="sra")["AccessKey"]
        iam.put_user_policy(UserName="sra", PolicyName="s3", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
        self.key_id, self.secret = key["AccessKeyId"], key["SecretAccessKey"]
        self.client = boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                                   aws_access_key_id=self.key_id, aws_secret_access_key=self.secret)
        self.client.create_bucket(Bucket="audio")  # the 4th unauthenticated action; auth from here on

    def env(self, **extra):
        e = dict(STORAGE="s3", S3_STORAGE_BUCKET_NAME="audio", S3_STORAGE_FILE_PREFIX="uploads/",
                 AWS_ENDPOINT_URL=self.endpoint, S3_STORAGE_FORCE_PATH_STYLE="true", AWS_REGION="us-east-1",
                 AWS_ACCESS_KEY_ID=self.key_id, AWS_SECRET_ACCESS_KEY=self.secret, AWS_EC2_METADATA_DISABLED="true")
        e.update(extra)
        return e

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def fake_gcs_binary():
    for candidate in [os.environ.get("SRA_FAKE_GCS_SERVER"), REPO / ".tools" / "bin" / "fake-gcs-server",
                      shutil.which("fake-gcs-server")]:
        if candidate and pathlib.Path(candidate).exists():
            return str(candidate)
    raise RuntimeError("fake-gcs-server not found: GOBIN=.tools/bin go install "
                       "github.com/fsouza/fake-gcs-server@v1.56.1")


class FakeGcs:
    def __init__(self, tmp):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(tmp / "fake-gcs.log", "wb")
        self.proc = subprocess.Popen([fake_gcs_binary(), "-scheme", "http", "-host", "127.0.0.1",
                                      "-port", str(self.port), "-backend", "memory",
                                      "-external-url", self.url, "-public-host", f"127.0.0.1:{self.port}"],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        wait_port(self.port, self.proc)
        req = urllib.request.Request(self.url + "/storage/v1/b?project=test", method="POST",
                                     data=json.dumps({"name": "audio"}).encode(),
                                     headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req).read()

    def env(self, **extra):
        e = dict(STORAGE="gcs", GOOGLE_CLOUD_STORAGE_PROJECT_ID="test", GOOGLE_CLOUD_STORAGE_BUCKET_NAME="audio",
                 GOOGLE_CLOUD_STORAGE_FILE_PREFIX="uploads/", STORAGE_EMULATOR_HOST=self.url)
        e.update(extra)
        return e

    def client(self):
        os.environ["STORAGE_EMULATOR_HOST"] = self.url
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage
        return storage.Client(project="test", credentials=AnonymousCredentials())

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


class TinyServer:
    """An HTTP server on a free port in a thread; `handler(request_handler)` answers."""

    def __init__(self, handler):
        outer = self
        self.requests = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_any(self):
                length = int(self.headers.get("Content-Length") or 0)
                self.body = self.rfile.read(length) if length else b""
                outer.requests.append((self.command, self.path, dict(self.headers), self.body))
                handler(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_any

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()


def reply(h, status, body=b"", headers=None):
    h.send_response(status)
    for k, v in (headers or {}).items():
        h.send_header(k, v)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    if h.command != "HEAD":
        h.wfile.write(body)


def proxy_to(target):
    """A handler that forwards to `target` (fake-gcs-server), for recording what we send."""
    def handle(h):
        req = urllib.request.Request(target + h.path, data=h.body or None, method=h.command,
                                     headers={k: v for k, v in h.headers.items() if k.lower() not in ("host", "content-length")})
        try:
            with urllib.request.urlopen(req) as r:
                headers = {k: v for k, v in r.headers.items() if k.lower() in ("content-type", "location", "range")}
                if "Location" in headers:
                    headers["Location"] = headers["Location"].replace(target, f"http://127.0.0.1:{h.server.server_address[1]}")
                reply(h, r.status, r.read(), headers)
        except urllib.error.HTTPError as e:
            headers = {k: v for k, v in e.headers.items() if k.lower() in ("content-type", "range")}
            reply(h, e.code, e.read(), headers)
    return handle


def b64url_decode(part):
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
