"""Real Redis and RabbitMQ servers for the tests, each private to the test on free ports, that the
tests can stop and start again."""
import os
import pathlib
import signal
import socket
import subprocess
import time

from conftest import free_port


def wait_port(port, timeout=60, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"port {port} never opened")


class Certificates:
    """A private CA and a server certificate for 127.0.0.1 and localhost it signed, made with the
    openssl command; plus a certificate of another CA, that a verifying client must refuse."""

    def __init__(self, workdir):
        self.dir = pathlib.Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ca, self.ca_key = self.dir / "ca.pem", self.dir / "ca.key"
        self.cert, self.key = self.dir / "server.pem", self.dir / "server.key"
        self.other_ca = self.dir / "other-ca.pem"

        def run(*args):
            subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=self.dir)

        run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=sra test CA",
            "-keyout", str(self.ca_key), "-out", str(self.ca))
        run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=other CA",
            "-keyout", str(self.dir / "other-ca.key"), "-out", str(self.other_ca))
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", str(self.key),
            "-out", str(self.dir / "server.csr"))
        (self.dir / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        run("x509", "-req", "-in", str(self.dir / "server.csr"), "-CA", str(self.ca), "-CAkey", str(self.ca_key),
            "-CAcreateserial", "-days", "2", "-extfile", str(self.dir / "san.ext"), "-out", str(self.cert))
        for path in (self.key, self.ca_key):
            path.chmod(0o644)  # RabbitMQ runs as this user and must read them


class RedisServer:
    """redis-server with an append-only file synced on every write, so a restart loses nothing;
    with `certificates`, also a TLS port (clients are not asked for certificates)."""

    def __init__(self, workdir, certificates=None):
        self.dir = pathlib.Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.certificates = certificates
        self.tls_port = free_port() if certificates else None
        self.proc = None
        self.start()

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def tls_url(self, db=0, ca=None):
        """rediss:// as redis-py and Celery spell it, verifying against `ca` (default: the test CA)."""
        ca = ca or self.certificates.ca
        return f"rediss://127.0.0.1:{self.tls_port}/{db}?ssl_cert_reqs=required&ssl_ca_certs={ca}"

    def start(self):
        tls = []
        if self.certificates:
            c = self.certificates
            tls = ["--tls-port", str(self.tls_port), "--tls-cert-file", str(c.cert), "--tls-key-file", str(c.key),
                   "--tls-ca-cert-file", str(c.ca), "--tls-auth-clients", "no"]
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--dir", str(self.dir), "--appendonly", "yes", "--appendfsync", "always",
                                      "--save", "", *tls], stdout=open(self.dir / "redis.log", "ab"),
                                     stderr=subprocess.STDOUT)
        wait_port(self.port, proc=self.proc)
        if self.tls_port:
            wait_port(self.tls_port, proc=self.proc)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)

    def restart(self, down_seconds=2):
        self.stop()
        time.sleep(down_seconds)
        self.start()


class RabbitServer:
    """A private RabbitMQ node (its own name, ports, data and cookie), run as this user."""

    def __init__(self, workdir, certificates=None):
        self.dir = pathlib.Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.certificates = certificates
        self.tls_port = free_port() if certificates else None
        if certificates:  # an AMQPS listener beside the plain one
            c = certificates
            (self.dir / "rabbitmq.conf").write_text(
                f"listeners.ssl.default = {self.tls_port}\n"
                f"ssl_options.cacertfile = {c.ca}\nssl_options.certfile = {c.cert}\n"
                f"ssl_options.keyfile = {c.key}\nssl_options.verify = verify_none\n"
                "ssl_options.fail_if_no_peer_cert = false\n")
        self.dist_port = free_port()
        self.node = f"sra{self.port}@localhost"
        (self.dir / "enabled_plugins").write_text("[].")
        self.env = dict(os.environ, HOME=str(self.dir), RABBITMQ_NODENAME=self.node,
                        RABBITMQ_NODE_PORT=str(self.port), RABBITMQ_DIST_PORT=str(self.dist_port),
                        RABBITMQ_MNESIA_BASE=str(self.dir / "mnesia"), RABBITMQ_LOG_BASE=str(self.dir / "log"),
                        RABBITMQ_PID_FILE=str(self.dir / "pid"),
                        RABBITMQ_ENABLED_PLUGINS_FILE=str(self.dir / "enabled_plugins"),
                        RABBITMQ_CONFIG_FILE=str(self.dir / "rabbitmq"))
        self.proc = None
        self.start()

    @property
    def url(self):
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def tls_url(self, ca=None):
        ca = ca or self.certificates.ca
        return f"amqps://guest:guest@127.0.0.1:{self.tls_port}//?ssl_cert_reqs=required&ssl_ca_certs={ca}"

    def start(self):
        self.proc = subprocess.Popen(["/usr/lib/rabbitmq/bin/rabbitmq-server"], env=self.env,
                                     stdout=open(self.dir / "server.log", "ab"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        wait_port(self.port, timeout=90, proc=self.proc)
        if self.tls_port:
            wait_port(self.tls_port, timeout=60, proc=self.proc)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            subprocess.run(["/usr/lib/rabbitmq/bin/rabbitmqctl", "-n", self.node, "stop"], env=self.env,
                           capture_output=True, timeout=60)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def restart(self, down_seconds=2):
        self.stop()
        time.sleep(down_seconds)
        self.start()
