"""Uploads to the HTTP API and to the pages' forms, on the real 2021 runoff: observers'
copies for the parallel tabulation (JSON records, CSV body, multipart file, gzip, Parquet)
and the quick count's reports (estimate, fusion with the official count, refused reports).

Every bad upload must get a 4xx naming what was wrong (file, line, field, rule), never a
500; a body over the limit is a 413 and an unknown content type a 415.
"""

from __future__ import annotations

import gzip
import io
import re

import polars as pl
import pytest
from fastapi.testclient import TestClient

from api_support import FINAL_CASTILLO, FINAL_FUJIMORI, live_app

COLS = ["acta_id", "observer_id", "observed_at", "cast", "blank", "null", "v_castillo",
        "v_fujimori"]
TRUE_SHARE = FINAL_CASTILLO / (FINAL_CASTILLO + FINAL_FUJIMORI)  # 50.1247%
SEED = "dados-2021"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return live_app(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def ids(app):
    snaps = app.state.backend.store.all_snapshots()
    actas = [s for s in snaps if s.kind.value == "actas"]
    return {"final": actas[-1].snapshot_id, "jun8": actas[-4].snapshot_id,
            "first_cut": snaps[0].snapshot_id}


@pytest.fixture(scope="module")
def final(app, ids):
    return app.state.backend.store.load_actas(ids["final"])


def copies(final: pl.DataFrame, acta_ids: list[str]) -> pl.DataFrame:
    """Observers' copies equal to the official final actas (the copy format's columns)."""
    return (final.filter(pl.col("acta_id").is_in(acta_ids)).sort("acta_id")
            .with_columns(pl.format("obs{}", pl.int_range(pl.len())).alias("observer_id"),
                          pl.lit("2021-06-06T20:00:00-05:00").alias("observed_at"))
            .select(COLS))


def csv_bytes(df: pl.DataFrame) -> bytes:
    return df.write_csv().encode()


@pytest.fixture(scope="module")
def pvt_copies(final):
    """Six copies: four exact, one altered by 40 votes, then two bad rows (CSV lines 8, 9)."""
    ids = final.filter(pl.col("status") == "counted")["acta_id"].head(5).to_list()
    df = copies(final, ids).with_columns(
        pl.when(pl.int_range(pl.len()) == 1).then(pl.col("v_fujimori") + 40)
        .otherwise(pl.col("v_fujimori")).alias("v_fujimori"))
    text = csv_bytes(df)
    text += f"{ids[0]},obs-x,2021-06-06T20:05:00-05:00,10,-1,0,5,4\n".encode()  # line 7
    text += f"{ids[1]},,2021-06-06T20:05:00-05:00,10,1,1,4,4\n".encode()  # line 8
    return df, text


def _summary(r) -> dict:
    assert r.status_code == 200, r.text[:500]
    return r.json()["result"]["summary"]


def test_pvt_accepts_csv_multipart_json_gzip_and_parquet_alike(client, ids, pvt_copies):
    df, text = pvt_copies
    url = f"/api/v1/s/{ids['final']}/pvt"
    body = client.post(url, content=text, headers={"Content-Type": "text/csv"})
    s = _summary(body)
    assert s["n_copies"] == 5 and s["n_actas_with_copies"] == 5
    assert s["n_alarms"] == 1 and s["n_numeric"] == 1  # the altered copy, and only it
    alarm = body.json()["result"]["alarms"][0]
    assert alarm["acta_id"] == df["acta_id"][1] and alarm["net_change"] in (40, -40)
    rejected = body.json()["result"]["rejected"]
    assert [(x["line"], x["field"], x["rule"]) for x in rejected] == [
        (7, "blank", "negative_count"), (8, "observer_id", "missing_observer")]
    assert all(x["message_es"] and x["message_en"] for x in rejected)
    assert body.headers["cache-control"] == "no-store"

    multi = client.post(url, files={"copies": ("copias.csv", text, "text/csv")})
    gz = client.post(url, files={"copies": ("copias.csv.gz", gzip.compress(text), "")})
    buf = io.BytesIO()
    df.write_parquet(buf)
    parquet = client.post(url, files={"copies": ("copias.parquet", buf.getvalue(), "")})
    records = client.post(url, json=df.to_dicts())
    for other in (multi, gz, parquet, records):
        o = _summary(other)
        assert (o["n_copies"], o["categories"], o["n_alarms"]) == (
            s["n_copies"], s["categories"], s["n_alarms"])
    assert multi.json()["result"]["rejected"] == rejected  # same file, same report


@pytest.mark.parametrize(("body", "ctype", "status", "rule"), [
    (b"acta_id,observer_id\n1,a\n", "text/csv", 422, "missing_columns"),
    (",".join(COLS).encode() + b"\n1,o,2021-06-06T20:00:00Z,diez,1,1,4,4\n", "text/csv", 422,
     "not_an_integer"),
    (",".join(COLS).encode() + b"\n1,o,ayer,10,1,1,4,4\n", "text/csv", 422, "bad_timestamp"),
    # CR-only line endings (old Mac) are read like any other file: the bad figure is named
    (",".join(COLS).encode() + b"\r1,o,2021-06-06T20:00:00Z,diez,1,1,4,4\r", "text/csv", 422,
     "not_an_integer"),
    (b"   \n", "text/csv", 422, "empty_body"),
    (b"[{", "application/json", 422, "bad_json"),
    (b'{"acta_id": "1"}', "application/json", 422, "not_an_array"),
    (b"[1, 2]", "application/json", 422, "not_an_object"),
    (b"\x1f\x8bnot really gzip", "text/csv", 422, "gzip_corrupt"),
    (b"<copias/>", "application/xml", 415, None),
    (b"acta_id", "", 415, None),
])
def test_pvt_bad_uploads_are_4xx_naming_the_problem(client, ids, body, ctype, status, rule):
    r = client.post(f"/api/v1/s/{ids['final']}/pvt", content=body,
                    headers={"Content-Type": ctype} if ctype else {})
    assert r.status_code == status, r.text[:300]
    j = r.json()
    assert j["status"] == status and j["message_es"] and j["message_en"]
    if rule is not None:
        assert j["detail"][0]["rule"] == rule and j["detail"][0]["file"] == "request body"
        assert f"[{rule}]" in j["message_en"]


def test_pvt_multipart_problems_and_where(client, ids):
    url = f"/api/v1/s/{ids['final']}/pvt"
    no_file = client.post(url, data={"seed": "x"}, files={"other": ("", b"", "text/csv")})
    assert no_file.status_code == 422 and no_file.json()["detail"][0]["rule"] == "no_file"
    bad = client.post(url, files={"copies": ("mis-copias.csv", b"acta_id\n1\n", "text/csv")})
    assert bad.status_code == 422 and bad.json()["detail"][0]["file"] == "mis-copias.csv"
    raw = client.post(url, content=b"--x\r\nnothing", headers={
        "Content-Type": "multipart/form-data; boundary=zzz"})
    assert raw.status_code == 422
    aggregate = client.post(f"/api/v1/s/{ids['first_cut']}/pvt", content=b"a",
                            headers={"Content-Type": "text/csv"})
    # a unit snapshot is compared at its published level (#16.4): the copies are read
    assert aggregate.status_code == 422 and "missing" in aggregate.json()["message_en"]
    unknown = client.post("/api/v1/s/0123456789abcdef/pvt", content=b"a",
                          headers={"Content-Type": "text/csv"})
    assert unknown.status_code == 404


def test_size_limits_are_413(app, client, ids, pvt_copies):
    _, text = pvt_copies
    b = app.state.backend
    url = f"/api/v1/s/{ids['final']}/pvt"
    saved = b.upload_limit
    try:
        b.upload_limit = 200
        r = client.post(url, content=text, headers={"Content-Type": "text/csv"})
        assert r.status_code == 413 and "200 bytes" in r.json()["message_en"]
        page = client.post(f"/en/s/{ids['final']}/verify/",
                           files={"copies": ("c.csv", text, "text/csv")})
        assert page.status_code == 413 and "exceeds the limit" in page.text
        b.upload_limit = 4096
        bomb = gzip.compress(b"0" * 40_000)  # inflates past 8 x 4 KiB
        assert len(bomb) < 4096
        r = client.post(url, files={"copies": ("c.csv.gz", bomb, "")})
        assert r.status_code == 413 and "decompressed" in r.json()["message_en"]
    finally:
        b.upload_limit = saved


def _sample(client, sid: str, seed: str = SEED) -> list[dict]:
    r = client.get(f"/api/v1/s/{sid}/quickcount?seed={seed}&limit=100000")
    return r.json()["result"]["sample"]


def test_quickcount_estimate_and_fusion(client, ids, final):
    sample = _sample(client, ids["jun8"])
    assert len(sample) == 1500
    reports = copies(final.filter(pl.col("status") == "counted"),
                     [x["acta_id"] for x in sample])
    outside = final.filter(~pl.col("acta_id").is_in([x["acta_id"] for x in sample]))[
        "acta_id"][0]
    text = csv_bytes(reports) + f"{outside},o,2021-06-06T20:00:00Z,10,1,1,4,4\n".encode()
    text += b"000123,o,2021-06-06T20:00:00Z,10,1,1,4,\n"  # rejected: empty figure
    url = f"/api/v1/s/{ids['jun8']}/quickcount/estimate?seed={SEED}"
    r = client.post(url, content=text, headers={"Content-Type": "text/csv"})
    assert r.status_code == 200, r.text[:500]
    res = r.json()["result"]
    est, fus = res["estimate"], res["fusion"]
    # the sample alone: a technical tie whose interval covers the final result
    assert est["kind"] == "quick_count" and est["candidate_a"] == "castillo"
    assert est["call"] == "technical_tie" and "Empate técnico" in est["call_es"]
    assert est["combined"]["lower"] < TRUE_SHARE < est["combined"]["upper"]
    assert est["n_reports"] == reports.height == res["coverage"]["n_reported"]
    # fused with the official count of 8 June (95.7% of electors counted): narrower
    assert fus["kind"] == "fusion" and 0.95 < fus["known_fraction_electors"] < 0.96
    assert fus["combined"]["lower"] < TRUE_SHARE < fus["combined"]["upper"]
    width = fus["combined"]["upper"] - fus["combined"]["lower"]
    assert width < 0.25 * (est["combined"]["upper"] - est["combined"]["lower"])
    cov = res["coverage"]
    assert cov["n_sample"] == 1500 and cov["share"] == pytest.approx(reports.height / 1500)
    assert sum(s["sample"] for s in cov["strata"]) == 1500
    assert sum(s["reported"] for s in cov["strata"]) == reports.height
    # the report outside the sample is refused, the broken row rejected: both named
    assert [(x["line"], x["acta_id"], x["rule"]) for x in res["refused"]] == [
        (reports.height + 2, outside, "not_in_sample")]
    assert SEED in res["refused"][0]["message_en"]
    assert [(x["line"], x["rule"], x["field"]) for x in res["rejected"]] == [
        (reports.height + 3, "missing_count", "v_fujimori")]
    prov = res["provenance"]
    assert prov["seed"] == SEED and prov["snapshot_id"] == ids["jun8"]
    assert prov["fused_with"] == ids["jun8"] and prov["escrutinio_version"]
    assert re.fullmatch(r"[0-9a-f]{64}", prov["reports_sha256"])
    assert re.fullmatch(r"[0-9a-f]{64}", prov["snapshot_source_sha256"])
    assert est["provenance"]["snapshot_ids"] == [ids["jun8"]]
    assert r.json()["links"]["html"] == f"/s/{ids['jun8']}/quickcount/?seed={SEED}"
    # JSON records give the same estimate; no fusion when asked
    same = client.post(url + "&fuse=none", json=reports.to_dicts()).json()["result"]
    assert same["estimate"]["combined"] == est["combined"] and same["fusion"] is None


def test_quickcount_estimate_refuses_what_it_cannot_use(client, ids, final):
    sample = _sample(client, ids["final"])
    sampled = {x["acta_id"] for x in sample}
    outside = final.filter(~pl.col("acta_id").is_in(list(sampled))
                           & (pl.col("status") == "counted"))["acta_id"].head(20).to_list()
    url = f"/api/v1/s/{ids['final']}/quickcount/estimate"
    body = csv_bytes(copies(final, outside))
    none_in = client.post(f"{url}?seed={SEED}", content=body,
                          headers={"Content-Type": "text/csv"})
    assert none_in.status_code == 422
    assert "is the seed right?" in none_in.json()["message_en"]
    assert "¿es la semilla correcta?" in none_in.json()["message_es"]
    no_seed = client.post(url, content=body, headers={"Content-Type": "text/csv"})
    assert no_seed.status_code == 422 and "seed" in no_seed.json()["message_en"]
    agg = client.post(f"{url}?seed={SEED}&fuse={ids['first_cut']}", content=body,
                      headers={"Content-Type": "text/csv"})
    assert agg.status_code == 422 and "per-acta" in agg.json()["message_en"]
    unknown = client.post(f"{url}?seed={SEED}&fuse=0123456789abcdef", content=body,
                          headers={"Content-Type": "text/csv"})
    assert unknown.status_code == 404
    # the final count is complete: the fusion is the official result itself
    mine = copies(final.filter(pl.col("status") == "counted"), list(sampled))
    r = client.post(f"{url}?seed={SEED}", files={"reports": ("r.csv", csv_bytes(mine), "")})
    fus = r.json()["result"]["fusion"]
    assert fus["combined"]["method"] == "official"
    assert fus["combined"]["estimate"] == pytest.approx(TRUE_SHARE, abs=1e-12)


def test_verify_page_form_without_javascript(client, ids, pvt_copies):
    _, text = pvt_copies
    sid = ids["final"]
    page = client.get(f"/s/{sid}/verify/").text
    form = re.search(r'<form id="pvt-form"[^>]*>', page).group(0)
    assert 'method="post"' in form and 'enctype="multipart/form-data"' in form
    assert f'action="/s/{sid}/verify/#pvt"' in form
    assert 'name="copies"' in page
    r = client.post(f"/s/{sid}/verify/", files={"copies": ("copias.csv", text, "text/csv")})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    assert 'id="pvt-result"' in r.text and "Alertas por materialidad" in r.text
    rejected = re.search(r'id="pvt-rejected".*?</table>', r.text, re.S).group(0)
    assert "negative_count" in rejected and "missing_observer" in rejected
    en = client.post(f"/en/s/{sid}/verify/", files={"copies": ("c.csv", b"acta_id\n1\n", "")})
    assert en.status_code == 422 and 'id="pvt-error"' in en.text
    assert "required columns are missing" in en.text and '<html lang="en">' in en.text


def test_quickcount_page_form(client, ids, final):
    sid = ids["final"]
    sample = _sample(client, sid)
    reports = copies(final.filter(pl.col("status") == "counted"),
                     [x["acta_id"] for x in sample])
    page = client.get(f"/s/{sid}/quickcount/?seed={SEED}").text
    assert 'id="qc-form"' in page and f'value="{SEED}"' in page
    r = client.post(f"/s/{sid}/quickcount/", data={"seed": SEED},
                    files={"reports": ("reportes.csv", csv_bytes(reports), "text/csv")})
    assert r.status_code == 200, r.text[-800:]
    call = re.search(r'id="qc-call">(.*?)</p>', r.text, re.S).group(1)
    assert "Empate técnico" in call
    assert f"{reports.height:,} de 1,500" in r.text and reports.height < 1500  # some annulled
    assert SEED in re.search(r'id="qc-provenance">(.*?)</p>', r.text, re.S).group(1)
    en = client.post(f"/en/s/{sid}/quickcount/", data={"seed": SEED},
                     files={"reports": ("r.csv", csv_bytes(reports), "")})
    assert "Technical tie" in en.text and "already complete" in en.text
    no_seed = client.post(f"/en/s/{sid}/quickcount/",
                          files={"reports": ("r.csv", csv_bytes(reports), "")})
    assert no_seed.status_code == 422 and "public seed" in no_seed.text


def test_openapi_documents_the_uploads(client):
    spec = client.get("/api/v1/openapi.json").json()["paths"]
    for path, field in (("/api/v1/s/{ref}/pvt", "copies"),
                        ("/api/v1/s/{ref}/quickcount/estimate", "reports")):
        op = spec[path]["post"]
        content = op["requestBody"]["content"]
        assert set(content) == {"application/json", "text/csv", "multipart/form-data"}
        assert content["multipart/form-data"]["schema"]["required"] == [field]
        assert {"413", "415", "422"} <= set(op["responses"])
    params = {p["name"]: p for p in spec["/api/v1/s/{ref}/quickcount/estimate"]["post"][
        "parameters"]}
    assert params["seed"]["required"] is True
