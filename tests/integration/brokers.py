"""Real Redis and RabbitMQ servers for the tests, each private to the test on free ports, that the
tests can stop and start again."""
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import tempfile
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


class RedisServer:
    """redis-server with an append-only file synced on every write, so a restart loses nothing."""

    def __init__(self, workdir):
        self.dir = pathlib.Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc = None
        self.start()

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--dir", str(self.dir), "--appendonly", "yes", "--appendfsync", "always",
                                      "--save", ""], stdout=open(self.dir / "redis.log", "ab"),
                                     stderr=subprocess.STDOUT)
        wait_port(self.port, proc=self.proc)

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

    def __init__(self, workdir):
        self.dir = pathlib.Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
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

    def start(self):
        self.proc = subprocess.Popen(["/usr/lib/rabbitmq/bin/rabbitmq-server"], env=self.env,
                                     stdout=open(self.dir / "server.log", "ab"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        wait_port(self.port, timeout=90, proc=self.proc)

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
