"""What a newcomer's Chile 2021 per-unit trial left (docs/trials/newcomer-chile-2021.md).

Small per-unit cuts and a national series built in ``tmp_path`` through the generic
format (docs/formats.md §3, §3b). The national row's remainder is called abroad only when
that is known; per-unit components count units (and say how many actas/mesas they hold);
a series' own share counted is shown by ``status`` and ``history``; a cut that leaves
units out says so in ``status``; a rejected row counts once; the country's word for actas
(Chile: mesas) heads ``status``; the replay names a candidate by the one short-name rule.
"""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from escrutinio.cli import app

runner = CliRunner()

HEADER = ("level,unit_code,unit_name,abroad,actas_total,actas_counted,actas_processed,cast,"
          "v_ana,v_beto")
#: code, name, mesas; Austral is abroad only where a test says so
REGIONS = [("01", "Norte", 100), ("02", "Centro", 120), ("03", "Sur", 80), ("04", "Austral", 60)]


def _sidecar(country: str, i: int) -> dict[str, object]:
    return {"format": "escrutinio-tabular", "format_version": 2, "kind": "units",
            "contest": {"id": "xx-cuts", "name": "Prueba", "kind": "runoff",
                        "country": country, "date": "2021-11-21", "majority_threshold": None,
                        "candidates": [{"code": "ana", "name": "Ana María Pérez Soto"},
                                       {"code": "beto", "name": "Beto Luis Díaz Rojas"}]},
            "timezone": "America/Santiago", "as_of": f"2021-11-21T2{i}:00:00",
            "label": f"corte {i}"}


def _rows(i: int, drop: tuple[str, ...] = (), abroad: str | None = None,
          extra_national: int = 0, bad: str | None = None) -> list[str]:
    """Cut ``i`` (1-3): the national row first (plus ``extra_national`` mesas the units do
    not list: a part of the country no table holds), then every region not in ``drop``;
    region ``bad`` has more counted mesas than mesas (two acta rules broken)."""
    units = []
    for code, name, n in REGIONS:
        c = int(n * (0.2 + 0.25 * i))
        a, b = c * 110 + int(code) * 7, c * 90 + int(code) * 13
        units.append((code, name, "true" if code == abroad else "false", n, c, c, a + b, a, b))
    extra_c = int(extra_national * (0.2 + 0.25 * i))
    nat = [sum(int(u[k]) for u in units) for k in range(3, 9)]
    nat = [nat[0] + extra_national, nat[1] + extra_c, nat[2] + extra_c,
           nat[3] + 200 * extra_c, nat[4] + 90 * extra_c, nat[5] + 110 * extra_c]
    lines = ["national,,País,," + ",".join(map(str, nat))]
    for u in units:
        if u[0] in drop:
            continue
        vals = list(u[3:])
        if u[0] == bad:
            vals[1] = vals[0] + 5  # counted > total and counted > processed
        lines.append(f"area1,{u[0]},{u[1]},{u[2]}," + ",".join(map(str, vals)))
    return lines


def _store(tmp_path: Path, country: str, *, drop_last: tuple[str, ...] = (),
           abroad: str | None = None, extra_national: int = 0,
           bad_last: str | None = None) -> str:
    folder = tmp_path / f"cuts-{country}"
    folder.mkdir()
    for i in (1, 2, 3):
        last = i == 3
        rows = _rows(i, drop_last if last else (), abroad, extra_national,
                     bad_last if last else None)
        (folder / f"cut-{i}.csv").write_text("\n".join([HEADER, *rows]) + "\n", "utf-8")
        (folder / f"cut-{i}.csv.contest.json").write_text(json.dumps(_sidecar(country, i)),
                                                          "utf-8")
    db = str(tmp_path / f"{country}.duckdb")
    res = runner.invoke(app, ["--db", db, "ingest", str(folder)])
    assert res.exit_code == 0, res.output
    return db


