"""Bigger pretrained models by name — Hugging Face Hub ids and timm names — with a one-line answer when offline.

    src, kwargs = hub.text_source("bert-base-uncased")   # for from_pretrained: cached, or the Hub is reachable
    model = hub.image_model("tf_efficientnet_lite4", num_classes=10)   # a timm name ("lite0" etc.: the shipped files)
    state, why = hub.available("roberta-base")       # "cached" / "ok", or "offline" / "missing" / "gated" and why

Online, models load through the libraries' own cache (`~/.cache/huggingface`, or $HF_HOME): downloaded once, then
read from disk, also offline. Offline and not cached, the answer comes within seconds as `ModelUnavailable`, one line:
which model is missing, why the Hub cannot be reached, and which shipped model serves instead — never a minute of
retries and a traceback from deep inside transformers. To go online: a machine with internet access (Colab has it),
no HF_HUB_OFFLINE=1 in the environment (and $HF_ENDPOINT for a mirror; a gated model also needs `hf auth login`).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from torch import nn

SHIPPED_TEXT = "the shipped MiniLM (all-MiniLM-L6-v2, a 6-layer BERT) serves instead: leave the model name None"
SHIPPED_IMAGE = "the shipped EfficientNet-Lite0 serves instead: model 'lite0'"
TRUE = {"1", "true", "yes", "on"}
TIMEOUT = 3.0
TIMM_FILES = (
    "model.safetensors",
    "pytorch_model.bin",
)  # what timm reads from a Hub repo  # seconds for the one reachability probe; the whole answer stays well under 5 s


class ModelUnavailable(RuntimeError):
    """A model asked for by name cannot be loaded here (not cached, Hub unreachable); the message is one line."""


def _offline_flag() -> str | None:
    """Why the Hugging Face libraries themselves will not go online in this process (read at their import), or None."""
    from transformers.utils.hub import is_offline_mode

    if not is_offline_mode():
        return None
    on = [v for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE") if os.environ.get(v, "").strip().lower() in TRUE]
    return f"offline mode is on ({on[0] if on else 'HF_HUB_OFFLINE'}=1)"


def hub_answer(repo_id: str, timeout: float = TIMEOUT) -> tuple[str, str]:
    """What the Hugging Face Hub says about model repo `repo_id`: ("ok" | "missing" | "gated" | "offline", why).

    One request to the Hub's model API ($HF_ENDPOINT, a mirror, or https://huggingface.co), given up after `timeout`
    seconds in all: it runs in a thread abandoned at the deadline, so even a hanging DNS lookup cannot stall it. Only
    the Hub's own JSON answer counts as an answer (a proxy's or captive portal's page means "offline").
    """
    import json
    import urllib.error
    import urllib.request

    flag = _offline_flag()
    if flag:
        return "offline", flag
    base = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    answer: dict = {}

    def probe():
        try:
            with urllib.request.urlopen(f"{base}/api/models/{repo_id}", timeout=timeout) as r:
                answer["status"], answer["body"] = r.status, r.read(100_000)
        except urllib.error.HTTPError as e:  # an error code: whose it is, the body says
            answer["status"], answer["body"] = e.code, e.read(10_000)
        except Exception as e:  # no network, DNS failure, proxy refusal, TLS error: all mean "unreachable"
            answer["error"] = getattr(e, "reason", None) or type(e).__name__

    worker = threading.Thread(target=probe, daemon=True)
    worker.start()
    worker.join(timeout + 0.5)
    try:
        body = json.loads(answer.get("body") or b"null")
    except ValueError:
        body = None
    status = answer.get("status")
    if status == 200 and isinstance(body, dict) and ("id" in body or "modelId" in body):
        return "ok", ""
    if status in (401, 403) and isinstance(body, dict):
        return "gated", f"the Hub refuses {repo_id!r} without a login (HTTP {status}): run `hf auth login`"
    if status == 404 and isinstance(body, dict) and "error" in body:
        return "missing", f"the Hub has no model {repo_id!r}"
    why = answer.get("error") or (f"HTTP {status}, not the Hub's answer" if status else f"no answer in {timeout:g} s")
    return "offline", f"{base} is unreachable from this machine ({why})"


def _need(name: str, repo_id: str, instead: str) -> None:
    """Raise in one line unless the Hub can serve `repo_id` now."""
    state, why = hub_answer(repo_id)
    if state == "offline":
        raise ModelUnavailable(f"{name!r} is not in the local Hugging Face cache and cannot be downloaded: {why}; "
                               f"{instead} (online, the name downloads once into the cache)")  # fmt: skip
    if state != "ok":
        raise ModelUnavailable(f"{name!r} cannot be loaded: {why}; {instead}")


def _cached(repo_id: str, filenames: tuple[str, ...]) -> str | None:
    """The local path of the first of `filenames` of Hub repo `repo_id` already in the Hugging Face cache, or None."""
    from transformers.utils.hub import try_to_load_from_cache

    found = (try_to_load_from_cache(repo_id, f) for f in filenames)
    return next((f for f in found if isinstance(f, str)), None)


def text_source(name: str) -> tuple[str, dict]:
    """(what to pass to from_pretrained, its keyword arguments) for a Hub id or a local folder, checked in seconds.

    A local folder or a cached id loads with local_files_only=True (no network at all); an id that is not cached
    needs the Hub: unreachable, it raises ModelUnavailable in one line instead of transformers' retries.
    """
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser()), {"local_files_only": True}
    if _cached(name, ("config.json",)):
        return name, {"local_files_only": True}
    _need(name, name, SHIPPED_TEXT)
    return name, {}


def available(name: str) -> tuple[str, str]:
    """Whether a text id or a timm name can load here, without loading it: ("cached" | "ok" | "offline" | "missing" |
    "gated", why). "ok": the Hub has it and a loader would download it once into the cache."""
    from tlcourse import models

    if name in models.EFFICIENTNET or Path(name).expanduser().is_dir():
        return "cached", "shipped with the course" if name in models.EFFICIENTNET else "a local folder"
    import timm

    repo = getattr(timm.models.get_pretrained_cfg(name), "hf_hub_id", None) if timm.is_model(name) else name
    if repo and _cached(repo, ("config.json", *TIMM_FILES)):
        return "cached", "in the local Hugging Face cache"
    return hub_answer(repo or name)


def check_image_model(name: str, pretrained: bool = True) -> None:
    """Raise in one line unless `image_model(name)` can load here: a known name, weights cached or the Hub reachable."""
    from tlcourse import models

    if name in models.EFFICIENTNET:
        return
    import timm

    if not timm.is_model(name):
        raise ValueError(f"unknown model {name!r}: use one of {list(models.EFFICIENTNET)} (shipped) or a timm name, "
                         "e.g. 'tf_efficientnet_lite4' (timm.list_models('*lite*') lists more)")  # fmt: skip
    if pretrained:
        repo = getattr(timm.models.get_pretrained_cfg(name), "hf_hub_id", None)
        if not repo:
            raise ValueError(f"timm has no Hugging Face Hub weights for {name!r}; choose a name with an in1k tag")
        if not _cached(repo, TIMM_FILES):
            _need(name, repo, SHIPPED_IMAGE)


def image_model(name: str, pretrained: bool = True, num_classes: int | None = None) -> nn.Module:
    """A pretrained ImageNet network by name, in eval mode: 'lite0'/'lite1'/'lite2' are the shipped files
    (models.load_efficientnet); any other timm name (e.g. 'tf_efficientnet_lite4', 'resnet50') comes from the Hub
    through timm's cache. num_classes replaces the 1000-way head with a fresh one.

    Lesson 02's recipes need a timm EfficientNet (its stages); its loader normalises like the Lite networks,
    (x - 127) / 128 — what the tf_efficientnet_lite* weights expect; other models were trained with other statistics.
    """
    from tlcourse import models

    check_image_model(name, pretrained)
    if name in models.EFFICIENTNET:
        return models.load_efficientnet(name, pretrained=pretrained, num_classes=num_classes)
    import timm

    kwargs = {} if num_classes is None else {"num_classes": num_classes}
    cached = _cached(timm.models.get_pretrained_cfg(name).hf_hub_id, TIMM_FILES) if pretrained else None
    if cached:  # read the cached file itself: no request to the Hub at all (timm would ask it first)
        kwargs["pretrained_cfg_overlay"] = {"file": cached, "source": ""}
    return timm.create_model(name, pretrained=pretrained, **kwargs).eval()
