"""One projection for every caller (service.project): the CLI and the API agree, the
baseline is any earlier contest at any granularity (and says so), and bad per-unit input
is completed from the national row and flagged, never projected silently.

Real data: the 2021 runoff (per-acta state of 8 June, department/district/national cuts),
the 2021 first round per acta (the default baseline), the 2026 first-round district
bundle (a per-unit baseline finer than departments) and the 2026 national series."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from escrutinio import service
from escrutinio.cli import app as main_app
from escrutinio.domain import SnapshotKind
from escrutinio.projection.baseline_join import BaselineJoinError, join_for_units
from escrutinio.projection.model import ModelParams
from escrutinio.store.duckdb_store import DuckDBStore

runner = CliRunner()
RUNOFF = "pe-2021-presidencial-2v"
FIRST = "pe-2021-presidencial-1v"
P2026 = "pe-2026-presidencial-1v"


def _strict(text: str) -> Any:
    def bad(name: str) -> Any:
        raise AssertionError(f"non-strict JSON constant {name}")

    return json.loads(text, parse_constant=bad)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    from escrutinio.sources.bundles import BUNDLES

    want = {"progress_national", "progress_subnational/departamentos",
            "progress_subnational/distritos",
            "actas/hist_actas_electorales_20210608T1121_cadd76f.csv.gz",
            "actas/hist_actas_electorales_20210608T2023_78f03ce.csv.gz",
            "presidencial-actas_ronderos.pe.csv.gz",
            "ikusij_first_round_district_bundle_20260504.json.gz",
            "ikusij_first_round_national_timeseries.csv.gz"}
    parsed = [s for name in ("peru-2021-runoff", "peru-2021-first-round",
                             "peru-2026-first-round")
              for item in BUNDLES[name] if item.relpath in want
              for s in item.parse(data_dir / item.dataset / item.relpath)]
    path = tmp_path_factory.mktemp("svc") / "s.duckdb"
    with DuckDBStore(path) as store:
        service.ingest(store, parsed)
    return path


@pytest.fixture(scope="module")
def snaps(db: Path) -> dict[str, str]:
    with DuckDBStore(db, read_only=True) as store:
        r = store.list_snapshots(RUNOFF)
        s26 = [s for s in store.list_snapshots(P2026) if s.level == "national" and s.n_rows]
        actas = [s.snapshot_id for s in r if s.kind is SnapshotKind.ACTAS]
        return {"acta": actas[0], "acta_later": actas[-1],
                "dept": [s.snapshot_id for s in r if s.level == "area1"][1],
                "district": next(s.snapshot_id for s in r if s.level == "area3"),
                "series": s26[len(s26) // 2].snapshot_id}


def _cli(db: Path, *args: str) -> Any:
    res = runner.invoke(main_app, ["--db", str(db), *args])
    return res


def test_cli_and_api_give_the_same_projection(db: Path, snaps: dict[str, str]) -> None:
    """The 8 June bug: the dashboard used the first round as baseline and the CLI did not.
    Now both call service.project: same snapshot, seed and sims, same figures, on a
    per-acta snapshot, a per-unit snapshot and a cut of a national series."""
    cli = {}
    for key in ("acta", "dept", "series"):
        contest = P2026 if key == "series" else RUNOFF
        res = _cli(db, "project", "--contest", contest, "--snapshot", snaps[key],
                   "--sims", "600", "--seed", "7", "--json")
        assert res.exit_code == 0, res.stdout
        cli[key] = _strict(res.stdout)
    from escrutinio.api.app import create_app

    # the baseline chosen by the user: a per-unit 2026 baseline, or none
    for name, opt in (("dept-2026", ["--baseline-contest", P2026]),
                      ("acta-none", ["--no-baseline"])):
        res = _cli(db, "project", "--contest", RUNOFF, "--snapshot",
                   snaps[name.split("-")[0]], "--sims", "600", "--seed", "7", *opt, "--json")
        assert res.exit_code == 0, res.stdout
        cli[name] = _strict(res.stdout)
    query = {"dept-2026": f"&baseline_contest={P2026}", "acta-none": "&baseline_contest=none"}
    app = create_app(str(db), projection_sims=600, warm=False)
    with TestClient(app) as c:
        r = c.get(f"/api/v1/s/{snaps['district']}/projection?baseline_contest=nope")
        assert r.status_code == 404 and FIRST in r.text  # names the contests it holds
        for key, p in cli.items():
            snap = snaps[key.split("-")[0]]
            r = c.get(f"/api/v1/s/{snap}/projection?sims=600&seed=7{query.get(key, '')}")
            assert r.status_code == 200, r.text
            body = _strict(r.text)
            api = body["projection"]
            # the page's note says which baseline was used, or that there was none
            if key == "acta":
                assert f"Baseline: baseline {FIRST} (by default" in body["note_en"]
                assert f"Línea de base: línea de base {FIRST} (por omisión" in body["note_es"]
            if key == "acta-none":
                assert "No baseline." in body["note_en"]
            assert api["basis"] == p["basis"] == {"acta": "actas", "dept": "units",
                                                  "series": "series"}[key.split("-")[0]]
            for field in ("candidates", "margin", "races", "components", "call"):
                assert api[field] == p[field], (key, field)
            assert api["diagnostics"]["baseline"] == p["diagnostics"]["baseline"]
            assert api["provenance"] == p["provenance"]
    # the per-acta one had the first round as baseline in both, and says so
    base = cli["acta"]["diagnostics"]["baseline"]
    assert base["contest_id"] == FIRST and base["default"] is True
    assert base["join_level"] == "acta" and 0.3 < base["coverage_remaining"] < 1.0
    assert base["snapshot_id"] in cli["acta"]["provenance"]["snapshot_ids"]
    assert cli["acta"]["provenance"]["parameters"]["baseline"]["contest_id"] == FIRST
    assert cli["acta-none"]["diagnostics"]["baseline"] is None
    assert cli["dept-2026"]["diagnostics"]["baseline"]["contest_id"] == P2026
    assert cli["dept-2026"]["margin"] != cli["dept"]["margin"]


def test_a_later_per_acta_snapshot_learns_from_the_earlier_ones(
        db: Path, snaps: dict[str, str]) -> None:
    """8 June 20:23 after 8 June 11:21: the per-acta projection reads the earlier state as
    history (its arrival shock is learned from it, docs/projection.md §4), names it in
    its provenance, and the CLI and the API give the same figures."""
    assert snaps["acta_later"] != snaps["acta"]
    res = _cli(db, "project", "--contest", RUNOFF, "--snapshot", snaps["acta_later"],
               "--sims", "600", "--seed", "7", "--json")
    assert res.exit_code == 0, res.stdout
    cli = _strict(res.stdout)
    assert cli["diagnostics"]["arrival"]["n_history"] == 1
    assert snaps["acta"] in cli["provenance"]["snapshot_ids"]
    from escrutinio.api.app import create_app

    app = create_app(str(db), projection_sims=600, warm=False)
    with TestClient(app) as c:
        r = c.get(f"/api/v1/s/{snaps['acta_later']}/projection?sims=600&seed=7")
        assert r.status_code == 200, r.text
        api = _strict(r.text)["projection"]
    for field in ("candidates", "margin", "races", "components", "call", "provenance"):
        assert api[field] == cli[field], field
    assert api["diagnostics"]["arrival"] == cli["diagnostics"]["arrival"]
    text = _cli(db, "project", "--contest", RUNOFF, "--snapshot", snaps["acta_later"],
                "--sims", "300")
    assert text.exit_code == 0 and "1 " in text.stdout
    assert "Desvío de llegada" in text.stdout or "Arrival shift" in text.stdout, text.stdout


def test_no_baseline_turns_the_default_off(db: Path, snaps: dict[str, str]) -> None:
    res = _cli(db, "project", "--contest", RUNOFF, "--snapshot", snaps["acta"], "--sims",
               "400", "--no-baseline", "--json")
    assert res.exit_code == 0, res.stdout
    p = _strict(res.stdout)
    assert p["diagnostics"]["baseline"] is None
    assert p["provenance"]["parameters"]["baseline"] is None
    assert p["provenance"]["snapshot_ids"] == [snaps["acta"]]
    res = _cli(db, "--lang", "en", "project", "--contest", RUNOFF, "--snapshot",
               snaps["acta"], "--sims", "400")
    assert res.exit_code == 0 and "Baseline: baseline pe-2021-presidencial-1v" in res.stdout


def test_per_unit_baseline_finer_than_the_count_is_summed_up(
        db: Path, snaps: dict[str, str]) -> None:
    """The 2026 district bundle (per unit, area3) as baseline of a count by department:
    summed up through the geography to the 25 departments; used for the per-acta count
    too, each acta getting its district's earlier shares."""
    res = _cli(db, "project", "--contest", RUNOFF, "--snapshot", snaps["dept"],
               "--baseline-contest", P2026, "--sims", "400", "--json")
    assert res.exit_code == 0, res.stdout
    b = _strict(res.stdout)["diagnostics"]["baseline"]
    assert (b["baseline_level"], b["count_level"], b["join_level"]) == ("area3", "area1",
                                                                        "area1")
    assert b["n_joined"] == 25 and b["default"] is False and b["contest_id"] == P2026
    # the units still to come abroad (the national remainder) are not covered
    assert 0.0 < b["coverage_remaining"] < 1.0
    res = _cli(db, "project", "--contest", RUNOFF, "--snapshot", snaps["acta"],
               "--baseline-contest", P2026, "--sims", "400", "--json")
    assert res.exit_code == 0, res.stdout
    b = _strict(res.stdout)["diagnostics"]["baseline"]
    assert (b["baseline_level"], b["join_level"]) == ("area3", "area3")
    assert b["coverage_remaining"] > 0.9


