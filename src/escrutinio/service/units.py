"""Unit cuts: what the per-unit model is given for one unit snapshot (its finest units,
completed with the national row when it does not add up, and what is wrong with them),
and the earlier cuts it learns from."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import polars as pl

from escrutinio.domain import Contest, Level, SnapshotKind, sum_vote_types
from escrutinio.service.common import _CACHE_LOCK, _trim, stored_frame, warning_record
from escrutinio.store.base import SnapshotInfo, Store


def national_cut_at(store: Store, info: SnapshotInfo) -> SnapshotInfo | None:
    for s in store.list_snapshots(info.contest_id, SnapshotKind.UNITS):
        if s.level == "national" and s.as_of == info.as_of:
            return s
    return None


@dataclass(frozen=True, slots=True)
class UnitCut:
    """What the per-unit model is given for one unit snapshot."""

    info: SnapshotInfo
    #: the finest rows, completed with the national remainder (unit ``__rest__``) when a
    #: national row is known (the snapshot's own, else a national cut of the same minute)
    units: pl.DataFrame
    national: pl.DataFrame | None  # the national row used, if any
    own_national: bool  # the national row is the snapshot's own
    missing_units: tuple[str, ...]  # units of this level absent from the cut
    warnings: tuple[dict[str, str], ...]
    #: the source's own fraction of the votes counted (metadata ``pct_votes_counted``)
    source_fraction: float | None = None
    #: the national remainder (unit ``__rest__``) is abroad (True), or unknown (None):
    #: :func:`rest_is_abroad`; None too when there is no remainder
    rest_abroad: bool | None = None
    #: missing units that the geography places at home (``missing_units`` minus abroad)
    missing_home: tuple[str, ...] = ()

    @property
    def pct_counted(self) -> float | None:
        """% counted: of the actas, from the national row, else from the sum of the
        units; without acta counts, the source's own % of the votes counted."""
        src = self.national if self.national is not None else self.units
        frac = None if self.source_fraction is None else 100.0 * self.source_fraction
        if not {"actas_total", "actas_counted"} <= set(src.columns):
            return frac
        if src["actas_total"].null_count() or src["actas_counted"].null_count():
            return frac
        tot = int(src["actas_total"].sum())
        return 100.0 * int(src["actas_counted"].sum()) / tot if tot > 0 else frac

    def counted(self, contest: Contest) -> dict[str, int]:
        """Counted votes: the national row's, else the sum of the units'."""
        src = self.national if self.national is not None else self.units
        return {c.code: int(src[c.column].fill_null(0).sum()) for c in contest.candidates}

    @property
    def actas_total(self) -> int | None:
        src = self.national if self.national is not None else self.units
        if "actas_total" not in src.columns or src["actas_total"].null_count():
            return None
        return int(src["actas_total"].sum())


_UNIT_CUTS: OrderedDict[tuple[str, bool, str | None], UnitCut] = OrderedDict()


def unit_cut(store: Store, info: SnapshotInfo, *, with_national: bool = True) -> UnitCut:
    """The units of a snapshot as the model sees them, and what is wrong with them: units
    that do not add up to their own national row are completed from it (remainder as one
    unit, :func:`~escrutinio.projection.units.complete_with_national`) and the missing
    units named; the counted figures are then the national row's, never the partial sum."""
    nat_info = (national_cut_at(store, info)
                if info.level not in (None, Level.NATIONAL.value) else None)
    return _unit_cut(store, info, with_national, nat_info)


