"""Count state, hurdle, lead history and diff: real data and properties of the maths."""

from __future__ import annotations

from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from escrutinio.count import (
    HurdleStatus,
    SnapshotRef,
    count_state_actas,
    hurdle,
    remaining_two_candidate_actas,
)
from escrutinio.diff import diff_actas
from escrutinio.domain import Level
from escrutinio.sources.onpe_files import parse_provisional, parse_ronderos

ACTAS = "peru-2021-runoff/actas"
EARLY = "hist_actas_electorales_20210608T1121_cadd76f.csv.gz"


@pytest.fixture(scope="module")
def final(data_dir: Path):
    return parse_ronderos(data_dir / ACTAS / "actas_electorales_ronderos.pe.csv.gz",
                          as_of="2021-06-17T00:00:00Z")


@pytest.fixture(scope="module")
def early(data_dir: Path):
    return parse_provisional(data_dir / ACTAS / EARLY)


@pytest.fixture(scope="module")
def june15(data_dir: Path):
    return parse_provisional(data_dir / ACTAS / "actas_electorales.csv.gz")


def ref(p) -> SnapshotRef:
    return SnapshotRef(p.snapshot_id, p.as_of, p.label)


def test_final_state_all_levels(final) -> None:
    names = dict(zip(final.geography["code"], final.geography["name"], strict=True))
    for level, n_units in ((Level.AREA1, 30), (Level.AREA2, None), (Level.AREA3, None)):
        s = count_state_actas(final.frame, final.contest, ref(final), level=level, names=names)
        n = s.national
        assert (n.candidates[0].votes, n.candidates[1].votes) == (8_835_653, 8_791_696)
        assert n.margin_votes == 43_957 and n.leader == "castillo"
        assert n.pct_counted == 100.0 and n.pct_processed == 100.0
        assert n.actas_annulled == 220 and n.actas_not_installed == 6
        # every level sums back to the nation
        assert sum(u.candidates[0].votes for u in s.units) == 8_835_653
        assert sum(u.actas_total for u in s.units) == 86_488
        if n_units:
            assert len(s.units) == n_units
        assert s.hurdle.status is HurdleStatus.NOTHING_REMAINING
    assert s.abroad is not None and s.home is not None
    assert (s.abroad.candidates[0].votes, s.abroad.candidates[1].votes) == (112_671, 220_588)
    assert s.abroad.leader == "fujimori"
    assert 0.249 < n.margin_pct_valid < 0.250  # 43,957 / 17,627,349 valid
    lima = next(u for u in count_state_actas(final.frame, final.contest, ref(final),
                                             level=Level.AREA1, names=names).units
                if u.code == "140000")
    assert lima.name == "LIMA" and lima.leader == "fujimori"


def test_partial_state_keeps_procesadas_and_contabilizadas_apart(early) -> None:
    s = count_state_actas(early.frame, early.contest, ref(early), level=Level.NATIONAL)
    n = s.national
    assert n.actas_counted == 82_795  # 82,788 counted + 4 annulled + 3 not installed
    assert n.actas_processed == n.actas_counted + 1_367
    assert n.pct_processed > n.pct_counted
    assert n.actas_jee == 1_367 and n.actas_pending == 2_326
    assert n.actas_total == n.actas_processed + n.actas_pending
    # the trailer needs more than half of what remains, and can still catch up
    h = s.hurdle
    assert h.leader == "castillo" and h.trailer == "fujimori"
    assert h.status is HurdleStatus.CAN_CATCH_UP
    assert Fraction(1, 2) < h.required_share < 1
    assert 300_000 < h.remaining_two_candidate < 1_000_000
    # s = 1/2 + M/(2R), exactly
    assert h.required_share == Fraction(1, 2) + Fraction(h.margin, 2 * h.remaining_two_candidate)


def test_remaining_uses_provisional_figures_of_jee_actas(early) -> None:
    f = early.frame
    r_all = remaining_two_candidate_actas(f, "castillo", "fujimori")
    # removing the JEE actas' figures can only change R by their own provisional votes
    jee = f.filter(pl.col("status") == "jee")
    jee_two = int((jee["v_castillo"].fill_null(0) + jee["v_fujimori"].fill_null(0)).sum())
    r_no_jee = remaining_two_candidate_actas(f.filter(pl.col("status") != "jee"),
                                             "castillo", "fujimori")
    # JEE actas with figures add exactly their provisional votes; the few without figures
    # (36 on 8 June) are estimated from their electors (at most 300 each)
    no_figs = jee.filter(pl.col("v_castillo").is_null() | pl.col("v_fujimori").is_null())
    extra = r_all - r_no_jee - jee_two
    assert no_figs.height == 36
    assert 0 < extra <= int(no_figs["electors"].sum())


