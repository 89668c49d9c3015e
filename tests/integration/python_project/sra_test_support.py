"""Loaded into the Python speech-recognition-api project's processes (its API and its
huey_consumer) by tests/integration/test_python_project_huey.py.

The project reads only a host for its Huey bus (HUEY_BUS_REDIS_HOST) and builds
RedisHuey(name=HUEY_BUS_NAME, host=...) on Redis's default port, without TLS. The tests' Redis
listens on a free port (TEST_REDIS_PORT) and, in the TLS test, speaks TLS there (TEST_REDIS_TLS_CA):
this module points the project's own `huey` object at it, the way a deployment would configure
redis-py. Nothing else of the project changes: its HueyMessageBus, its task and its worker code run
as published.
"""
import os

import redis
from huey.storage import RedisStorage

import speech_recognition_api.extra.huey_bus.huey_bus as project_bus
from speech_recognition_api.extra.huey_bus.config import huey_bus_config

_connection = dict(host=huey_bus_config.redis_host, port=int(os.environ["TEST_REDIS_PORT"]))
if os.environ.get("TEST_REDIS_TLS_CA"):
    _connection.update(connection_class=redis.SSLConnection, ssl_ca_certs=os.environ["TEST_REDIS_TLS_CA"],
                       ssl_cert_reqs="required")
project_bus.huey.storage = RedisStorage(name=huey_bus_config.name,
                                        connection_pool=redis.ConnectionPool(**_connection))
huey = project_bus.huey  # what `huey_consumer sra_test_support.huey` runs


class EchoModel:
    """The consumer's model (MODEL=sra_test_support.EchoModel): it says how many bytes it read."""

    def process_file(self, file):
        return f"python heard {len(file.read())} bytes"

    @classmethod
    def build_from_config(cls):
        return cls()


class FailingModel:
    """A model that refuses every file (MODEL=sra_test_support.FailingModel), for comparing how
    the project's API shows its own worker's failures with ours."""

    def process_file(self, file):
        raise ValueError("this model refuses every file")

    @classmethod
    def build_from_config(cls):
        return cls()
