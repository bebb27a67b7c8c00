"""Models by name (tlcourse.hub), tested offline: the answer comes within seconds, in one line, naming the missing
model, why the Hub cannot be reached and the shipped model that serves instead; cached names load without network."""

from __future__ import annotations

import http.server
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tlcourse import hub, models, text_models

LIMIT = 5.0  # seconds: the bound for the offline answer


def _one_line_answer(call, name: str, shipped: str) -> float:
    start = time.perf_counter()
    with pytest.raises(hub.ModelUnavailable) as e:
        call()
    seconds = time.perf_counter() - start
    msg = str(e.value)
    assert "\n" not in msg and name in msg and shipped in msg, msg
    assert "unreachable" in msg or "offline" in msg, msg
    assert e.value.__cause__ is None and e.value.__context__ is None  # no chained transformers traceback
    return seconds


def _online(monkeypatch):
    """This process as a learner's online one: no offline flag in the environment or in huggingface_hub, which reads
    it once at import (another test, or loading the shipped MiniLM, may have set it earlier in the session)."""
    import huggingface_hub.constants

    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)


@pytest.fixture
def no_hub(monkeypatch):
    """A Hub that accepts the connection and then never answers: only the deadline ends the wait."""
    _online(monkeypatch)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{sock.getsockname()[1]}")
    yield
    sock.close()


@pytest.fixture
def fake_hub(monkeypatch):
    """A local server answering like the Hub's model API (org/tiny exists, org/gated needs a login) or, for other
    paths, like a proxy's error page."""
    _online(monkeypatch)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            answers = {"/api/models/org/tiny": (200, {"id": "org/tiny"}), "/api/models/org/gated": (401, {"error": "x"}),
                       "/api/models/org/none": (404, {"error": "Repository not found"})}  # fmt: skip
            code, body = answers.get(self.path, (404, None))
            self.send_response(code)
            self.end_headers()
            self.wfile.write(json.dumps(body).encode() if body else b"<html>proxy: not found</html>")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    yield
    server.shutdown()


@pytest.mark.parametrize("name", ["bert-base-uncased", "roberta-base"])
def test_a_text_model_by_name_answers_offline_in_one_line_within_seconds(name):
    assert _one_line_answer(lambda: models.load_minilm(num_labels=2, name=name), name, "MiniLM") < LIMIT


def test_lesson_recipes_with_a_hub_name_answer_the_same_way():
    rec = text_models.recipe(name="bert-base-uncased")
    assert _one_line_answer(lambda: text_models.new_classifier(rec), "bert-base-uncased", "MiniLM") < LIMIT


def test_an_image_model_by_name_answers_offline_in_one_line_within_seconds():
    assert _one_line_answer(lambda: hub.image_model("resnet50", num_classes=10), "resnet50", "Lite0") < LIMIT
    from tlcourse import finetune

    x = __import__("numpy").zeros((4, 28, 28), dtype="uint8")
    call = lambda: finetune.train_strategy("full", (x, [0, 1, 0, 1]), None, model_name="tf_efficientnet_lite4")  # noqa: E731
    assert _one_line_answer(call, "tf_efficientnet_lite4", "Lite0") < LIMIT


def test_a_hub_that_never_answers_is_given_up_at_the_deadline(no_hub):
    start = time.perf_counter()
    state, why = hub.hub_answer("bert-base-uncased", timeout=1.0)
    assert state == "offline" and "unreachable" in why and time.perf_counter() - start < 2.0
    assert _one_line_answer(lambda: hub.text_source("bert-base-uncased"), "bert-base-uncased", "MiniLM") < LIMIT


def test_only_the_hubs_own_answer_counts(fake_hub):
    assert hub.hub_answer("org/tiny")[0] == "ok"
    assert hub.hub_answer("org/gated") == ("gated", "the Hub refuses 'org/gated' without a login (HTTP 401): run "
                                                     "`hf auth login`")  # fmt: skip
    assert hub.hub_answer("org/none") == ("missing", "the Hub has no model 'org/none'")
    state, why = hub.hub_answer("bert-base-uncased")  # a proxy's page, not the Hub's JSON
    assert state == "offline" and "not the Hub's answer" in why
    assert hub.text_source("org/tiny") == ("org/tiny", {})  # reachable: from_pretrained downloads into the cache
    with pytest.raises(hub.ModelUnavailable, match="the Hub has no model 'org/none'; the shipped MiniLM"):
        hub.text_source("org/none")


def test_offline_mode_is_said_as_such_in_a_fresh_process():
    code = ("from tlcourse import hub\ntry:\n    hub.text_source('bert-base-uncased')\n"
            "except hub.ModelUnavailable as e:\n    print(e)")  # fmt: skip
    env = {**__import__("os").environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert "offline mode is on (HF_HUB_OFFLINE=1)" in out.stdout and "MiniLM" in out.stdout, out


def test_shipped_names_and_local_folders_need_no_network(tmp_path, no_hub):
    assert hub.text_source(str(tmp_path)) == (str(tmp_path), {"local_files_only": True})
    hub.check_image_model("lite0")  # the shipped file: no Hub involved
    with pytest.raises(ValueError, match="unknown model 'no_such_net'"):
        hub.image_model("no_such_net")


def test_a_cached_hub_name_loads_from_the_cache_offline(tmp_path):
    """A name already in the Hugging Face cache (downloaded once, online) loads with local_files_only: no network."""
    snap = tmp_path / "hub" / "models--org--tiny" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (tmp_path / "hub" / "models--org--tiny" / "refs").mkdir()
    (tmp_path / "hub" / "models--org--tiny" / "refs" / "main").write_text("abc123")
    code = "from tlcourse import hub\nprint(hub.text_source('org/tiny'))"
    env = {**__import__("os").environ, "HF_HOME": str(tmp_path), "HF_ENDPOINT": "http://127.0.0.1:9"}  # refused
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.stdout.strip() == "('org/tiny', {'local_files_only': True})", out


def test_the_command_line_answers_in_one_line(tmp_path):
    cmd = [sys.executable, "-m", "tlcourse.run", "sentiment", "--model-name", "bert-base-uncased", "--dry-run",
           "--out", str(tmp_path / "r.json")]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=Path(__file__).parent.parent)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and out.stderr.startswith("error: 'bert-base-uncased'")
    assert "MiniLM" in out.stderr and not (tmp_path / "r.json").exists()


def test_a_cached_timm_name_loads_its_cached_weights_without_the_hub(tmp_path):
    """timm would ask the Hub first; a name already in the cache must load from that file alone (Hub refused here)."""
    code = """
import torch, timm
from safetensors.torch import save_file
from huggingface_hub import constants
from pathlib import Path
repo = Path(constants.HF_HUB_CACHE) / "models--timm--tf_efficientnet_lite0.in1k"
snap = repo / "snapshots" / "abc"
snap.mkdir(parents=True)
(repo / "refs").mkdir()
(repo / "refs" / "main").write_text("abc")
torch.manual_seed(3)
saved = timm.create_model("tf_efficientnet_lite0").state_dict()
save_file({k: v.contiguous() for k, v in saved.items()}, str(snap / "model.safetensors"))
from tlcourse import hub
model = hub.image_model("tf_efficientnet_lite0")
print(all(torch.equal(v, saved[k]) for k, v in model.state_dict().items()), hub.available("tf_efficientnet_lite0")[0])
"""
    env = {**__import__("os").environ, "HF_HOME": str(tmp_path), "HF_ENDPOINT": "http://127.0.0.1:9"}  # refused
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.stdout.strip() == "True cached", out.stderr[-2000:]