def _project(db: str) -> dict[str, object]:
    res = runner.invoke(app, ["--db", db, "project", "--sims", "300", "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def _components(p: dict[str, object]) -> dict[str, dict[str, object]]:
    comps = p["components"]
    assert isinstance(comps, list)
    return {c["component"]: c for c in comps}


# --- 1, 2: the national remainder and what per-unit components count --------------------

def test_missing_units_are_not_called_abroad(tmp_path: Path) -> None:
    """Chile: two regions left out of the last cut. The national-minus-units remainder is
    "not in the listed units", never "pending actas abroad" (the source has no abroad)."""
    db = _store(tmp_path, "CL", drop_last=("03", "04"))
    comps = _components(_project(db))
    assert "abroad" not in comps
    rest = comps["outside_units"]
    assert rest["n_items"] == 1
    # the remainder holds the two regions' pending mesas: (80 - 76) + (60 - 57)
    assert rest["n_actas"] == 4 + 3
    assert "not in the listed units" in rest["label_en"]
    assert "fuera de las unidades listadas" in rest["label_es"]
    text = runner.invoke(app, ["--db", db, "--lang", "en", "project", "--sims", "300"])
    assert text.exit_code == 0, text.output
    assert "abroad" not in text.output
    assert "not in the listed units" in text.output


def test_remainder_known_abroad_stays_abroad(tmp_path: Path) -> None:
    """Peru's pack says its unit tables leave abroad out: the remainder is abroad (as the
    ONPE replays pin). Elsewhere it is abroad when the units missing are abroad ones."""
    pe = _components(_project(_store(tmp_path, "PE", extra_national=50)))
    assert "abroad" in pe and "outside_units" not in pe
    (tmp_path / "xx").mkdir()
    xx = _components(_project(_store(tmp_path / "xx", "XX", drop_last=("04",),
                                     abroad="04")))
    assert "abroad" in xx and "outside_units" not in xx


def test_unit_components_count_units_and_their_mesas(tmp_path: Path) -> None:
    """A per-unit projection counts units, and says how many actas (Chile: mesas) they
    hold: never "pending actas at home: 4" for four regions."""
    db = _store(tmp_path, "CL")
    home = _components(_project(db))["pending_home"]
    # cut 3 counts int(n * 0.95) of each region's n mesas: 5 + 6 + 4 + 3 pending
    assert home["n_items"] == 4 and home["n_actas"] == 18
    assert home["label_en"] == "units with polling stations pending at home"
    # in Chile's own words (the pack's polling station: "mesa receptora")
    assert home["label_es"] == "unidades con mesas receptoras pendientes en el país"
    text = runner.invoke(app, ["--db", db, "--lang", "en", "project", "--sims", "300"])
    assert "units with polling stations pending at home: 4 (18 polling stations)" \
        in text.output
    assert "pending actas at home" not in text.output


def test_the_court_is_the_countrys_in_a_projection(tmp_path: Path) -> None:
    """Sheets held for review are "at the JEE" only in Peru: a Chilean per-unit cut with
    ``actas_jee`` names Chile's court (TRICEL) in the projection's labels, from the one
    service function (CLI and API alike)."""
    folder = tmp_path / "cuts-jee"
    folder.mkdir()
    header = HEADER.replace("actas_processed,", "actas_processed,actas_jee,")
    for i in (1, 2, 3):
        lines = []
        for line in _rows(i):
            cells = line.split(",")
            # the national row and each region: 2 sheets at the court (of those pending)
            cells.insert(7, "8" if cells[0] == "national" else "2")
            lines.append(",".join(cells))
        (folder / f"cut-{i}.csv").write_text("\n".join([header, *lines]) + "\n", "utf-8")
        (folder / f"cut-{i}.csv.contest.json").write_text(json.dumps(_sidecar("CL", i)),
                                                          "utf-8")
    db = str(tmp_path / "jee.duckdb")
    res = runner.invoke(app, ["--db", db, "ingest", str(folder)])
    assert res.exit_code == 0, res.output
    court = _components(_project(db))["jee"]
    assert "TRICEL" in court["label_es"] and "TRICEL" in court["label_en"], court
    assert "JEE" not in json.dumps(court)


# --- 3: a series' own share counted ------------------------------------------------------

SERIES_HEADER = "level,unit_code,unit_name,abroad,cast,v_ana,v_beto,as_of,pct_votes_counted"


def test_series_share_counted_in_status_and_history(tmp_path: Path) -> None:
    path = tmp_path / "series.csv"
    path.write_text("\n".join([
        SERIES_HEADER,
        'national,"",País,,1000,600,400,2021-11-21T21:00:00,0.25',
        'national,"",País,,2000,1150,850,2021-11-21T22:00:00,0.5',
        'national,"",País,,3000,1650,1350,2021-11-21T23:00:00,0.75']) + "\n", "utf-8")
    side = _sidecar("CL", 1)
    side.pop("as_of")
    side["label"] = "serie"
    (tmp_path / "series.csv.contest.json").write_text(json.dumps(side), "utf-8")
    db = str(tmp_path / "s.duckdb")
    assert runner.invoke(app, ["--db", db, "ingest", str(path)]).exit_code == 0

    st = runner.invoke(app, ["--db", db, "--lang", "en", "status"])
    assert st.exit_code == 0, st.output
    assert "does not publish how much remains" not in st.output
    assert "Votes counted according to the source: 75.0% (the source's own estimate" \
        in st.output
    # the hurdle is exact or unknown: the source's estimate is no bound
    js = json.loads(runner.invoke(app, ["--db", db, "status", "--json"]).stdout)
    assert js["source_pct_counted"] == 75.0
    assert js["hurdle"]["status"] == "unknown_remaining"
    assert "estimate" in js["hurdle"]["basis"]
    assert "cannot be computed exactly (the projection uses that estimate" \
        in " ".join(st.output.split())

    # the dashboard's overview says it too, as the source's estimate
    from fastapi.testclient import TestClient

    from escrutinio.api.app import create_app

    with TestClient(create_app(db, projection_sims=200)) as client:
        page = client.get("/?lang=en")
        assert page.status_code == 200
        assert 'id="source-pct-counted"' in page.text and "75.0%" in page.text

    h = runner.invoke(app, ["--db", db, "--lang", "en", "history"])
    assert h.exit_code == 0, h.output
    assert "25.00% (source)" in h.output and "75.00% (source)" in h.output
    hj = json.loads(runner.invoke(app, ["--db", db, "history", "--json"]).stdout)
    assert [p["source_pct_counted"] for p in hj["points"]] == [25.0, 50.0, 75.0]
    assert all(p["pct_counted"] is None for p in hj["points"])  # no acta counts: unknown


# --- 4: a cut that leaves units out says so ----------------------------------------------

def test_status_says_which_units_are_missing(tmp_path: Path) -> None:
    db = _store(tmp_path, "CL", drop_last=("03", "04"))
    res = runner.invoke(app, ["--db", db, "--lang", "en", "status", "--level", "area1"])
    assert res.exit_code == 0, res.output
    flat = " ".join(res.output.split())
    assert "2 units of the national row are missing: 03 Sur, 04 Austral" in flat
    assert "the listed units cover 220 of the national row's 360 polling stations " \
           "(140 missing)" in flat
    js = json.loads(runner.invoke(app, ["--db", db, "status", "--level", "area1",
                                        "--json"]).stdout)
    assert [w["code"] for w in js["coverage_warnings"]] == ["units_missing"]
    # a complete cut: nothing to say
    full = runner.invoke(app, ["--db", db, "--lang", "en", "status", "-s", "corte 2",
                               "--level", "area1"])
    assert "units of the national row" not in full.output and "Warning" not in full.output


def test_peru_tables_without_abroad_are_no_gap(tmp_path: Path) -> None:
    """Peru's department tables never hold abroad: a national row larger than its units
    is not a missing unit (the naive warning the colleague dropped)."""
    db = _store(tmp_path, "PE", extra_national=50)
    res = runner.invoke(app, ["--db", db, "--lang", "en", "status", "--level", "area1"])
    assert res.exit_code == 0, res.output
    assert "units of the national row" not in res.output and "Warning" not in res.output
    assert "do not add up" not in res.output


# --- 5: a rejected row counts once ---------------------------------------------------------

def test_rejected_row_counted_once_with_every_rule(tmp_path: Path) -> None:
    db = _store(tmp_path, "CL", bad_last="02")
    snaps = json.loads(runner.invoke(app, ["--db", db, "snapshots", "--json"]).stdout)
    assert [s["n_rejected"] for s in snaps] == [0, 0, 1]
    res = runner.invoke(app, ["--db", db, "--lang", "en", "status"])
    assert res.exit_code == 0, res.output
    assert "1 row was rejected on ingest" in res.output
    flat = " ".join(res.output.split())
    assert ("row 4 (area1/02): more counted actas than actas in total; more counted actas "
            "than processed actas") in flat


# --- 6: the country's word for actas --------------------------------------------------------

def test_status_uses_the_country_word_for_actas(tmp_path: Path) -> None:
    cl = runner.invoke(app, ["--db", _store(tmp_path, "CL"), "status", "--level",
                             "national"])
    assert cl.output.splitlines()[1].startswith("Mesas receptoras contabilizadas 342 de 360")
    (tmp_path / "pe").mkdir()
    pe = runner.invoke(app, ["--db", _store(tmp_path / "pe", "PE"), "--lang", "en",
                             "status", "--level", "national"])
    assert pe.output.splitlines()[1].startswith("Actas counted 342 of 360")


# --- 7: the replay's column names a candidate by the one short-name rule --------------------

def test_replay_header_uses_the_short_name_rule(tmp_path: Path) -> None:
    db = _store(tmp_path, "CL")
    res = runner.invoke(app, ["--db", db, "replay", "--mode", "units", "--sims", "200"])
    assert res.exit_code == 0, res.output
    assert "P(Pérez)" in res.output  # "Ana María Pérez Soto": never P(Ana)
    assert "P(Ana)" not in res.output
