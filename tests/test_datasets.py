"""The dataset registry: in sync with the shared data, lookup order, verification, and
downloads from a real HTTP server on loopback (no internet)."""

from __future__ import annotations

import csv
import functools
import hashlib
import importlib.util
import json
import os
import re
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from escrutinio import datasets as ds
from escrutinio.errors import DatasetError

REPO_ROOT = Path(__file__).resolve().parents[1]
EXPECTED_NAMES = [
    "peru-2021-runoff", "peru-2021-first-round", "peru-2026-first-round", "peru-geography",
    "onpe-dictionaries", "chile-2021-first-round", "onpe-api-fixtures",
    "argentina-2015-runoff", "us-2020-president-progress",
]
PINNED = re.compile(r"^https://raw\.githubusercontent\.com/[^/]+/[^/]+/[0-9a-f]{40}/.+")
DICT = "onpe-dictionaries"
DICT_FILE = "onpe_datosabiertos_2021_1ra_vuelta_variables.csv"
PROXY_VARS = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
              "ALL_PROXY")


def _upstream_rows(data_dir: Path) -> list[dict[str, str]]:
    with (data_dir / "UPSTREAM.csv").open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _all_files() -> dict[str, ds.DataFile]:
    return {f.relpath: f for d in ds.registry().datasets for f in d.files}


def _copy_dataset(data_dir: Path, name: str, to: Path) -> None:
    shutil.copytree(data_dir / name, to / name)


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No ESCRUTINIO_DATA_DIR, a user cache inside tmp_path, no proxies."""
    monkeypatch.delenv(ds.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "cache" / "escrutinio" / "data"


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A real HTTP server on 127.0.0.1 (random port) serving a temporary folder."""
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# ------------------------------------------------------------------ registry contents


def test_registry_lists_every_upstream_file_with_same_hash(data_dir: Path) -> None:
    rows = _upstream_rows(data_dir)
    files = _all_files()
    assert len(rows) >= 131
    for row in rows:
        f = files[row["path"]]
        assert f.sha256 == row["sha256"], row["path"]
        assert f.size == int(row["bytes"]), row["path"]
        assert f.relation == row["relation"]
        if row["relation"] == "identical":
            assert f.upstream_url == row["upstream_url"]
            assert PINNED.match(f.upstream_url or ""), f.upstream_url
        else:
            assert f.upstream_url is None
            assert f.how_derived == row["how_derived"]
    assert ds.registry().names() == tuple(EXPECTED_NAMES)
    assert {r["path"].split("/")[0] for r in rows} | {"onpe-api-fixtures"} == set(EXPECTED_NAMES)


def test_registry_metadata(data_dir: Path) -> None:
    reg = ds.registry()
    licences = {d.name: d.licence for d in reg.datasets}
    assert licences["peru-2021-runoff"] == "MIT"
    assert licences["chile-2021-first-round"] == "MIT"
    assert licences[DICT] == "CC BY-SA 4.0"
    assert "MPL-2.0" in licences["peru-geography"]
    assert licences["peru-2026-first-round"].startswith("no licence stated")
    runoff = reg.get("peru-2021-runoff").upstream[0]
    assert runoff.commit == "7cb418a1ab893d9302751aaf2307ca3a99bef60e"
    for d in reg.datasets:
        assert d.title.es and d.title.en and d.title.es != d.title.en
        assert d.upstream and all(u.repository.startswith("https://github.com/")
                                  for u in d.upstream)
        for f in d.files:
            assert (f.upstream_url is None) != (f.how_derived is None), f.relpath
    # every fixture on disk is registered, with its real hash
    fixtures = data_dir / "onpe-api-fixtures"
    on_disk = sorted(p.relative_to(fixtures).as_posix() for p in fixtures.rglob("*")
                     if p.is_file())
    registered = [f.path for f in reg.get("onpe-api-fixtures").files]
    assert registered == on_disk