def _unit_cut(store: Store, info: SnapshotInfo, with_national: bool,
              nat_info: SnapshotInfo | None) -> UnitCut:
    """:func:`unit_cut` given the national cut of the same minute (cached on the
    snapshot, the option and that cut: a national cut stored later changes the key)."""
    from escrutinio.projection.units import REST_CODE, complete_with_national, finest_units

    key = (info.snapshot_id, with_national, nat_info.snapshot_id if nat_info else None)
    with _CACHE_LOCK:
        got = _UNIT_CUTS.get(key)
        if got is not None:
            _UNIT_CUTS.move_to_end(key)
            return got
    contest = store.contest(info.contest_id)
    # a unit published in one row per vote type keeps its rows apart: the model treats
    # each type as a unit of its own (key unit|type); national rows are added up
    raw = stored_frame(store, info, typed=True)
    fine = finest_units(raw)
    level = fine["level"][0] if fine.height else Level.NATIONAL.value
    nat: pl.DataFrame | None = None
    own = False
    warns: list[dict[str, str]] = []
    missing: tuple[str, ...] = ()
    missing_home: tuple[str, ...] = ()
    rest_abroad: bool | None = None
    if level != Level.NATIONAL.value:
        own_rows = sum_vote_types(raw.filter(pl.col("level") == Level.NATIONAL.value))
        if own_rows.height == 1:
            nat, own = own_rows, True
        elif with_national and nat_info is not None:
            nat = stored_frame(store, nat_info)
    units = fine
    if nat is not None and with_national:
        geo = store.geography(info.contest_id).filter(pl.col("level") == level)
        present = set(fine["unit_code"].to_list())
        gone = geo.filter(~pl.col("code").is_in(list(present)))
        rest_abroad = rest_is_abroad(contest, gone)
        units = complete_with_national(fine, nat, rest_abroad=rest_abroad)
        if REST_CODE in units["unit_code"].to_list():
            missing = tuple(gone["code"].to_list())
            home_gone = gone.filter(~pl.col("abroad").fill_null(False))
            missing_home = tuple(home_gone["code"].to_list())
            names = [f"{c} {nm}" for c, nm in zip(gone["code"].to_list(),
                                                     gone["name"].to_list(), strict=True)]
            shown = ", ".join(names[:25]) + (" …" if len(names) > 25 else "")
            if own or home_gone.height or not missing:
                es = ("las unidades no suman la fila nacional de la propia instantánea"
                      if own else "las unidades no suman el corte nacional del mismo minuto")
                en = ("the units do not add up to the snapshot's own national row" if own
                      else "the units do not add up to the national cut of the same minute")
                warns.append(warning_record(
                    "units_missing",
                    f"{es}: se proyecta desde la fila nacional (la diferencia es una unidad "
                    f"más); faltan {len(missing):,} unidades" + (f": {shown}" if missing
                                                               else ""),
                    f"{en}: projected from the national row (the difference is one more "
                    f"unit); {len(missing):,} units are missing" + (f": {shown}" if missing
                                                                   else "")))
            rest = units.filter(pl.col("unit_code") == REST_CODE)
            if any((rest[c.column][0] or 0) < 0 for c in contest.candidates):
                warns.append(warning_record(
                    "units_exceed_national",
                    "las unidades suman más votos que la fila nacional para algún candidato: "
                    "la fuente es incoherente",
                    "the units add up to more votes than the national row for some "
                    "candidate: the source is inconsistent"))
            sum_lead = _leader({c.code: int(fine[c.column].fill_null(0).sum())
                                for c in contest.candidates})
            nat_lead = _leader({c.code: int(nat[c.column].fill_null(0).sum())
                                for c in contest.candidates})
            if sum_lead != nat_lead:
                warns.append(warning_record(
                    "leader_differs",
                    f"en la suma de las unidades adelanta {sum_lead}, en la fila nacional "
                    f"{nat_lead}: vale la fila nacional",
                    f"{sum_lead} leads in the sum of the units, {nat_lead} in the national "
                    "row: the national row is used"))
    elif with_national and level != Level.NATIONAL.value:
        nats = [s for s in store.list_snapshots(info.contest_id, SnapshotKind.UNITS)
                if s.level == Level.NATIONAL.value and s.n_rows]
        if nats:
            total = int(cast(int, stored_frame(store, nats[-1])["actas_total"].max() or 0))
            have = int(fine["actas_total"].fill_null(0).sum()) \
                if "actas_total" in fine.columns else 0
            if have < total:
                warns.append(warning_record(
                    "coverage",
                    f"las unidades cubren {have:,} de {total:,} actas y ningún corte nacional "
                    "del mismo minuto las completa: se proyecta solo lo que cubren",
                    f"the units cover {have:,} of {total:,} actas and no national cut of the "
                    "same minute completes them: this projects only what they cover"))
    has_rest = REST_CODE in units["unit_code"].to_list()
    cut = UnitCut(info, units, nat, own, missing, tuple(warns),
                  metadata_fraction(store, info, nat_info),
                  rest_abroad if has_rest else None, missing_home)
    with _CACHE_LOCK:
        _UNIT_CUTS[key] = cut
        _trim(_UNIT_CUTS, lambda c: int(c.units.estimated_size()))
    return cut


def coverage_warnings(store: Store, info: SnapshotInfo) -> list[dict[str, str]]:
    """What a per-unit cut leaves out of its national row (``status`` by unit): the units
    missing from the cut and the actas the listed units do not cover, when that part is
    not known to be abroad (:func:`rest_is_abroad`: Peru's department tables never hold
    abroad — that is no gap). Empty for acta snapshots, national cuts and cuts whose
    units add up to the national row."""
    if info.kind is not SnapshotKind.UNITS or info.level in (None, Level.NATIONAL.value):
        return []
    from escrutinio.projection.units import REST_CODE

    cut = unit_cut(store, info)
    if cut.national is None or REST_CODE not in cut.units["unit_code"].to_list():
        return []
    if cut.rest_abroad and not cut.missing_home:
        return []
    geo = store.geography(info.contest_id)
    names = dict(zip(geo["code"].to_list(), geo["name"].to_list(), strict=True))
    gone = cut.missing_home if cut.rest_abroad else cut.missing_units
    shown = ", ".join(f"{c} {names.get(c, '')}".strip() for c in gone[:25]) \
        + (" …" if len(gone) > 25 else "")
    listed = cut.units.filter(pl.col("unit_code") != REST_CODE)
    word_es, word_en = _actas_word(store, info)
    nat_total = cut.actas_total
    have = (int(listed["actas_total"].sum()) if "actas_total" in listed.columns
            and not listed["actas_total"].null_count() else None)
    n = len(gone)
    es = [(f"falta 1 unidad de la fila nacional: {shown}" if n == 1 else
           f"faltan {n:,} unidades de la fila nacional: {shown}") if n
          else "las unidades no suman la fila nacional"]
    en = [(f"1 unit of the national row is missing: {shown}" if n == 1 else
           f"{n:,} units of the national row are missing: {shown}") if n
          else "the units do not add up to the national row"]
    if have is not None and nat_total is not None:
        es.append(f"las unidades listadas cubren {have:,} de {nat_total:,} {word_es} de la "
                  f"fila nacional (faltan {nat_total - have:,})")
        en.append(f"the listed units cover {have:,} of the national row's {nat_total:,} "
                  f"{word_en} ({nat_total - have:,} missing)")
    if cut.rest_abroad:
        es.append("sin contar el extranjero, que estas tablas no incluyen")
        en.append("not counting abroad, which these tables leave out")
    return [warning_record("units_missing", "; ".join(es), "; ".join(en))]