def test_coarser_or_disjoint_baseline_is_a_clear_error(db: Path,
                                                       snaps: dict[str, str]) -> None:
    # a department cut as the baseline of a district cut: coarser, refused naming both
    res = _cli(db, "project", "--contest", RUNOFF, "--snapshot", snaps["district"],
               "--baseline-contest", RUNOFF, "--baseline", snaps["dept"], "--json")
    assert res.exit_code == 2, res.stdout
    err = _strict(res.stdout)
    assert "area1" in err["message_es"] and "area3" in err["message_es"]
    assert "coarser" in err["message_en"]
    # an unknown baseline contest names what the store holds (the old message said
    # "there are no snapshots in the store")
    res = _cli(db, "project", "--contest", RUNOFF, "--baseline-contest", "nope", "--json")
    assert res.exit_code == 2 and FIRST in _strict(res.stdout)["message_en"]
    # a baseline that shares no code with the count
    with DuckDBStore(db, read_only=True) as store:
        cut = service.unit_cut(store, store.snapshot(snaps["dept"], contest_id=RUNOFF))
        base = store.load_units(snaps["district"])
    foreign = base.with_columns(("X" + pl.col("unit_code")).alias("unit_code"))
    with pytest.raises(BaselineJoinError) as exc:
        join_for_units(cut.units, foreign, base_kind="units", parents={})
    assert "ningún código" in exc.value.message_es and "no code" in exc.value.message_en