def test_committed_registry_is_up_to_date(data_dir: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "make_registry", REPO_ROOT / "scripts" / "make_registry.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    expected = module.render(module.build_registry(data_dir))
    committed = (REPO_ROOT / "src" / "escrutinio" / "data" / "registry.json").read_text("utf-8")
    assert committed == expected, "run scripts/make_registry.py"


def test_unknown_dataset_and_file() -> None:
    with pytest.raises(DatasetError, match="peru-2021-runoff"):
        ds.registry().get("peru-2099")
    with pytest.raises(DatasetError, match=r"no-such\.csv"):
        ds.locate(DICT, "no-such.csv")
    with pytest.raises(ValueError, match="unsafe"):
        ds.parse_registry({"format": 1, "datasets": [{
            "name": "x", "title": {"es": "", "en": ""}, "description": {"es": "", "en": ""},
            "licence": "", "upstream": [],
            "files": [{"path": "../etc/passwd", "bytes": 1, "sha256": "0",
                       "relation": "derived"}]}]})


# ------------------------------------------------------------------ verification


def test_every_local_file_verifies(data_dir: Path) -> None:
    sts = ds.verify(dirs=[data_dir])
    present = [s for s in sts if s.file.under(data_dir).is_file()]
    assert len(present) == len(sts) >= 167
    assert [s.file.relpath for s in present if s.verified is not True] == []
    assert all(s.location == s.file.under(data_dir) for s in present)


def test_sha256_file_streams_the_same_hash(data_dir: Path) -> None:
    path = data_dir / "peru-2021-runoff" / "actas" / "actas_electorales_ronderos.pe.csv.gz"
    assert ds.sha256_file(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_corrupt_copy_is_skipped(tmp_path: Path, data_dir: Path) -> None:
    bad_dir = tmp_path / "bad"
    _copy_dataset(data_dir, DICT, bad_dir)
    target = bad_dir / DICT / DICT_FILE
    raw = bytearray(target.read_bytes())
    raw[10] ^= 0xFF  # same size, different content
    target.write_bytes(bytes(raw))
    actual = hashlib.sha256(raw).hexdigest()

    # without hashing the same-size copy is taken; with hashing it is rejected
    assert ds.locate(DICT, DICT_FILE, dirs=[bad_dir, data_dir]) == target
    good = ds.locate(DICT, DICT_FILE, verify=True, dirs=[bad_dir, data_dir])
    assert good == data_dir / DICT / DICT_FILE
    (st,) = [s for s in ds.verify(DICT, dirs=[bad_dir]) if s.file.path == DICT_FILE]
    assert st.verified is False and st.location is None
    assert st.rejected[0].reason == "sha256" and st.rejected[0].actual == actual
    others = [s for s in ds.verify(DICT, dirs=[bad_dir]) if s.file.path != DICT_FILE]
    assert others and all(s.verified for s in others)
    # a truncated copy is rejected by size, even without hashing
    target.write_bytes(bytes(raw[:-1]))
    (st,) = [s for s in ds.status(DICT, dirs=[bad_dir]) if s.file.path == DICT_FILE]
    assert not st.found and st.rejected[0].reason == "size"


# ------------------------------------------------------------------ lookup order


def test_env_var_takes_precedence(isolated: Path, monkeypatch: pytest.MonkeyPatch,
                                  tmp_path: Path, data_dir: Path) -> None:
    env_dir = tmp_path / "env"
    (env_dir / DICT).mkdir(parents=True)
    shutil.copy2(data_dir / DICT / DICT_FILE, env_dir / DICT / DICT_FILE)
    monkeypatch.setenv(ds.ENV_VAR, str(env_dir))
    cands = ds.data_dir_candidates()
    assert cands[0] == env_dir
    assert cands[-1] == isolated
    assert ds.locate(DICT, DICT_FILE, verify=True) == env_dir / DICT / DICT_FILE
    # a file the env folder lacks falls through to the next places
    monkeypatch.setenv(ds.ENV_VAR, f"{env_dir}{os.pathsep}{data_dir}")
    other = "onpe_datosabiertos_2021_2da_vuelta_variables.csv"
    assert ds.locate(DICT, DICT_FILE) == env_dir / DICT / DICT_FILE
    assert ds.locate(DICT, other).resolve() == (data_dir / DICT / other).resolve()


def test_sibling_shared_data_found_from_package(isolated: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    sibling = REPO_ROOT.parent / "shared" / "data"
    if not (sibling / DICT).is_dir():
        pytest.skip(f"no sibling data folder at {sibling} (data given by {ds.ENV_VAR})")
    monkeypatch.chdir(tmp_path)
    cands = [p.resolve() for p in ds.data_dir_candidates()]
    assert sibling.resolve() in cands
    assert cands[-1] == isolated.resolve()


def test_shared_data_found_walking_up_from_cwd(isolated: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    project = tmp_path / "work"
    (project / "shared" / "data" / DICT).mkdir(parents=True)
    (tmp_path / "work" / "repo" / "shared" / "data").mkdir(parents=True)  # no dataset: ignored
    deep = project / "repo" / "sub" / "dir"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    cands = ds.data_dir_candidates()
    assert cands[0] == project / "shared" / "data"
    assert project / "repo" / "shared" / "data" not in cands


def test_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert ds.cache_dir() == tmp_path / "xdg" / "escrutinio" / "data"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # ignored, per the XDG spec
    assert ds.cache_dir() == tmp_path / "home" / ".cache" / "escrutinio" / "data"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert ds.cache_dir() == tmp_path / "home" / ".cache" / "escrutinio" / "data"


def test_missing_file_error_names_searched_places(tmp_path: Path, data_dir: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    rel = "actas/actas_electorales_ronderos.pe.csv.gz"
    (b / "peru-2021-runoff" / "actas").mkdir(parents=True)
    (b / "peru-2021-runoff" / rel).write_bytes(b"truncated")
    with pytest.raises(DatasetError) as info:
        ds.locate("peru-2021-runoff", rel, dirs=[a, b])
    err = info.value
    for msg in (err.message_es, err.message_en):
        assert str(a / "peru-2021-runoff" / "actas" / "actas_electorales_ronderos.pe.csv.gz") in msg
        assert str(b / "peru-2021-runoff" / "actas" / "actas_electorales_ronderos.pe.csv.gz") in msg
        assert "escrutinio datasets --fetch peru-2021-runoff" in msg
        assert "2090823" in msg and " 9 bytes" in msg  # expected size, and the 9-byte copy found
    assert "no existe" in err.message_es and "Se buscó" in err.message_es
    assert "not there" in err.message_en and "Searched" in err.message_en
    # a derived file says how it was made instead of promising a download from upstream
    with pytest.raises(DatasetError, match="xlsx dictionaries"):
        ds.locate(DICT, DICT_FILE, dirs=[a])


# ------------------------------------------------------------------ fetching


def test_fetch_from_loopback_mirror(isolated: Path, http_root: tuple[Path, str],
                                    data_dir: Path) -> None:
    root, url = http_root
    _copy_dataset(data_dir, DICT, root)
    files = ds.registry().get(DICT).files
    assert not isolated.exists()

    result = ds.fetch(DICT, base_url=url + "/")
    assert result.data_dir == isolated
    assert len(result.downloaded) == len(files) == 4 and result.already_present == ()
    for f in files:
        assert ds.sha256_file(f.under(isolated)) == f.sha256
    assert ds.locate(DICT, DICT_FILE, verify=True, dirs=[isolated]) == isolated / DICT / DICT_FILE
    assert isolated in ds.data_dir_candidates()
    assert not list(isolated.rglob("*.part"))

    # a second fetch downloads nothing; a damaged cached copy is replaced
    (isolated / DICT / DICT_FILE).write_bytes(b"x")
    again = ds.fetch(DICT, base_url=url)
    assert again.downloaded == (isolated / DICT / DICT_FILE,)
    assert len(again.already_present) == 3
    assert ds.sha256_file(isolated / DICT / DICT_FILE) == ds.registry().get(DICT).file(
        DICT_FILE).sha256


def test_fetch_rejects_corrupted_download(isolated: Path, http_root: tuple[Path, str],
                                          data_dir: Path) -> None:
    root, url = http_root
    _copy_dataset(data_dir, DICT, root)
    served = root / DICT / DICT_FILE
    raw = bytearray(served.read_bytes())
    raw[100] ^= 0x01
    served.write_bytes(bytes(raw))
    expected = ds.registry().get(DICT).file(DICT_FILE).sha256
    actual = hashlib.sha256(raw).hexdigest()

    with pytest.raises(DatasetError) as info:
        ds.fetch(DICT, base_url=url)
    for msg in (info.value.message_es, info.value.message_en):
        assert expected in msg and actual in msg
    assert not (isolated / DICT / DICT_FILE).exists()
    assert not [p for p in isolated.rglob("*") if p.is_file() and p.name.endswith(".part")]
    assert not [p for p in isolated.rglob("*") if DICT_FILE in p.name]

    # larger than registered: stopped while streaming; missing on the server: HTTP 404
    served.write_bytes(bytes(raw) * 3)
    with pytest.raises(DatasetError, match="more than 1382 bytes"):
        ds.fetch(DICT, base_url=url)
    served.unlink()
    with pytest.raises(DatasetError, match="404"):
        ds.fetch(DICT, base_url=url)
    assert not (isolated / DICT / DICT_FILE).exists()
    assert not list(isolated.rglob("*.part"))


def test_fetch_derived_files_need_a_mirror(isolated: Path) -> None:
    with pytest.raises(DatasetError) as info:
        ds.fetch(DICT)
    assert "converted from the ONPE xlsx dictionaries" in info.value.message_en
    assert "base_url" in info.value.message_en and "réplica" in info.value.message_es
    assert not (isolated / DICT).exists() or not any((isolated / DICT).iterdir())


def test_fetch_uses_pinned_upstream_address(isolated: Path, http_root: tuple[Path, str],
                                            monkeypatch: pytest.MonkeyPatch,
                                            data_dir: Path) -> None:
    """An identical file comes from its upstream address; a derived one cannot."""
    root, url = http_root
    src = data_dir / "peru-geography" / "ubigeo_departamento.csv"
    (root / "pinned").mkdir()
    shutil.copy2(src, root / "pinned" / "ubigeo_departamento.csv")
    real = ds.registry().get("peru-geography").file("ubigeo_departamento.csv")
    derived = ds.registry().get(DICT).file(DICT_FILE)
    fake = ds.Dataset(
        name="demo", title=ds.Text("demo", "demo"), description=ds.Text("", ""),
        licence="MIT", upstream=(),
        files=(
            ds.DataFile("demo", "ubigeo_departamento.csv", real.size, real.sha256,
                        "identical", f"{url}/pinned/ubigeo_departamento.csv", None),
            ds.DataFile("demo", "codes.csv", derived.size, derived.sha256, "derived", None,
                        "made by hand from a spreadsheet"),
        ),
    )
    monkeypatch.setattr(ds, "registry", lambda: ds.Registry((fake,)))
    with pytest.raises(DatasetError, match="made by hand from a spreadsheet") as info:
        ds.fetch("demo")
    assert "Downloaded: 1" in info.value.message_en
    assert ds.sha256_file(isolated / "demo" / "ubigeo_departamento.csv") == real.sha256
    assert not (isolated / "demo" / "codes.csv").exists()


# ------------------------------------------------------------------ table


def test_datasets_table(tmp_path: Path, data_dir: Path) -> None:
    rows = ds.datasets_table("en", verify=True, dirs=[data_dir])
    assert [r["name"] for r in rows] == EXPECTED_NAMES
    by_name = {r["name"]: r for r in rows}
    runoff = by_name["peru-2021-runoff"]
    assert runoff["files"] == 77 and runoff["found"] == 77 and runoff["missing"] == 0
    assert runoff["bytes"] == sum(
        int(r["bytes"]) for r in _upstream_rows(data_dir)
        if r["path"].startswith("peru-2021-runoff/"))
    assert runoff["verified"] is True and runoff["where"] == [str(data_dir)]
    assert "7cb418a1" in runoff["upstream"] and runoff["licence"] == "MIT"
    json.dumps(rows)  # JSON-ready

    es = ds.datasets_table("es", dirs=[data_dir])
    assert es[0]["title"].startswith("Perú") and rows[0]["title"].startswith("Peru")
    assert all(r["verified"] is None for r in es)

    empty = ds.datasets_table("en", verify=True, dirs=[tmp_path])
    assert all(r["found"] == 0 and r["missing"] == r["files"] and r["verified"] is False
               and r["where"] == [] for r in empty)
    with pytest.raises(ValueError, match="lang"):
        ds.datasets_table("fr")