def _actas_word(store: Store, info: SnapshotInfo) -> tuple[str, str]:
    from escrutinio.countries import pack_for

    return pack_for(store.contest(info.contest_id)).vocabulary.actas


def rest_is_abroad(contest: Contest, gone: pl.DataFrame) -> bool | None:
    """Whether what the national row holds beyond a cut's units is abroad: True when the
    country pack says its unit tables leave abroad out (Peru's ONPE), or when the units
    missing from the cut (``gone``: geography rows) are all abroad ones; else None —
    unknown (a cut with home units missing: "not in the listed units", never "abroad")."""
    from escrutinio.countries import pack_for

    if pack_for(contest).unit_tables_exclude_abroad:
        return True
    if gone.height and "abroad" in gone.columns and bool(gone["abroad"].fill_null(False).all()):
        return True
    return None


def metadata_fraction(store: Store, info: SnapshotInfo,
                       nat: SnapshotInfo | None = None,
                       md: dict[str, dict[str, str]] | None = None) -> float | None:
    """The source's fraction of the votes counted for a cut (metadata
    ``pct_votes_counted``, of the snapshot or of ``nat``, the national cut of the same
    minute; ``md``: the contest's snapshot metadata, if already read)."""
    from escrutinio.sources.base import SERIES_FRACTION_KEY

    if md is None:
        md = dict(store.snapshot_metadata(info.contest_id))
    ids = [info.snapshot_id]
    if nat is not None:
        ids.append(nat.snapshot_id)
    for sid in ids:
        raw = md.get(sid, {}).get(SERIES_FRACTION_KEY)
        try:
            f = float(raw) if raw else None
        except ValueError:
            f = None
        if f is not None and 0.0 < f <= 1.0:
            return f
    return None


def _leader(votes: dict[str, int]) -> str | None:
    if not votes or max(votes.values()) <= 0:
        return None
    return max(votes, key=lambda c: votes[c])


def earlier_unit_cuts(store: Store, info: SnapshotInfo, *, with_national: bool = True
                      ) -> list[UnitCut]:
    """The earlier cuts of the same contest at the same level as ``info`` (as_of strictly
    before it), oldest first, completed with their national row the same way as ``info``
    (a cut with a national remainder learns only from cuts with one, and vice versa): the
    history the per-unit model learns from."""
    if info.kind is not SnapshotKind.UNITS:
        return []
    snaps = store.list_snapshots(info.contest_id, SnapshotKind.UNITS)
    nat_at: dict[Any, SnapshotInfo] = {}
    for s in snaps:
        if s.level == Level.NATIONAL.value:
            nat_at.setdefault(s.as_of, s)
    sub = info.level not in (None, Level.NATIONAL.value)
    now = _unit_cut(store, info, with_national, nat_at.get(info.as_of) if sub else None)
    cuts = [_unit_cut(store, s, with_national, nat_at.get(s.as_of) if sub else None)
            for s in snaps
            if s.level == info.level and s.as_of < info.as_of and s.n_rows
            and s.snapshot_id != info.snapshot_id]
    return [c for c in cuts if (c.national is None) == (now.national is None)]


def unit_cut_warnings(cut: UnitCut, earlier: Sequence[UnitCut]) -> list[dict[str, str]]:
    """The cut's own warnings, plus a change of ``actas_total`` since the previous cut (a
    broken source: e.g. abroad totals that come and go)."""
    warns = list(cut.warnings)
    if earlier:
        prev = earlier[-1]
        a, b = prev.actas_total, cut.actas_total
        if a is not None and b is not None and a != b:
            warns.append(warning_record(
                "actas_total_changed",
                f"el total de actas cambió de {a:,} ({prev.info.label}) a {b:,} en este corte: "
                "la fuente no es coherente entre cortes (p. ej. totales del extranjero rotos)",
                f"the total number of actas changed from {a:,} ({prev.info.label}) to {b:,} "
                "at this cut: the source is not consistent between cuts (e.g. broken abroad "
                "totals)"))
    return warns