def test_diff_finds_irregular_transitions_and_changes(early, june15) -> None:
    d = diff_actas(early.frame, june15.frame, early.contest, ref(early), ref(june15), limit=None)
    assert d.n_state_changes > 0
    by = {(t.from_status, t.to_status): t for t in d.transitions}
    assert by[("pending", "counted")].n > 0 and by[("pending", "counted")].allowed
    # real: 9 actas counted on 8 June were back at the JEE on 15 June — irregular
    assert by[("counted", "jee")].n == 9 and not by[("counted", "jee")].allowed
    assert d.n_irregular == len(d.irregular) >= 9
    assert d.national_delta["actas_counted"] == 83_467 - 82_788


def test_diff_alarm_on_changed_counted_acta(final) -> None:
    f = final.frame
    tampered = f.with_columns(
        pl.when(pl.col("acta_id") == "000001").then(pl.col("v_castillo") - 10)
        .otherwise(pl.col("v_castillo")).alias("v_castillo"))
    later = SnapshotRef("b" * 64, datetime(2021, 6, 18, tzinfo=UTC), "tampered")
    d = diff_actas(f, tampered, final.contest, ref(final), later)
    assert d.n_counted_changed == 1
    assert d.counted_changed[0]["acta_id"] == "000001"
    assert d.counted_changed[0]["d_v_castillo"] == -10
    assert d.n_went_down == 1 and d.went_down[0]["field"] == "v_castillo"
    same = diff_actas(f, f, final.contest, ref(final), later)
    assert same.n_state_changes == 0 and same.alarms == 0


# --- hurdle properties ---------------------------------------------------------------

@given(st.integers(0, 10**7), st.integers(0, 10**7))
def test_hurdle_is_never_negative_and_at_least_half(margin: int, remaining: int) -> None:
    h = hurdle(margin, remaining, "a", "b")
    assert h.remaining_two_candidate >= 0
    if remaining == 0:
        assert h.required_share is None
        assert h.status in (HurdleStatus.NOTHING_REMAINING, HurdleStatus.TIED)
    else:
        assert h.required_share is not None and h.required_share >= Fraction(1, 2)
        assert (h.status is HurdleStatus.CANNOT_CATCH_UP) == (h.required_share > 1)
        assert (h.status is HurdleStatus.CANNOT_CATCH_UP) == (margin > remaining)


@given(st.integers(1, 10**6), st.integers(1, 10**6))
def test_hurdle_share_exactly_ties(margin: int, remaining: int) -> None:
    """Getting exactly s of R ties; more overtakes; less does not."""
    h = hurdle(margin, remaining, "a", "b")
    s = h.required_share
    assert s is not None
    trailer_gain = s * remaining
    leader_gain = (1 - s) * remaining
    assert margin + leader_gain - trailer_gain == 0
    eps = Fraction(1, 10**9)
    assert margin + (1 - s - eps) * remaining - (s + eps) * remaining < 0


def test_hurdle_rejects_negative_margin() -> None:
    with pytest.raises(ValueError):
        hurdle(-1, 10)


def test_hurdle_negative_remaining_is_clamped() -> None:
    h = hurdle(5, -100, "a", "b")
    assert h.remaining_two_candidate == 0 and h.status is HurdleStatus.NOTHING_REMAINING


def test_subnational_snapshot_says_it_covers_home_only(data_dir: Path) -> None:
    from escrutinio.count import count_state_units
    from escrutinio.sources.onpe_aggregates import parse_progress_tables

    snaps = parse_progress_tables(data_dir / "peru-2021-runoff/progress_subnational/distritos")
    s = snaps[0]
    st = count_state_units(s.frame, s.contest, ref(s), level=Level.AREA3)
    assert "home only" in st.national.name
    assert st.abroad is None and st.national.actas_total == 83_048  # 86,488 − 3,440 abroad
    assert len(st.units) == 1_874


def test_hurdle_sentence_in_both_languages() -> None:
    from escrutinio.count import hurdle

    names = {"b": "Beto"}
    es, en = hurdle(100, 1000, "a", "b").sentence(names)
    assert "Beto necesita 55.000%" in es and "Beto needs 55.000%" in en
    es, en = hurdle(100, 50, "a", "b").sentence(names)
    assert "no puede remontar" in es and "would need 150.00%" in en
    es, en = hurdle(100, 0, "a", "b").sentence(names)
    assert es.startswith("no quedan votos") and "cannot catch up" in en
    assert hurdle(0, 0).sentence() == ("sin votos todavía", "no votes yet")