def _broken_cut(store: DuckDBStore, info: Any, drop: list[str], *,
                actas_total_delta: int = 0) -> Any:
    """A department cut as a scraper that missed ``drop`` would publish it: the file's own
    national row (the national cut of the same minute) plus the other departments."""
    from escrutinio.sources.base import ParsedSnapshot

    nat = service.national_cut_at(store, info)
    assert nat is not None
    nrow = store.load_units(nat.snapshot_id)
    if actas_total_delta:
        nrow = nrow.with_columns(pl.col("actas_total") + actas_total_delta)
    units = store.load_units(info.snapshot_id).filter(~pl.col("unit_code").is_in(drop))
    frame = pl.concat([nrow.select(units.columns), units])
    return ParsedSnapshot(store.contest(RUNOFF), SnapshotKind.UNITS, info.as_of,
                          "test://broken-scrape", info.source_sha256, "test.broken",
                          frame, part=f"broken-{info.as_of.isoformat()}-{actas_total_delta}",
                          label=f"scrape {info.as_of:%d %H:%M}", level="area1",
                          geography=store.geography(RUNOFF))


def test_units_missing_from_a_scrape_use_the_national_row(
        db: Path, tmp_path: Path) -> None:
    """Cajamarca, Cusco and Puno missing from a cut of 7 June 18:40Z (92% counted): the
    departments alone put Fujimori ahead, the file's own national row Castillo. The
    projection starts from the national row, names the missing units and says the two
    disagree; a total of actas that changes between cuts is flagged."""
    drop = ["060000", "080000", "210000"]
    with DuckDBStore(db, read_only=True) as src:
        depts = [s for s in src.list_snapshots(RUNOFF) if s.level == "area1"][:2]
        broken = [_broken_cut(src, depts[0], drop),
                  _broken_cut(src, depts[1], drop, actas_total_delta=500)]
        nat_votes = {c: int(broken[0].frame.filter(pl.col("level") == "national")[f"v_{c}"][0])
                     for c in ("castillo", "fujimori")}
    assert nat_votes["castillo"] > nat_votes["fujimori"]
    units = broken[0].frame.filter(pl.col("level") == "area1")
    assert int(units["v_fujimori"].sum()) > int(units["v_castillo"].sum())
    path = tmp_path / "b.duckdb"
    with DuckDBStore(path) as store:
        service.ingest(store, broken)
    with DuckDBStore(path, read_only=True) as store:
        infos = [s for s in store.list_snapshots(RUNOFF)]
        p0 = service.project(store, infos[0], params=ModelParams(n_sims=500))
        p1 = service.project(store, infos[1], params=ModelParams(n_sims=500))
        hist = service.history(store, RUNOFF)
    counted = {c.code: c.counted for c in p0.candidates}
    assert counted == nat_votes  # never the partial sum
    assert p0.margin.counted_margin > 0 and p0.margin.leader == "castillo"
    codes = {w["code"]: w for w in p0.diagnostics["warnings"]}
    assert "units_missing" in codes and "leader_differs" in codes
    for d in drop:
        assert d in codes["units_missing"]["es"] and d in p0.diagnostics["missing_units"]
    assert p0.diagnostics["national_row"] == "own"
    assert "CAJAMARCA" in codes["units_missing"]["en"]
    codes1 = {w["code"] for w in p1.diagnostics["warnings"]}
    assert "actas_total_changed" in codes1 and "actas_total_changed" not in codes
    # history shows these cuts (a national row plus area rows), with the right leader
    assert [pt.leader for pt in hist.points] == ["castillo", "castillo"]
    assert [w.code for w in hist.warnings] == ["actas_total_changed"]
    assert hist.warnings[0].snapshot_id == infos[1].snapshot_id


