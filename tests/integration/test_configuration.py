"""The seed's configuration contract: .env, environment precedence, class paths, plugins."""
import json
import re
import subprocess


from conftest import AUDIO, BINARY, PLUGIN, Server, base_env, transcribe, wait_task


def test_seed_env_file_works_unchanged(tmp_path, goforward_wav):
    workdir = tmp_path / "seed"
    workdir.mkdir()
    (workdir / ".env").write_text(
        "# a .env written for the Python project\n"
        "export STORAGE=speech_recognition_api.extra.local_storage.LocalStorage\n"
        "LOCAL_STORAGE_FOLDER_PATH='./from-file'\n"
        'MESSAGE_BUS="embedded"  # our default bus\n')
    server = Server(workdir, base_env(LOCAL_STORAGE_FOLDER_PATH="./from-env")).start()
    try:
        task = transcribe(server, goforward_wav, route="/async/v1/transcribe").json()["task_id"]
        assert wait_task(server, task)["transcription"] == "go forward ten meters"
        # The environment wins over the file.
        assert len(list((workdir / "from-env").iterdir())) == 1
        assert not (workdir / "from-file").exists()
    finally:
        server.stop()


def test_malformed_env_file_names_file_and_line(tmp_path):
    (tmp_path / ".env").write_text("MODEL=pocketsphinx\nthis line is wrong\n")
    r = subprocess.run([str(BINARY), "serve", "--port", "0"], cwd=tmp_path, env=base_env(),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 78
    assert ".env:2:" in r.stderr


def test_env_file_option(tmp_path, goforward_wav):
    (tmp_path / "custom.env").write_text("MODEL=" + str(PLUGIN) + "\n")
    r = subprocess.run([str(BINARY), "transcribe", "--env-file", "custom.env", str(goforward_wav)],
                       cwd=tmp_path, env=base_env(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert re.fullmatch(r"(\[speech \d+\.\d\d-\d+\.\d\d\] ?)+\n", r.stdout), r.stdout


def test_plugin_model_serves_requests(make_server):
    server = make_server(MODEL=str(PLUGIN), VAD_MODEL_THRESHOLD_DB=-30)
    r = transcribe(server, AUDIO / "jfk.wav")
    assert r.status_code == 200, r.text
    spans = re.findall(r"\[speech (\d+\.\d\d)-(\d+\.\d\d)\]", r.json()["transcription"])
    assert len(spans) >= 2
    assert all(float(a) < float(b) <= 11.1 for a, b in spans)


def test_transcribe_command(goforward_wav, tmp_path):
    r = subprocess.run([str(BINARY), "transcribe", "--json", str(goforward_wav)], cwd=tmp_path,
                       env=base_env(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["text"] == "go forward ten meters"
    assert result["file"] == str(goforward_wav)
    assert result["language"] == "en"
    assert result["segments"][0]["text"] == "go forward ten meters"
    r = subprocess.run([str(BINARY), "transcribe", str(goforward_wav), "/nonexistent.wav"],
                       cwd=tmp_path, env=base_env(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert r.stdout == "go forward ten meters\n"
    assert "/nonexistent.wav: cannot open" in r.stderr


def test_version_and_help():
    r = subprocess.run([str(BINARY), "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("speech-recognition-api ")
    r = subprocess.run([str(BINARY), "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    for sub in ("serve", "worker", "transcribe"):
        assert sub in r.stdout