# --- first rounds: the race for the runoff; sources without acta counts ---------------------
FIRST_2021 = "peru-2021-first-round/presidencial-actas_ronderos.pe.csv.gz"
FR_2026 = "peru-2026-first-round"


def test_runoff_race_of_the_2021_first_round_per_acta(data_dir: Path, final) -> None:
    """Perú Libre (Castillo) first, Fuerza Popular (Fujimori) second; in this partial file
    (9,335 mesas without data) Avanza País (de Soto) is third, just ahead of Renovación
    Popular (López Aliaga, third in ONPE's final count)."""
    fr = parse_ronderos(data_dir / FIRST_2021, as_of="2021-05-11T09:15:00Z")
    s = count_state_actas(fr.frame, fr.contest, ref(fr), level=Level.NATIONAL)
    r = s.runoff_race
    assert s.national.leader == "perulibre" and r is not None
    assert (r.leader, r.trailer) == (s.national.runner_up, "avpais") == ("fp", "avpais")
    votes = {c.code: c.votes for c in s.national.candidates}
    assert r.margin == votes["fp"] - votes["avpais"] > 0
    assert votes["avpais"] > votes["rp"] == max(v for k, v in votes.items()
                                                if k not in ("perulibre", "fp", "avpais"))
    assert r.status is HurdleStatus.NOTHING_REMAINING  # every acta of the file is counted
    es, en = r.sentence({"avpais": "De Soto"})
    assert "De Soto" in es and "De Soto" in en
    # a runoff has no such race
    assert count_state_actas(final.frame, final.contest, ref(final),
                             level=Level.NATIONAL).runoff_race is None


def test_a_source_without_acta_counts_never_says_nothing_remains(data_dir: Path) -> None:
    """The 2026 district bundle (97.9% counted) carries no acta counts: the count says so,
    instead of "0 of 0 actas" and "no votes remain"."""
    from escrutinio.count import count_state_units
    from escrutinio.sources.onpe_aggregates import parse_2026_district_bundle

    b = parse_2026_district_bundle(data_dir / FR_2026 /
                                   "ikusij_first_round_district_bundle_20260504.json.gz")
    s = count_state_units(b.frame, b.contest, ref(b), level=Level.NATIONAL)
    assert s.national.actas_known is False and s.home is not None
    assert s.home.actas_known is False
    assert s.hurdle.status is HurdleStatus.UNKNOWN_REMAINING
    assert s.hurdle.remaining_two_candidate is None and s.hurdle.required_share is None
    assert "no publica" in s.hurdle.sentence()[0]
    assert "does not publish" in s.hurdle.sentence()[1]
    # the race that mattered in 2026: Sánchez 1,976,734 v López Aliaga 1,950,243
    r = s.runoff_race
    assert r is not None and (r.leader, r.trailer, r.margin) == (
        "sanchez", "lopez_aliaga", 26_491)
    assert r.status is HurdleStatus.UNKNOWN_REMAINING


# 11 s: ingests 229 national cuts (make test runs it; make test-fast does not)
@pytest.mark.slow
def test_history_of_2026_shows_the_runoff_change_and_skips_the_truncated_cut(
        data_dir: Path, tmp_path: Path) -> None:
    from escrutinio import service
    from escrutinio.sources.onpe_aggregates import parse_2026_national_timeseries
    from escrutinio.store import open_store

    series = parse_2026_national_timeseries(
        data_dir / FR_2026 / "ikusij_first_round_national_timeseries.csv.gz")
    broken = [s for s in series if s.rejected.height]
    assert [s.label for s in broken] == ["ikusij national 2026-04-23 11:38"]
    assert broken[0].frame.height == 0
    assert broken[0].rejected["rule"].to_list() == ["series_cut_truncated"]
    with open_store(str(tmp_path / "s.duckdb")) as store:
        service.ingest(store, series)
        h = service.history(store, series[0].contest.id)
    assert len(h.points) == 229  # the truncated cut has nothing to show
    assert h.lead_changes == ()  # Fujimori led throughout
    assert [(c.dropped, c.entered) for c in h.runoff_changes] == [("lopez_aliaga", "sanchez")]
    c = h.runoff_changes[0]
    assert c.before.as_of < c.after.as_of and c.after.pct_counted is None  # no acta counts
    assert all(p.third is not None for p in h.points)