def test_history_says_when_totals_go_down(db: Path) -> None:
    """ONPE 7 June 23:18Z: Fujimori has 276 votes fewer than at 22:48Z (sheets pulled for
    review); shown in history with a message, in the JSON too."""
    res = _cli(db, "history", "--contest", RUNOFF, "--json")
    assert res.exit_code == 0, res.stdout
    h = _strict(res.stdout)
    down = [w for w in h["warnings"] if w["code"] == "totals_down"]
    first = down[0]
    assert first["label"].endswith("2021-06-07T23:18:00Z")
    assert "fujimori −276" in first["es"] and "fujimori −276" in first["en"]
    assert not [w for w in h["warnings"] if w["code"] == "actas_total_changed"]
    res = _cli(db, "--lang", "en", "history", "--contest", RUNOFF)
    assert res.exit_code == 0 and "fujimori −276" in res.stdout


def test_sheets_under_review_are_spoken_of_only_where_there_are_some(
        db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The sentence on what becomes of sheets under review (rates unknown for a country
    without measured ones) is printed for a projection that has such sheets (a 2021
    department cut: its actas at the JEE), never for one without any (a national series,
    or the same cut without them): a parameter that did not enter the result is not
    presented as if it had."""
    from escrutinio.commands.projection import _print_projection
    from escrutinio.projection.result import Component

    with DuckDBStore(db, read_only=True) as store:
        info = next(s for s in store.list_snapshots(RUNOFF) if s.level == "area1")
        p = service.project(store, info, params=ModelParams(n_sims=300, seed=0))
        contest = store.contest(RUNOFF)
    assert any(c.component is Component.JEE for c in p.components)
    mark = "tasa desconocida / unknown rate (test)"  # whichever language is set
    unknown = {"basis": "unknown", "es": mark, "en": mark}
    p = replace(p, diagnostics={**p.diagnostics, "review_outcomes": unknown})
    _print_projection(p, contest)
    assert mark in capsys.readouterr().out
    _print_projection(replace(p, components=tuple(
        c for c in p.components if c.component is not Component.JEE)), contest)
    assert mark not in capsys.readouterr().out


def test_review_rates_are_peru_only_for_peru(db: Path) -> None:
    with DuckDBStore(db, read_only=True) as store:
        pe = store.contest(RUNOFF)
        jee, why = service.review_outcomes(store, pe)
        assert why["basis"] == "peru" and jee.p_annulled == pytest.approx(187 / 1354)
        other = replace(pe, id="cl-test", country="CL")
        jee, why = service.review_outcomes(store, other)
    assert why["basis"] == "unknown" and why["p_annulled"] is None
    assert jee.p_annulled == 0.5 and jee.rate_prior_n == 2.0
    assert "desconoce" in why["es"] and "unknown" in why["en"]


def test_replay_units_keeps_pct_counted_and_is_strict_json(db: Path) -> None:
    res = _cli(db, "replay", "--contest", RUNOFF, "--mode", "units", "--sims", "300",
               "--from-pct", "90", "--json")
    assert res.exit_code == 0, res.stdout
    r = _strict(res.stdout)
    # 7 department + 4 district cuts; those without a national cut of the same minute
    # (they may not cover the country) or that the model cannot project are skipped,
    # each with its reason
    assert r["n_cuts"] + len(r["skipped"]) == 11 and r["n_cuts"] >= 2
    assert all(s["reason_es"] and s["reason_en"] for s in r["skipped"])
    assert not r["wrong_calls"]
    assert all(c["pct_counted"] is not None for c in r["cuts"])
    assert all(c["naive_margin"] is not None for c in r["cuts"])
    cov = {c["level"]: c for c in r["coverage"]}
    assert cov[0.9]["n_cuts_from"] > 0 and cov[0.9]["share_from"] is not None
    names = {b["name"] for b in r["baselines"]}
    assert names == {"projection", "raw", "naive"}
    assert r["brier"] is not None and "skipped" in r
    # the provenance names the baseline every cut was projected with (the first round)
    assert r["provenance"]["parameters"]["baseline"]["contest_id"] == FIRST
    assert r["provenance"]["parameters"]["basis"] == "units"
    # as text, cuts of several snapshots at one time say which snapshot each row is
    text = _cli(db, "--lang", "en", "replay", "--contest", RUNOFF, "--mode", "units",
                "--sims", "300", "--from-pct", "90")
    assert text.exit_code == 0
    times = [c["as_of"] for c in r["cuts"]]
    assert len(set(times)) < len(times)  # department and district cuts of one minute
    assert "┃ snapshot" in text.stdout
    assert "ONPE departamento" in text.stdout and "ONPE distrito" in text.stdout
    # this store's latest per-acta state (8 June 11:21) still had actas at the JEE: the
    # replay is scored against a count that had not ended, and says so
    fp = r["final_pct_counted"]
    assert fp is not None and 90.0 < fp < 100.0
    assert f"{fp:.2f}% of actas counted" in " ".join(text.stdout.split())
    assert "--final" in text.stdout


def test_a_cut_that_cannot_be_projected_is_skipped(db: Path) -> None:
    """One cut whose projection fails (e.g. a row without sheet counts) is skipped with
    its reason, listed in the result and its JSON; the replay scores the others."""
    from escrutinio.errors import EscrutinioError
    from escrutinio.projection.replay import CutMeta, run_replay

    with DuckDBStore(db, read_only=True) as store:
        cuts = [s for s in store.list_snapshots(RUNOFF) if s.level == "area1"][:2]
        metas = []
        for s in cuts:
            cut = service.unit_cut(store, s)
            metas.append(CutMeta(s.as_of, s.label, s.snapshot_id, cut.pct_counted,
                                 cut.counted(store.contest(RUNOFF))))

        def one(i: int) -> Any:
            if i == 0:
                raise EscrutinioError("fila sin actas", "row without sheet counts")
            return service.project(store, cuts[i], params=ModelParams(n_sims=200))

        out = run_replay(RUNOFF, "units", metas, one, {"castillo": 2, "fujimori": 1})
    assert out.n_cuts == 1 and len(out.skipped) == 1
    assert out.skipped[0].index == 0 and out.skipped[0].reason_en == "row without sheet counts"
    assert [c.snapshot_id for c in out.cuts] == [cuts[1].snapshot_id]


def test_every_command_writes_strict_json(db: Path, snaps: dict[str, str],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """--json is strict JSON everywhere (NaN/Infinity become null): the shared encoder,
    and the output of the commands over a real store, parsed refusing NaN/Infinity.
    (forensics and verify-log take ~15 s each here: they share the same encoder.)"""
    import ast

    from escrutinio.commands.common import emit_json

    emit_json({"a": float("nan"), "b": [float("inf"), -float("inf"), 1.5]})
    assert _strict(capsys.readouterr().out) == {"a": None, "b": [None, None, 1.5]}
    # no command writes JSON to stdout but through emit_json
    root = Path(__file__).resolve().parents[1] / "src" / "escrutinio"
    for path in [root / "cli.py", *sorted((root / "commands").glob("*.py"))]:
        if path.name == "common.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in ("dumps", "dump") \
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "json":
                # only log records (live.py's JSON-lines formatter), never the output
                assert path.name == "live.py", f"{path.name}:{node.lineno} json.{node.func.attr}"
    with DuckDBStore(db, read_only=True) as store:
        nat = [s.snapshot_id for s in store.list_snapshots(RUNOFF) if s.level == "national"]
    runs = [["snapshots"], ["status", "--contest", RUNOFF], ["history", "--contest", RUNOFF],
            ["history", "--contest", P2026], ["diff", nat[0], nat[-1], "--contest", RUNOFF],
            ["verify", "--contest", RUNOFF], ["contested", "--contest", RUNOFF],
            ["datasets"], ["project", "--contest", RUNOFF, "--sims", "300"],
            ["replay", "--contest", RUNOFF, "--mode", "series", "--sims", "200"],
            ["quickcount", "--contest", RUNOFF]]  # the last one: an error, as JSON
    for args in runs:
        res = _cli(db, *args, "--json")
        assert res.exit_code in (0, 1, 2), (args, res.stdout)
        out = _strict(res.stdout)
        assert out, args


def test_project_and_replay_series_agree_on_the_same_cut(db: Path) -> None:
    """The 2026 national series: `replay --mode series` up to a cut and `project` of that
    cut give the same projection (same cuts seen, same model, same seed)."""
    with DuckDBStore(db, read_only=True) as store:
        nat = [s for s in store.list_snapshots(P2026) if s.level == "national" and s.n_rows]
        cut = nat[12]
        r = service.replay(store, params=ModelParams(n_sims=300), contest_id=P2026,
                           mode="series", final_ref=cut.snapshot_id)
        p = service.project(store, cut, params=ModelParams(n_sims=300))
    assert r.n_cuts == 13 and not r.skipped and r.cuts[-1].snapshot_id == cut.snapshot_id
    assert r.cuts[-1].pct_counted is not None and r.cuts[-1].pct_counted > 70
    race = next(x for x in p.races if {x.leader, x.trailer} == {r.candidate_a,
                                                                   r.candidate_b})
    sign = 1.0 if race.leader == r.candidate_a else -1.0
    assert r.cuts[-1].median == pytest.approx(sign * race.median)
    lo, hi = sorted((sign * race.interval(0.9).lower, sign * race.interval(0.9).upper))
    assert r.cuts[-1].intervals["0.9"] == pytest.approx((lo, hi))


def test_outside_peru_review_rates_are_not_perus(tmp_path: Path, data_dir: Path) -> None:
    """A US count (docs/examples/us_2020_progress.py, New York's feed): the projection
    states that the review outcome rates are unknown instead of applying Peru's JEE rates,
    and its series replay has % counted (the feed's own estimate) at every cut."""
    import importlib.util
    import sys

    path = Path(__file__).resolve().parents[1] / "docs/examples/us_2020_progress.py"
    spec = importlib.util.spec_from_file_location("us_2020_progress_svc", path)
    assert spec is not None and spec.loader is not None
    us = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = us
    spec.loader.exec_module(us)
    files = us.convert(data_dir, tmp_path / "ny", by_state=True,
                       states=["New York", "Texas"])
    ny = next(f for f in files if f.name.startswith("us-2020-president-ny"))
    tx = next(f for f in files if f.name.startswith("us-2020-president-tx"))
    # a sidecar that declares an earlier round (here, only to exercise the plumbing: Texas)
    side = Path(f"{ny}.contest.json")
    d = json.loads(side.read_text())
    d["previous_round"] = "us-2020-president-tx"
    side.write_text(json.dumps(d))
    db = tmp_path / "ny.duckdb"
    res = _cli(db, "ingest", str(tx), "--json")
    assert res.exit_code == 0, res.stdout
    res = _cli(db, "ingest", str(ny), "--json")
    assert res.exit_code == 0, res.stdout
    with DuckDBStore(db, read_only=True) as store:
        assert service.default_baseline_contest(store, "us-2020-president-ny") == \
            "us-2020-president-tx"
        assert service.default_baseline_contest(store, "us-2020-president-tx") is None
    res = _cli(db, "project", "--contest", "us-2020-president-ny", "--sims", "400", "--json")
    assert res.exit_code == 0, res.stdout
    p = _strict(res.stdout)
    # the declared earlier round is tried by default; a national series cannot join it:
    # said, not an error, and nothing is used
    assert p["diagnostics"]["baseline"] is None
    unused = [w for w in p["diagnostics"]["warnings"] if w["code"] == "baseline_unused"]
    assert unused and "us-2020-president-tx" in unused[0]["en"]
    assert p["diagnostics"]["review_outcomes"]["basis"] == "unknown"
    assert p["provenance"]["parameters"]["review_outcomes"] == "unknown"
    assert p["provenance"]["parameters"]["jee"]["p_annulled"] == 0.5
    # a series has no sheets under review: the parameter is recorded, never printed as if
    # it mattered
    res = _cli(db, "--lang", "en", "project", "--contest", "us-2020-president-ny", "--sims",
               "400")
    assert res.exit_code == 0 and "Final margin" in res.stdout
    assert "Sheets under review" not in res.stdout
    res = _cli(db, "replay", "--contest", "us-2020-president-ny", "--mode", "series",
               "--sims", "200", "--json")
    assert res.exit_code == 0, res.stdout
    r = _strict(res.stdout)
    assert r["n_cuts"] > 50 and all(c["pct_counted"] is not None for c in r["cuts"])
