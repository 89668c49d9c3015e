"""Writes the pickles the unit tests read, with Huey 2.5 itself (run in the Python project's
environment: build/python-project-venv/bin/python tests/unit/bus/huey_pickles/make.py)."""
import datetime
import pathlib
import pickle

from huey.registry import Message
from huey.utils import Error

HERE = pathlib.Path(__file__).parent
TASK = "speech_recognition_api.extra.huey_bus.huey_bus.huey_task"
ID = "0b4e6c2e-7c1f-4a55-9a53-2f1f4fd1a3c1"

values = {
    "message": Message(ID, TASK, None, 0, 0, None, ("audio-file-id",), {}, None, None, None, None),
    "message_eta": Message(ID, TASK, datetime.datetime(2030, 1, 2, 3, 4, 5, 600000), 2, 10, None,
                           ("audio-file-id",), {"options": "{\"language\": \"en\"}"}, None, None, None, None),
    "message_callback": Message(ID, TASK, None, 0, 0, None, ("a",), {},
                                Message("x", TASK, None, 0, 0, None, ("b",), {}, None, None, None, None),
                                None, None, None),
    "result": {"transcription": "go forward ten meters"},
    "error": Error({"error": "ValueError('not audio')", "retries": 0, "traceback": "Traceback ...",
                    "task_id": ID}),
    "revoke": (None, False),
    "revoke_until": (datetime.datetime(2001, 1, 1), False),
}
for name, value in values.items():
    for protocol in (2, 3, 4, 5):
        (HERE / f"{name}.p{protocol}.pickle").write_bytes(pickle.dumps(value, protocol))
# Hostile ones: a class off the allow-list (os.system) and a list that holds itself.
(HERE / "hostile_global.pickle").write_bytes(b"\x80\x04\x95\x1a\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94\x8c\x06system\x94\x93\x94\x8c\x02id\x94\x85\x94R\x94.")
cycle = []
cycle.append(cycle)
(HERE / "cycle.pickle").write_bytes(pickle.dumps(cycle, 5))