# --- rejected and missing rows stay in every denominator (issue #14, item 3) -------------------
ARG = "argentina-2015-runoff"


def argentina_generic(data_dir: Path, out_dir: Path) -> Path:
    """The Argentine 2015 runoff by school, converted to the generic per-acta format as
    docs/formats.md says (a school is the acta; distrito / sección / circuito the areas).
    Most schools break the turnout identity (votantes < válidos + nulos) and are rejected."""
    import json

    schools = pl.read_csv(data_dir / ARG / "arg_ballo_establecimientos.csv.gz",
                          infer_schema_length=0)
    votes = pl.read_csv(data_dir / ARG / "arg_ballo_est_diff_votos.csv.gz",
                        infer_schema_length=0)
    wide = votes.with_columns(pl.col("id_partido").replace({"0131": "v_fpv",
                                                            "0135": "v_cambiemos"})
                              ).pivot("id_partido", index="id_establecimiento",
                                      values="votos")
    area2 = pl.col("id_distrito") + "-" + pl.col("id_seccion")
    df = schools.join(wide, on="id_establecimiento", how="left").select(
        pl.col("id_establecimiento").alias("acta_id"), pl.lit("counted").alias("status"),
        pl.col("id_distrito").alias("area1_code"), pl.col("distrito").alias("area1_name"),
        area2.alias("area2_code"), pl.col("seccion").alias("area2_name"),
        (area2 + "-" + pl.col("id_circuito")).alias("area3_code"),
        pl.col("electores").alias("electors"), pl.col("votantes").alias("cast"),
        pl.col("blancos").alias("blank"), pl.col("nulos").alias("null"),
        "v_fpv", "v_cambiemos")
    path = out_dir / "arg2015.csv"
    df.write_csv(path)
    sidecar = {"contest": {"id": "ar-2015-presidencial-2v", "name": "Argentina 2015, balotaje",
                           "kind": "runoff", "country": "AR", "date": "2015-11-22",
                           "candidates": [{"code": "fpv", "name": "Daniel Scioli"},
                                          {"code": "cambiemos", "name": "Mauricio Macri"}]},
               "as_of": "2015-11-23T03:00:00Z",
               "area_labels": {"area1": {"es": "distrito", "en": "district"},
                               "area2": {"es": "sección", "en": "section"},
                               "area3": {"es": "circuito", "en": "circuit"}}}
    (out_dir / "arg2015.csv.contest.json").write_text(json.dumps(sidecar), encoding="utf-8")
    return path


def test_rejected_schools_stay_in_every_denominator(data_dir: Path, tmp_path: Path) -> None:
    """Argentina 2015: 9,927 of 13,706 schools fail the turnout identity. They are not
    counted, but they are actas: 3,779 of 13,706 counted (27.6%), never "100%", and the
    hurdle never says nothing remains."""
    from escrutinio.sources.tabular import parse_tabular

    snap = parse_tabular(argentina_generic(data_dir, tmp_path))
    assert snap.frame.height + snap.rejected["line"].n_unique() == 13_706
    s = count_state_actas(snap.frame, snap.contest, ref(snap), level=Level.AREA1,
                          n_rejected=snap.rejected.height, rejected=snap.rejected)
    n = s.national
    assert n.actas_total == 13_706
    assert n.actas_rejected == 13_706 - snap.frame.height > 9_000
    assert n.actas_counted == snap.frame.height
    assert n.pct_counted == pytest.approx(100 * n.actas_counted / 13_706)
    assert n.pct_counted < 30 and n.actas_missing == 0
    assert n.electors_total is not None  # the rejected schools keep their electors
    # the rejected schools sit in their districts
    assert sum(u.actas_rejected for u in s.units) == n.actas_rejected
    assert sum(u.actas_total for u in s.units) == 13_706
    h = s.hurdle
    assert h.status is not HurdleStatus.NOTHING_REMAINING
    assert h.unresolved == n.actas_rejected and (h.remaining_two_candidate or 0) > 0
    es, en = h.sentence()
    assert "rechazadas" in es and "rejected" in en
    # without the rejected rows (as before) the count claimed everything was in
    old = count_state_actas(snap.frame, snap.contest, ref(snap), level=Level.NATIONAL)
    assert old.national.pct_counted == 100.0


