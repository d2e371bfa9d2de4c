"""The HTTP API and the pages, through FastAPI's TestClient, on the real 2021 runoff.

Numbers are checked against the published totals and against each other (a JSON twin
against its page, one endpoint against another), headers against HTTP caching rules,
and every bad request against a 4xx with a bilingual message.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import polars as pl
import pytest
from fastapi.testclient import TestClient

from api_support import (
    FINAL_CASTILLO,
    FINAL_FUJIMORI,
    data_dir,
    live_app,
    replay_app,
)

FIRST_CUT = "2021-06-07T05:48:00Z"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return live_app(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def ids(app):
    b = app.state.backend
    snaps = b.store.all_snapshots()
    actas = [s for s in snaps if s.kind.value == "actas"]
    return {"final": actas[-1].snapshot_id, "jun15": actas[-2].snapshot_id,
            "jun9": actas[-3].snapshot_id, "jun8": actas[-4].snapshot_id,
            "first_cut": snaps[0].snapshot_id,
            "district": next(s.snapshot_id for s in snaps if s.level == "area3")}


def test_state_json_matches_published_totals(client, ids):
    r = client.get(f"/api/v1/s/{ids['final']}/state/area1")
    assert r.status_code == 200
    body = r.json()
    nat = body["state"]["national"]
    votes = {c["code"]: c["votes"] for c in nat["candidates"]}
    assert votes == {"castillo": FINAL_CASTILLO, "fujimori": FINAL_FUJIMORI}
    assert nat["actas_total"] == 86_488 and nat["margin_votes"] == 43_957
    abroad = {c["code"]: c["votes"] for c in body["state"]["abroad"]["candidates"]}
    assert abroad == {"castillo": 112_671, "fujimori": 220_588}
    units = body["state"]["units"]
    assert len(units) == 25 + 5  # departments + continents
    assert sum(u["candidates"][0]["votes"] for u in units) == FINAL_CASTILLO
    assert body["snapshot"]["snapshot_id"] == ids["final"]
    assert body["links"]["html"] == f"/s/{ids['final']}/map/area1/"
    assert body["level_label"] == {"es": "departamento", "en": "department"}


def test_level_aliases_and_json_suffix_give_the_same_body(client, ids):
    a = client.get(f"/api/v1/s/{ids['final']}/state/department").content
    b = client.get(f"/api/v1/s/{ids['final']}/state/area1.json").content
    assert a == b
    d = client.get(f"/api/v1/s/{ids['district']}/state/distrito").json()
    assert d["level"] == "area3" and len(d["state"]["units"]) > 1800


def test_unit_snapshot_rolls_up_through_the_geography(client, ids):
    """A district cut seen by department: the units add up to the home total."""
    body = client.get(f"/api/v1/s/{ids['district']}/state/area1").json()
    home = [u for u in body["state"]["units"] if u["abroad"] is False]
    assert len(home) == 25
    assert sum(u["valid"] for u in home) == body["state"]["home"]["valid"]


def test_etag_304_and_cache_control(client, ids):
    url = f"/api/v1/s/{ids['final']}/state/national"
    r = client.get(url)
    etag = r.headers["etag"]
    assert r.headers["cache-control"] == "public, max-age=86400"  # permalink: a full id
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    other = client.get(url, headers={"If-None-Match": '"not-it"'})
    assert other.status_code == 200
    moving = client.get("/api/v1/s/latest/state/national")
    assert moving.headers["cache-control"] == "public, max-age=10"
    assert moving.headers["etag"] != client.get(
        f"/api/v1/s/{ids['jun15']}/state/national").headers["etag"]
    page = client.get(f"/s/{ids['final']}/")
    assert page.headers["etag"] and client.get(
        f"/s/{ids['final']}/", headers={"If-None-Match": page.headers["etag"]}).status_code == 304
    assert client.get(f"/en/s/{ids['final']}/").headers["etag"] != page.headers["etag"]


def test_gzip_when_asked(client, ids):
    r = client.get(f"/api/v1/s/{ids['final']}/state/area3",
                   headers={"Accept-Encoding": "gzip"})
    assert r.headers.get("content-encoding") == "gzip"
    assert r.json()["level"] == "area3"
    plain = client.get(f"/api/v1/s/{ids['final']}/state/area3",
                       headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers


def test_unknown_snapshot_is_404_in_both_languages(client):
    r = client.get("/api/v1/s/0123456789abcdef/state/area1")
    assert r.status_code == 404
    body = r.json()
    assert body["status"] == 404 and "desconocida" in body["message_es"]
    assert "unknown snapshot" in body["message_en"]
    es = client.get("/s/0123456789abcdef/")
    en = client.get("/en/s/0123456789abcdef/")
    assert es.status_code == en.status_code == 404
    assert '<html lang="es">' in es.text and "instantánea desconocida" in es.text
    assert '<html lang="en">' in en.text and "unknown snapshot" in en.text
    assert client.get("/api/v1/nothing-here").json()["message_en"] == "there is no such page"


@pytest.mark.parametrize("url", [
    "/api/v1/s/latest/state/bogus",
    "/api/v1/s/latest/projection?sims=5",
    "/api/v1/s/latest/projection?seed=-1",
    "/api/v1/s/latest/contested?limit=0",
    "/api/v1/s/latest/quickcount?seed=",
    "/api/v1/s/latest/map/national",
])
def test_bad_requests_are_4xx_with_a_message(client, url):
    r = client.get(url)
    assert 400 <= r.status_code < 500
    body = r.json()
    assert body["message_es"] and body["message_en"] and body["status"] == r.status_code


def test_per_acta_analysis_of_an_aggregate_snapshot_is_422(client, ids):
    for name in ("contested", "verify", "forensics", "audit", "quickcount"):
        r = client.get(f"/api/v1/s/{ids['first_cut']}/{name}")
        assert r.status_code == 422, name
        assert "per-acta" in r.json()["message_en"]
    page = client.get(f"/en/s/{ids['first_cut']}/contested/")
    assert page.status_code == 422 and "per-acta" in page.text
    mixed = client.get(f"/api/v1/diff/{ids['first_cut']}/{ids['final']}")
    assert mixed.status_code == 400 and "aggregate" in mixed.json()["message_en"]


def test_history_finds_the_2021_lead_change(client):
    h = client.get("/api/v1/history").json()["history"]
    assert len(h["lead_changes"]) == 1
    flip = h["lead_changes"][0]
    assert (flip["previous_leader"], flip["new_leader"]) == ("fujimori", "castillo")
    assert flip["before"]["as_of"] == "2021-06-07T15:48:00Z"
    assert flip["after"]["as_of"] == "2021-06-07T16:19:00Z"
    assert h["points"][0]["as_of"] == FIRST_CUT and h["points"][0]["leader"] == "fujimori"
    page = client.get("/en/history/").text
    assert "Lead change" in page and "16:19" in page


def test_diff_agrees_with_the_two_count_states(client, ids):
    d = client.get(f"/api/v1/diff/{ids['jun8']}/{ids['jun9']}").json()["diff"]
    old = client.get(f"/api/v1/s/{ids['jun8']}/state/national").json()["state"]["national"]
    new = client.get(f"/api/v1/s/{ids['jun9']}/state/national").json()["state"]["national"]
    for i, code in enumerate(("castillo", "fujimori")):
        assert d["national_delta"][f"v_{code}"] == (new["candidates"][i]["votes"]
                                                    - old["candidates"][i]["votes"])
    assert d["n_state_changes"] > 0
    assert sum(t["n"] for t in d["transitions"]) == 86_488


def test_projection_json_and_page(client, ids):
    r = client.get(f"/api/v1/s/{ids['jun8']}/projection")
    assert r.status_code == 200
    p = r.json()["projection"]
    assert p["n_simulations"] == 2000 and p["basis"] == "actas"
    assert abs(sum(c["p_win"] for c in p["candidates"]) - 1) < 1e-9
    counted = {c["code"]: c["counted"] for c in p["candidates"]}
    state = client.get(f"/api/v1/s/{ids['jun8']}/state/national").json()["state"]["national"]
    assert counted == {c["code"]: c["votes"] for c in state["candidates"]}
    iv = {x["level"]: x for x in p["margin"]["intervals"]}
    assert iv[0.5]["lower"] >= iv[0.99]["lower"] and iv[0.5]["upper"] <= iv[0.99]["upper"]
    other = client.get(f"/api/v1/s/{ids['jun8']}/projection?sims=1000&seed=3").json()
    assert other["projection"]["n_simulations"] == 1000
    page = client.get(f"/s/{ids['jun8']}/projection/").text
    assert p["call"]["label_es"] in page


def test_map_join_reniec_to_inei(client, ids):
    """The department keys must agree with the independent department table."""
    body = client.get(f"/api/v1/s/{ids['final']}/map/area1").json()
    keys = body["map"]["keys"]
    dep = pl.read_csv(data_dir() / "peru-geography" / "ubigeo_departamento.csv",
                      infer_schema_length=0)
    expected = {r: i[:2] for r, i in zip(dep["reniec"], dep["inei"], strict=True)}
    assert keys == {k: expected[k] for k in keys} and len(keys) == 25
    assert keys["240000"] == "07"  # Callao: RENIEC 24, INEI 07
    assert body["map"]["without_polygon"] == []
    dist = client.get(f"/api/v1/s/{ids['final']}/map/area3").json()["map"]
    assert len(set(dist["keys"].values())) == len(dist["keys"])  # one polygon per district
    assert len(dist["keys"]) > 1800 and len(dist["without_polygon"]) < 80


def test_map_page_draws_every_department(client, ids):
    html = client.get(f"/s/{ids['final']}/map/area1/").text
    assert html.count("<path ") == 25 and 'tabindex="0"' in html
    assert "AMERICA" in html  # the abroad panel
    lima = re.search(r'<path [^>]*data-code="140000"[^>]*>', html).group(0)
    assert 'fill="#c24e00"' in lima  # Fujimori's colour: she won Lima
    # the levels carry the country's names (ONPE's), in both languages
    assert "<h1>Mapa por departamento</h1>" in html and ">Provincia</a>" in html
    en = client.get(f"/en/s/{ids['final']}/map/area3/").text
    assert "<h1>Map by district</h1>" in en and "Table by district (" in en


def test_contested_verify_audit_quickcount(client, ids):
    c15 = client.get(f"/api/v1/s/{ids['jun15']}/contested").json()["result"]
    assert c15["n_contested"] == 1354  # the JEE-bound actas of 15 June (data README)
    assert client.get(f"/api/v1/s/{ids['final']}/contested").json()["result"][
        "n_contested"] == 0
    v = client.get(f"/api/v1/s/{ids['final']}/verify").json()["result"]
    assert v["n_actas"] == 86_488 and v["previous"]["snapshot_id"] == ids["jun15"]
    a = client.get(f"/api/v1/s/{ids['final']}/audit").json()["result"]
    assert a["plan"]["auditable"] and a["plan"]["n_actas"] > 80_000 and a["audits"] == []
    q = client.get(f"/api/v1/s/{ids['final']}/quickcount?seed=dados-2021&limit=5").json()
    res = q["result"]
    assert res["n_sample"] == sum(s["sample"] for s in res["strata"]) == 1500
    first = res["sample"][0]
    assert first["sha256"] == hashlib.sha256(f"dados-2021,{first['acta_id']}".encode()
                                             ).hexdigest()
    assert client.get(f"/api/v1/s/{ids['final']}/quickcount").json()["result"]["sample"] == []


def test_forensics_json_and_fingerprint(client, ids):
    f = client.get(f"/api/v1/s/{ids['final']}/forensics?limit=3").json()["result"]
    assert f["tests"] and len(f["flagged_actas"]) <= 3
    png = client.get(f["fingerprint_png"])
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"


def _observer_records(final: pl.DataFrame, ids: list[str]) -> list[dict]:
    rows = final.filter(pl.col("acta_id").is_in(ids)).sort("acta_id").to_dicts()
    out = []
    for i, r in enumerate(rows):
        out.append({"acta_id": r["acta_id"], "observer_id": f"obs{i}",
                    "observed_at": "2021-06-06T20:00:00-05:00", "cast": r["cast"],
                    "blank": r["blank"], "null": r["null"], "v_castillo": r["v_castillo"],
                    "v_fujimori": r["v_fujimori"]})
    return out


def test_pvt_post(client, app, ids):
    final = app.state.backend.store.load_actas(ids["final"])
    counted = final.filter(pl.col("status") == "counted")["acta_id"].head(3).to_list()
    recs = _observer_records(final, counted)
    recs[1]["v_fujimori"] += 40  # the copy disagrees with the official acta
    r = client.post(f"/api/v1/s/{ids['final']}/pvt", json=recs)
    assert r.status_code == 200, r.text
    s = r.json()["result"]["summary"]
    assert s["n_copies"] == 3 and s["n_actas_with_copies"] == 3 and s["n_numeric"] >= 1
    bad = client.post(f"/api/v1/s/{ids['final']}/pvt", json=[{"acta_id": "1"}])
    assert bad.status_code == 422 and bad.json()["message_en"]
    assert client.post(f"/api/v1/s/{ids['final']}/pvt", json={"x": 1}).status_code == 422


def test_every_page_links_a_json_twin_that_answers(client, ids):
    sid = ids["final"]
    pages = ["/", "/snapshots/", "/history/", f"/s/{sid}/", f"/s/{sid}/map/area2/",
             f"/s/{sid}/projection/", f"/s/{sid}/contested/", f"/s/{sid}/verify/",
             f"/s/{sid}/quickcount/", f"/s/{sid}/forensics/", f"/s/{sid}/audit/",
             f"/diff/{ids['jun15']}/{sid}/", "/api/", f"/s/{ids['jun15']}/history/"]
    for path in pages:
        for lang in ("", "/en"):
            r = client.get(lang + path)
            assert r.status_code == 200, (lang + path, r.text[:300])
            assert f'<html lang="{"en" if lang else "es"}">' in r.text
            twin = re.search(r'<link rel="alternate" type="application/json" href="([^"]+)"',
                             r.text)
            assert twin, path
            j = client.get(twin.group(1))
            assert j.status_code == 200 and j.headers["content-type"].startswith(
                "application/json"), twin.group(1)


@pytest.mark.parametrize(("page", "api"), [
    ("/s/{r}/", "/api/v1/s/{r}/state/national"),
    ("/s/{r}/map/area2/", "/api/v1/s/{r}/map/area2"),  # the map, with the abroad panel
    ("/s/{r}/history/", "/api/v1/s/{r}/history"),
    (None, "/api/v1/s/{r}/projection-history"),
    ("/s/{r}/projection/", "/api/v1/s/{r}/projection"),
    ("/s/{r}/contested/", "/api/v1/s/{r}/contested"),
    ("/s/{r}/verify/", "/api/v1/s/{r}/verify"),
    ("/s/{r}/quickcount/?seed=dados", "/api/v1/s/{r}/quickcount?seed=dados&limit=3"),
    ("/s/{r}/forensics/", "/api/v1/s/{r}/forensics"),
    ("/s/{r}/audit/", "/api/v1/s/{r}/audit"),
    ("/diff/{r1}/{r}/", "/api/v1/diff/{r1}/{r}"),
])
def test_every_analysis_has_a_page_a_json_twin_and_a_permalink(client, ids, page, api):
    """Asked by a relative reference (latest-1: it moves with the count), every analysis
    names the permalink at full snapshot ids, and the permalink gives the same answer."""
    rel = {"r": "latest-1", "r1": "latest-2"}
    full = {"r": ids["jun15"], "r1": ids["jun9"]}
    j = client.get(api.format(**rel))
    assert j.status_code == 200, (api, j.text[:300])
    links = j.json()["links"]
    perm = links["permalink"]
    assert "latest" not in perm and full["r"] in perm, perm
    assert perm.split("?")[0].endswith(".json")
    again = client.get(perm)
    assert again.status_code == 200 and again.headers["cache-control"] == "public, max-age=86400"
    strip = ("links",)
    assert ({k: v for k, v in again.json().items() if k not in strip}
            == {k: v for k, v in j.json().items() if k not in strip}), perm
    if page is None:
        return
    html = client.get(page.format(**rel))
    assert html.status_code == 200, page
    footer = re.search(r'<a href="([^"]+)" class="permalink"', html.text).group(1)
    assert footer == page.format(**full), (page, footer)
    twin = re.search(r'<link rel="alternate" type="application/json" href="([^"]+)"',
                     html.text).group(1)
    assert "latest" not in twin and client.get(twin).status_code == 200
    assert links["html"].split("?")[0] == page.format(**full).split("?")[0]


def test_moving_pages_name_their_permalink(client, ids):
    sid = ids["final"]
    hist = client.get("/api/v1/history").json()
    assert hist["links"]["permalink"] == f"/api/v1/s/{sid}/history.json"
    bound = client.get(f"/api/v1/s/{ids['jun8']}/history").json()["history"]
    assert bound["points"][-1]["as_of"] == client.get(
        f"/api/v1/s/{ids['jun8']}").json()["snapshot"]["as_of"]
    assert len(bound["points"]) < len(hist["history"]["points"])
    page = client.get("/en/history/").text
    assert (f'<a href="/en/s/{sid}/history/" class="permalink">permalink of this page</a>'
            in page)
    assert "The history as it stood at snapshot" in client.get(
        f"/en/s/{ids['jun8']}/history/").text


def test_openapi_schema_documents_the_routes(client):
    spec = client.get("/api/v1/openapi.json").json()
    paths = spec["paths"]
    for p in ("/api/v1/s/{ref}/state/{level}", "/api/v1/s/{ref}/projection",
              "/api/v1/history", "/api/v1/diff/{older}/{newer}", "/api/v1/s/{ref}/pvt",
              "/api/v1/s/{ref}/forensics", "/api/v1/s/{ref}/audit"):
        assert p in paths
    assert not any(p.endswith(".json") for p in paths)
    schemas = spec["components"]["schemas"]
    assert {"CountState", "Projection", "LeadHistory", "Error"} <= set(schemas)
    assert "HTTPValidationError" not in schemas


def test_replay_hides_the_future_and_the_projection_holds(tmp_path_factory):
    app = replay_app(tmp_path_factory.getbasetemp())
    b = app.state.backend
    with TestClient(app) as c:
        b.clock.fixed = 0
        st = c.get("/api/v1/s/latest/state/national").json()
        assert st["snapshot"]["as_of"] == FIRST_CUT
        assert st["state"]["national"]["leader"] == "fujimori"
        assert st["links"]["permalink"].endswith(f"/{st['snapshot']['snapshot_id']}"
                                                 "/state/national.json")
        proj = c.get(f"/api/v1/s/{st['snapshot']['snapshot_id']}/projection").json()
        assert proj["reconstructed"] is True
        p_castillo = next(x["p_win"] for x in proj["projection"]["candidates"]
                          if x["code"] == "castillo")
        assert p_castillo > 0.5  # the raw count says Fujimori by 617,443; the model does not
        final = b.store.all_snapshots()[-1].snapshot_id
        hidden = c.get(f"/api/v1/s/{final}/state/national")
        assert hidden.status_code == 404 and "replay" in hidden.json()["message_en"]
        assert c.get("/api/v1/history").json()["history"]["points"][-1]["as_of"] == FIRST_CUT
        r = c.get("/api/v1/replay").json()
        assert r["replay"] and r["step"] == 0 and r["n_steps"] == 52
        home = c.get("/")
        assert home.headers["cache-control"] == "no-cache" and "data-replay" in home.text
        b.clock.fixed = 13  # 16:19, just after the flip
        st = c.get("/api/v1/s/latest/state/national").json()
        assert st["state"]["national"]["leader"] == "castillo"
        h = c.get("/api/v1/history").json()["history"]
        assert len(h["points"]) == 14 and len(h["lead_changes"]) == 1
        assert c.get("/").headers["etag"] != home.headers["etag"]


def test_export_site(app, ids, tmp_path):
    from escrutinio.api.export import export_site

    out = tmp_path / "site"
    report = export_site(None, out, snapshots="latest", langs=("es", "en"),
                         backend=app.state.backend)
    sid = ids["final"]
    assert (out / "index.html").is_file() and (out / "static" / "style.css").is_file()
    twin = out / "api" / "v1" / "s" / sid / "state" / "national.json"
    with TestClient(app) as c:
        assert twin.read_bytes() == c.get(f"/api/v1/s/{sid}/state/national.json").content
    page = (out / "s" / sid / "verify" / "index.html").read_text()
    assert 'id="pvt-form"' not in page  # no forms in the static copy
    assert not report["skipped"] or all(s["status"] == 422 for s in report["skipped"])
    # no dead link inside the copy, except to snapshots it does not hold
    exported = {p.name for p in (out / "s").iterdir()}
    n_links = 0
    for html in out.rglob("index.html"):
        for href in re.findall(r'(?:href|src)="(/[^"#?]*)', html.read_text()):
            if any(i not in exported for i in re.findall(r"[0-9a-f]{64}", href)):
                continue
            target = out / href.lstrip("/")
            assert (target / "index.html" if href.endswith("/") else target).is_file(), (
                html.relative_to(out), href)
            n_links += 1
    assert n_links > 100


def test_cli_commands_validate_their_arguments(tmp_path):
    import typer
    from typer.testing import CliRunner

    from escrutinio.cli import main
    from escrutinio.commands import web

    cli = typer.Typer()
    cli.callback()(main)
    web.register(cli)
    runner = CliRunner()
    r = runner.invoke(cli, ["--db", str(tmp_path / "none.duckdb"), "export-site",
                            str(tmp_path / "x"), "--json"])
    assert r.exit_code == 1 and "does not exist" in r.output
    r = runner.invoke(cli, ["--db", str(tmp_path / "none.duckdb"), "export-site",
                            str(tmp_path / "x"), "--snapshots", "some"])
    assert r.exit_code == 2 and "--snapshots" in r.output  # a bad option value: exit 2
    r = runner.invoke(cli, ["--db", str(tmp_path / "none.duckdb"), "serve", "--json"])
    assert r.exit_code == 1 and "does not exist" in r.output
    r = runner.invoke(cli, ["--lang", "en", "--db", str(tmp_path / "none.duckdb"), "serve",
                            "--baseline", "maybe"])
    assert r.exit_code == 2 and "--baseline" in r.output
    assert not Path(tmp_path / "x").exists()


def test_merkle_roots_are_published_and_proofs_verify(app, client, ids):
    """Each snapshot's Merkle root is in its JSON, in the log view and on its page; a proof
    for a real acta checks against it, and the same proof with one figure changed fails."""
    from escrutinio.store.ledger import InclusionProof, verify_proof

    sid = ids["final"]
    led = client.get(f"/api/v1/s/{sid}").json()["ledger"]
    assert led["tree_size"] == 86_488 and len(led["merkle_root"]) == 64
    log = client.get("/api/v1/ledger").json()
    row = next(s for s in log["snapshots"] if s["snapshot_id"] == sid)
    assert (row["merkle_root"], row["seq"]) == (led["merkle_root"], led["seq"])
    assert log["head"]["n_entries"] >= len(log["snapshots"]) == len(
        app.state.backend.store.all_snapshots())
    assert led["merkle_root"][:16] in client.get(f"/s/{sid}/").text
    acta = app.state.backend.store.load_actas(sid)["acta_id"][1234]
    r = client.get(f"/api/v1/s/{sid}/proof/{acta}")
    assert r.status_code == 200, r.text
    proof = InclusionProof.from_dict(r.json()["proof"])
    assert proof.merkle_root == led["merkle_root"] and proof.key == acta
    assert verify_proof(proof, led["merkle_root"])
    values = list(proof.values)
    i = proof.columns.index("v_castillo")
    values[i] = int(values[i]) + 1
    forged = InclusionProof.from_dict({**proof.to_dict(), "values": values})
    assert not verify_proof(forged, led["merkle_root"])
    assert client.get(f"/api/v1/s/{sid}/proof/no-such-acta").status_code == 404


def test_first_round_pages_show_the_race_for_the_runoff(tmp_path, data_dir):
    """Peru 2026 (no acta counts; about 12 of its national cuts, for speed): the overview says
    the acta counts are unknown and shows second place; the history draws the race and its
    one change."""
    from api_support import TEST_SIMS
    from escrutinio import service
    from escrutinio.api.app import create_app
    from escrutinio.sources.bundles import bundle_paths
    from escrutinio.store import open_store

    db = tmp_path / "p26.duckdb"
    snaps = [s for item, path in bundle_paths("peru-2026-first-round") for s in item.parse(path)]
    snaps = snaps[:1] + snaps[1::20] + snaps[-1:]  # the bundle, every 20th cut, the last
    with open_store(str(db)) as store:
        service.ingest(store, snaps)
    app = create_app(str(db), projection_sims=TEST_SIMS, warm=False)
    with TestClient(app) as c:
        home = c.get("/").text
        assert 'id="actas-unknown"' in home and 'id="runoff-race"' in home
        assert "26,491" in home and "no quedan votos" not in home
        hist = c.get("/en/history/").text
        assert 'id="runoff-changes"' in hist and "The race for the runoff" in hist
        assert hist.count("<li>In <strong>ROBERTO HELBERT SANCHEZ PALOMINO</strong>") == 1
        body = c.get("/api/v1/history.json").json()["history"]
        assert [(x["dropped"], x["entered"]) for x in body["runoff_changes"]] == [
            ("lopez_aliaga", "sanchez")]
        st = c.get("/api/v1/s/latest/state/national.json").json()["state"]
        assert st["national"]["actas_known"] is False
        assert st["hurdle"]["status"] == "unknown_remaining"
        assert st["runoff_race"]["leader"] == "sanchez"
        # the latest cut is projected from the series; the fan chart follows second place
        pr = c.get("/api/v1/s/latest/projection.json").json()["projection"]
        assert pr["basis"] == "series"
        fan = c.get("/api/v1/projection-history.json").json()["projection_history"]
        assert set(fan["pair"]) == {"sanchez", "lopez_aliaga"} and len(fan["points"]) > 10
        # a first round nobody wins: no "Se proyecta" winner; who goes to the runoff, and
        # P(someone passes 50%), on the page and in its JSON twin
        prj = c.get("/api/v1/s/latest/projection.json").json()
        call = re.search(r'id="call-status">([^<]+)<', home)[1]
        assert prj["projection"]["p_outright"] is not None
        if prj["projection"]["p_outright"] < 0.99:
            assert prj["headline"] in ("runoff", "tie")
            assert "Se proyecta:" not in call and "segunda vuelta" in call
            assert "P(alguien supera el 50%" in call
        assert prj["text_headline_es"] == call.replace("&#39;", "'")
        en = c.get("/en/").text
        assert "runoff" in re.search(r'id="call-status">([^<]+)<', en)[1]
        # candidates sorted by votes, each with its own colour (and pattern beyond eight)
        nat = st["national"]["candidates"]
        names = re.findall(r'<tr><th scope="row"><span class="swatch ?([a-z-]*)" '
                           r'style="background-color:(#[0-9a-f]{6})" aria-hidden="true">'
                           r'</span> ([^<]+)</th><td class="r">([\d,]+)</td>', home)
        assert len(names) == len(nat) > 8
        votes = [int(v.replace(",", "")) for *_, v in names]
        assert votes == sorted(votes, reverse=True)
        assert len({(pat, col) for pat, col, *_ in names}) == len(names)


def test_replay_banner_names_the_cut_whose_numbers_it_shows(tmp_path_factory):
    """Every cut of the 2021 night, in order, while the clock moves on during each page
    (every read of the clock is one step later than the one before): the banner's cut, the
    snapshot under it and its numbers are one and the same, and no cut is skipped."""
    from escrutinio import service
    from escrutinio.api.i18n import when
    from escrutinio.domain import Level

    # the session's replay app (its reconstruction and analyses are shared with the other
    # replay tests), its clock set moving for this test, and no page drawn before: every
    # page below is drawn while the clock moves on
    app = replay_app(tmp_path_factory.getbasetemp())
    b = app.state.backend
    clock = b.clock
    snaps = service.history_snapshots(b.store.inner, b.replay_contest)
    assert clock.n_steps == len(snaps) == 52
    reads = {"n": 0, "k": 0}

    def moving() -> float:  # the k-th cut at the first read, then one cut later per read
        reads["n"] += 1
        return clock.started + (reads["k"] + reads["n"] - 1 + 0.5) * clock.step_seconds

    saved = (clock.now_fn, clock.fixed, clock.loop, b.bodies)
    clock.now_fn, clock.fixed, clock.loop = moving, None, False
    b.bodies = type(b.bodies)(b.bodies.size)
    try:
        _banner_follows_the_clock(app, b, snaps, reads, when, Level)
    finally:
        clock.now_fn, clock.fixed, clock.loop, b.bodies = saved


def _banner_follows_the_clock(app, b, snaps, reads, when, Level) -> None:  # noqa: N803
    from zoneinfo import ZoneInfo

    shown = []
    lima = ZoneInfo("America/Lima")
    with TestClient(app) as c:
        for k, snap in enumerate(snaps):
            reads.update(n=0, k=k)
            r = c.get("/")
            assert r.status_code == 200, (k, r.text[:300])
            m = re.search(r'id="replay-status"[^>]*>corte (\d+) / (\d+), ([^<]+)<', r.text)
            assert m, k
            assert (int(m[1]), int(m[2])) == (k + 1, 52)
            assert m[3] == when(snap.as_of, "es", tz=lima)  # the cut's time, Lima time
            lede = re.search(r'class="lede">Instantánea de ([^·<]+)', r.text)[1].strip()
            assert lede == when(snap.as_of, "es", year=True, tz=lima)
            sid = re.search(r'class="permalink" title="([0-9a-f]{64})"', r.text)[1]
            shown.append(sid)
            n = b.state(snap, Level.NATIONAL).national
            margin = re.search(r'id="margin">.*?([\d,]+)</p>', r.text)[1]
            assert margin == f"{n.margin_votes:,}"
            assert f'id="pct-counted">{n.pct_counted:.3f}%<' in r.text
            assert f'data-step="{k}"' in r.text
            assert reads["n"] > 1  # the clock did move while the page was drawn
    assert shown == [s.snapshot_id for s in snaps]  # every cut, once, in order


def test_technical_tie_only_when_the_projection_cannot_tell(tmp_path_factory):
    """Replay cuts of 2021 whose leader is short of the call rule: a technical tie only
    when the central 95% interval of the final margin contains a tie; 'not called yet'
    with the probability otherwise (a 99% leader is not a tie)."""
    app = replay_app(tmp_path_factory.getbasetemp())
    b = app.state.backend
    seen = set()
    with TestClient(app) as c:
        for step in (0, 13, 30, 40):
            b.clock.fixed = step
            pr = c.get("/api/v1/s/latest/projection.json").json()
            m = pr["projection"]["margin"]
            iv = next(x for x in m["intervals"] if x["level"] == 0.95)
            status = pr["headline"]
            seen.add(status)
            home = c.get("/").text
            call = re.search(r'id="call-status">([^<]+)<', home)[1]
            assert call == pr["text_headline_es"]
            if pr["projection"]["call"]["status"] == "called":
                assert status == "called" and "Se proyecta" in call
            elif iv["lower"] <= 0 <= iv["upper"]:
                assert status == "tie" and call.startswith("Empate técnico")
            else:
                assert status == "not_yet" and "empate técnico" not in call.lower()
                assert call.startswith("Aún sin proyección")
                assert m["p_leader_ahead"] >= 0.95
    assert "tie" in seen and "not_yet" in seen  # both cases occur on the 2021 night


def test_candidate_colours_stay_distinct_beyond_the_palette():
    from escrutinio.api.pages import candidate_colour, candidate_pattern

    looks = [(candidate_colour(i), candidate_pattern(i)) for i in range(32)]
    assert len(set(looks)) == 32
    assert len({c for c, _ in looks}) == 24  # hue x lightness distinct for 24 candidates
    assert all(re.fullmatch(r"#[0-9a-f]{6}", c) for c, _ in looks)


# --- mesa lookup ---------------------------------------------------------------------------

def test_mesa_lookup_follows_a_mesa_through_the_jee(client, ids):
    """Mesa 000043 (Chachapoyas) went to the JEE on count night and was counted, with
    corrected figures, in the final file; typed as 43 it is found all the same."""
    r = client.get("/api/v1/mesa/43")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-cache"
    body = r.json()
    m = body["mesa"]
    assert m["acta_id"] == "000043" and m["area_names"] == ["AMAZONAS", "CHACHAPOYAS",
                                                             "CHACHAPOYAS"]
    assert [s["snapshot_id"] for s in m["states"]] == [ids["jun8"], ids["jun9"], ids["jun15"],
                                                        ids["final"]]
    assert [s["status"] for s in m["states"]] == ["jee", "jee", "jee", "counted"]
    assert m["states"][0]["changes"][0]["code"] == "published"
    assert "sent to the JEE" in m["states"][0]["changes"][0]["en"]
    last = {c["code"] for c in m["states"][-1]["changes"]}
    assert {"counted", "resolved", "corrected"} <= last
    # the official figures now are the final file's row
    final = client.app.state.backend.store.load_actas(ids["final"]).filter(
        pl.col("acta_id") == "000043").row(0, named=True)
    assert m["latest"]["votes"] == {"castillo": final["v_castillo"],
                                    "fujimori": final["v_fujimori"]}
    assert m["latest"]["cast"] == final["cast"] and m["latest"]["snapshot_id"] == ids["final"]
    assert m["states"][0]["as_of"].endswith("Z")  # UTC in the JSON
    assert body["copies"] is None and body["coordinator"] is False  # public: no copies
    assert body["links"]["html"] == "/mesa/000043/"
    assert client.get("/api/v1/mesa/000043.json").json()["mesa"] == {**m, "mesa": "000043"}
    # the page, in both languages, with the same figures and Lima time
    page = client.get("/mesa/43/")
    assert page.status_code == 200 and "private" not in page.headers["cache-control"]
    assert "<h1>Mesa 000043</h1>" in page.text
    assert "enviada al JEE" in page.text and "contabilizada" in page.text
    assert f'<td class="r">{final["v_castillo"]:,}</td>' in page.text
    assert "(UTC−5)" in page.text and 'id="mesa-copies-public"' in page.text
    assert 'id="mesa-copies"' not in page.text
    en = client.get("/en/mesa/000043/").text
    assert 'lang="en"' in en and "sent to the JEE" in en and "Official figures" in en
    # annulled after the JEE, with the row the ingest flagged for it
    ann = client.get("/api/v1/mesa/2336").json()["mesa"]
    assert [s["status"] for s in ann["states"]][:2] == ["jee", "annulled"]
    assert ann["reports"] and ann["reports"][0]["rule"] == "sum_mismatch_uncounted"
    assert "sum_mismatch_uncounted" in client.get("/mesa/2336/").text


def test_mesa_lookup_refuses_unknown_and_invalid_mesas(client):
    r = client.get("/api/v1/mesa/999999")
    assert r.status_code == 404
    assert "999999" in r.json()["message_es"] and "none of the 4 per-acta" in \
        r.json()["message_en"]
    for bad in ("ab$c", "x" * 41, "-1"):
        r = client.get(f"/api/v1/mesa/{bad}")
        assert r.status_code == 422, bad
        assert "no es un número de mesa" in r.json()["message_es"]
        assert "is not a mesa number" in r.json()["message_en"]
    assert client.get("/api/v1/mesa/" + "1" * 201).status_code == 422
    # the form: a number goes to the mesa's permalink; a bad one stays, with the message
    r = client.get("/mesa/?mesa=%2043%20", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/mesa/43/"
    r = client.get("/en/mesa/?mesa=a%24b")
    assert r.status_code == 422 and 'role="alert"' in r.text
    assert "is not a mesa number" in r.text and 'value="a$b"' in r.text
    r = client.get("/mesa/999999/")
    assert r.status_code == 404 and "no figura en ninguna" in r.text
    assert client.get("/mesa/").status_code == 200


def test_mesa_copies_for_coordinators_only(tmp_path, data_dir):
    """The observers' copies of a mesa and their verdict: to a coordinator (API token or
    coordination session), never on the public page or to an observer."""
    from server_support import copy_of, server_env

    with server_env("duckdb", tmp_path, None, data_dir) as env:
        c = env.client
        row = env.acta(inside=True, i=3)
        aid = row["acta_id"]
        altered = copy_of(row, v_castillo=row["v_castillo"] + 10, cast=row["cast"] + 10)
        for who, cid, copy in (("ana", "mesa-copy-0001", copy_of(row)),
                                ("coord", "mesa-copy-0002", altered)):
            r = c.post("/api/v1/observer/submissions", headers=env.h(who),
                       json={"client_id": cid, "copy": copy})
            assert r.status_code == 201, r.text
        public = c.get(f"/api/v1/mesa/{aid}")
        assert public.status_code == 200 and public.json()["copies"] is None
        mine = c.get(f"/api/v1/mesa/{aid}", headers=env.h("coord"))
        assert mine.status_code == 200 and mine.headers["cache-control"] == "private, no-store"
        cop = mine.json()["copies"]
        assert cop["n_copies"] == 2 and sum(cop["by_verdict"].values()) == 2
        assert cop["by_verdict"].get("exact") == 1
        cats = {s["reconciliation"]["category"] for s in cop["copies"]}
        assert "exact" in cats and len(cats) == 2
        assert c.get(f"/api/v1/mesa/{aid}", headers=env.h("ana")).status_code == 403
        assert c.get(f"/api/v1/mesa/{aid}",
                     headers={"Authorization": "Bearer esc_nonsense"}).status_code == 401
        page = c.get(f"/mesa/{aid}/")
        assert 'id="mesa-copies-public"' in page.text and 'id="mesa-copies"' not in page.text
        # a coordination session shows the copies on the page, never cached
        form = c.get("/coordinator/login")
        r = c.post("/coordinator/login", data={"token": env.tokens["coord"],
                                               "csrf": form.cookies.get("esc_csrf")},
                   follow_redirects=False)
        assert r.status_code == 303
        page = c.get(f"/mesa/{aid}/")
        assert 'id="mesa-copies"' in page.text and "idéntica" in page.text
        assert page.headers["cache-control"] == "private, no-store"
        assert 'id="mesa-verdict">2 copias' in page.text
        c.cookies.clear()
        assert 'id="mesa-copies"' not in c.get(f"/mesa/{aid}/").text


@pytest.mark.parametrize("kind", ["duckdb", "postgres"])
def test_store_acta_history_is_one_query_and_agrees_with_the_fallback(kind, tmp_path,
                                                                      request, data_dir):
    from escrutinio.store.base import Store
    from server_support import server_env

    pg = request.getfixturevalue("pg_server") if kind == "postgres" else None
    with server_env(kind, tmp_path, pg, data_dir) as env:
        st = env.store
        cid = st.list_snapshots()[0].contest_id
        ids = [*env.frame["acta_id"].head(3).to_list(), "no-such-acta"]
        got = st.acta_history(cid, ids)
        want = Store.acta_history(st, cid, ids)
        assert got.height == 3 and got.columns == want.columns
        assert got.sort("acta_id").equals(want.sort("acta_id"))
        assert st.acta_history(cid, ["no-such-acta"]).height == 0
        rep = st.acta_reports(cid, ids)
        assert rep.columns == Store.acta_reports(st, cid, ids).columns


def test_contest_time_zone_from_the_sidecar_then_the_country_then_utc():
    from datetime import UTC, datetime

    from escrutinio.api.i18n import contest_zone, when

    cut = datetime(2021, 6, 7, 1, 23, tzinfo=UTC)
    lima = contest_zone("PE", {})
    assert when(cut, "es", tz=lima) == "6 jun 20:23 (UTC−5)"
    assert when(cut, "en", year=True, tz=lima) == "6 Jun 2021 20:23 (UTC−5)"
    # a sidecar's timezone wins (the latest snapshot that declares one), an unknown one
    # is skipped; no country default -> UTC, said so
    md = {"a": {"timezone": "America/Santiago"}, "b": {"timezone": "Mars/Olympus"}}
    assert when(cut, "es", tz=contest_zone("PE", md)) == "6 jun 21:23 (UTC−4)"
    assert when(cut, "es", tz=contest_zone("XX", {})) == "7 jun 01:23 (UTC)"
    assert when(cut, "es", tz=contest_zone(None, {"a": {"timezone": "Asia/Kolkata"}})) \
        == "7 jun 06:53 (UTC+5:30)"


def test_one_declaration_gives_the_json_route_and_the_page(app):
    """Every resource declared in api/resources/ is routed from its one declaration: the
    JSON route at its path and its ``.json`` twin, and, when it has a page, the page in
    both languages; every documented GET under /api/v1 comes from a module there."""
    from escrutinio.api.resources import API, PAGES, resources

    routes = {(r.path, m) for r in app.routes for m in (getattr(r, "methods", None) or ())}
    declared = resources()
    assert {r.name for r in declared} >= {
        "state", "map", "projection", "contested", "verify", "forensics", "audit",
        "quickcount", "history", "history-until", "diff", "snapshots"}
    for res in declared:
        if res.api is not None:
            assert res in API, res.name
            for path in ("/api/v1" + res.api, "/api/v1" + res.api + ".json"):
                assert (path, "GET") in routes, path
        if res.page is not None:
            assert res in PAGES, res.name
            for prefix in ("", "/en"):
                assert (prefix + res.page, "GET") in routes, prefix + res.page
    twins = [r for r in declared if r.api is not None and r.page is not None]
    assert len(twins) >= 11  # the pages whose JSON twin is the same declaration