def test_missing_mesas_of_the_2021_first_round(data_dir: Path) -> None:
    """9,335 mesas of the 2021 first-round file have no data: 77,153 of 86,488 counted,
    shown as missing (faltantes), and no race is "over"."""
    fr = parse_ronderos(data_dir / FIRST_2021, as_of="2021-05-11T09:15:00Z")
    s = count_state_actas(fr.frame, fr.contest, ref(fr), level=Level.AREA1,
                          n_rejected=fr.rejected.height, rejected=fr.rejected)
    n = s.national
    assert (n.actas_counted, n.actas_total, n.actas_missing) == (77_153, 86_488, 9_335)
    assert n.actas_rejected == 0 and n.electors_total is None  # their electors are unknown
    assert round(n.pct_counted, 3) == 89.207
    for h in (s.hurdle, s.runoff_race):
        assert h is not None and h.status is not HurdleStatus.NOTHING_REMAINING
        assert h.unresolved == 9_335
    # missing rows have no location: the nation holds them, no department does
    assert sum(u.actas_total for u in s.units) == 77_153


def test_missing_rows_with_no_estimate_are_unknown_not_nothing() -> None:
    assert hurdle(10, 0, "a", "b", unresolved=3).status is HurdleStatus.UNKNOWN_REMAINING
    h = hurdle(10, 0, "a", "b", unresolved=3)
    assert h.remaining_two_candidate is None
    assert "3 rejected or missing" in h.sentence()[1]
    assert hurdle(10, 0, "a", "b").status is HurdleStatus.NOTHING_REMAINING


def test_pending_actas_are_never_nothing_remaining(early) -> None:
    """While actas are outstanding the hurdle says how many; if nothing can be estimated
    for them it is unknown, never "nothing remains"."""
    s = count_state_actas(early.frame, early.contest, ref(early), level=Level.NATIONAL)
    n = s.national
    assert s.hurdle.outstanding == n.actas_total - n.actas_counted == 1_367 + 2_326
    h = hurdle(10, 0, "a", "b", outstanding=5)
    assert h.status is HurdleStatus.UNKNOWN_REMAINING and h.remaining_two_candidate is None
    es, en = h.sentence()
    assert "5 actas sin contabilizar" in es and "5 actas not yet counted" in en


def test_status_shows_missing_actas_in_both_languages(data_dir: Path, tmp_path: Path) -> None:
    """`escrutinio status` on the 2021 first-round file: never "77,153 de 77,153 (100%)"."""
    import json

    from typer.testing import CliRunner

    from escrutinio.cli import app

    runner = CliRunner()
    db = str(tmp_path / "fr.duckdb")

    def run(*args: str) -> tuple[int, str]:
        res = runner.invoke(app, ["--db", db, *args])
        return res.exit_code, res.stdout

    assert run("ingest", str(data_dir / FIRST_2021), "--as-of", "2021-05-11T09:15:00Z")[0] == 0
    code, es = run("status", "--level", "national")
    es = " ".join(es.split())
    assert code == 0 and "77,153 de 86,488 (89.207%)" in es and "faltantes 9,335" in es
    assert "no quedan votos" not in es
    code, en = run("--lang", "en", "status", "--level", "national")
    en = " ".join(en.split())
    assert "77,153 of 86,488 (89.207%)" in en and "missing 9,335" in en
    assert "no votes remain" not in en
    code, en = run("--lang", "en", "status")  # by department: the missing have no place
    assert "9,335 of them do not say where they are" in " ".join(en.split())
    code, out = run("status", "--level", "national", "--json")
    d = json.loads(out)
    assert (d["national"]["actas_missing"], d["national"]["actas_total"]) == (9_335, 86_488)
    assert d["hurdle"]["status"] != "nothing_remaining" and d["hurdle"]["unresolved"] == 9_335


def test_falling_totals_are_compared_within_one_kind_of_source() -> None:
    """A per-acta file holds fewer votes than the national table published just before it
    (it counts only what it lists): that is two sources, not votes going down."""
    from datetime import UTC, datetime

    from escrutinio.count import HistoryPoint, history_warnings

    def pt(hour: int, a: int, basis: str) -> HistoryPoint:
        return HistoryPoint(f"s{hour}", datetime(2021, 6, 8, hour, tzinfo=UTC), f"c{hour}",
                            None, None, "a", "b", a - 100, 0.0, (("a", a), ("b", 100)),
                            basis=basis)

    assert history_warnings([pt(1, 1_000, "units"), pt(2, 900, "actas")]) == ()
    warns = history_warnings([pt(1, 1_000, "units"), pt(2, 900, "actas"),
                              pt(3, 950, "units")])
    assert [w.snapshot_id for w in warns] == ["s3"]
