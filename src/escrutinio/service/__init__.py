"""Orchestration shared by the CLI and the HTTP API: pick the parser, load from the store,
call the pure analyses. No numbers are computed here."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import polars as pl

from escrutinio.count import (
    CountState,
    LeadHistory,
    SnapshotRef,
    count_state_actas,
    count_state_units,
    lead_history,
)
from escrutinio.diff import SnapshotDiff, diff_actas, diff_units
from escrutinio.domain import Contest, Level, SnapshotKind
from escrutinio.errors import EscrutinioError, IngestError, Location, UnknownReferenceError
from escrutinio.sources.base import ParsedSnapshot
from escrutinio.store.base import IngestOutcome, SnapshotInfo, Store

if TYPE_CHECKING:
    from escrutinio.projection.model import JeeOutcomes, ModelParams
    from escrutinio.projection.replay import ReplayResult
    from escrutinio.projection.result import Projection

Parser = Callable[[Path], list[ParsedSnapshot]]


def _ref(info: SnapshotInfo) -> SnapshotRef:
    return SnapshotRef(info.snapshot_id, info.as_of, info.label)


def detect_parser(path: Path, *, as_of: str | None = None) -> Parser:
    """Choose a parser from the file's header (not only its name)."""
    from escrutinio.sources import onpe_files, tabular
    from escrutinio.sources.base import read_source

    name = path.name
    if path.is_dir():
        if tabular.is_generic_folder(path):  # data files with their sidecars
            return tabular.parse_folder
        from escrutinio.sources import onpe_aggregates

        return lambda p: onpe_aggregates.parse_progress_tables(p)
    if name.endswith(".parquet") or name.endswith((".json", ".json.gz")):
        if "district_bundle" in name:
            from escrutinio.sources import onpe_aggregates

            return lambda p: [onpe_aggregates.parse_2026_district_bundle(p)]
        return tabular.parse_tabular_many
    if tabular.sidecar_path_for(path).is_file():  # the generic format, in any CSV dialect
        return tabular.parse_tabular_many
    head = read_source(path).text[:4096].split(b"\n", 1)[0].decode("utf-8", "replace")
    if "v2_emitidos" in head or "v1_emitidos" in head:
        return lambda p: [onpe_files.parse_ronderos(p, as_of=as_of)]
    if "num_mesa" in head and "observacion" in head:
        return lambda p: [onpe_files.parse_provisional(p)]
    if head.startswith("timestamp,pct_counted,candidate"):
        from escrutinio.sources import onpe_aggregates

        return lambda p: onpe_aggregates.parse_2026_national_timeseries(p)
    if "acta_id" in head or "unit_code" in head:
        return tabular.parse_tabular_many
    raise IngestError(Location(str(path), 1), "unknown_format",
                      "formato no reconocido; vea docs/formats.md",
                      "unrecognised format; see docs/formats.md")


def area_labels(store: Store, contest_id: str) -> dict[str, tuple[str, str]]:
    """What the contest's country calls area1/2/3, ``{"area1": (es, en), ...}``: a stored
    sidecar's ``area_labels`` (newest snapshot first), else the known country's names,
    else "nivel 1 / level 1" (:mod:`escrutinio.sources.labels`)."""
    from escrutinio.sources import labels

    contest = store.contest(contest_id)
    md = store.snapshot_metadata(contest_id)
    return labels.area_labels(contest.country, reversed(list(md.values())))


def level_names(store: Store, contest_id: str | None = None) -> dict[str, str]:
    """``--level`` words of the contest's country, both languages, with and without
    accents (``región``, ``region``, ``state``, ``estado``...) -> generic level value."""
    import unicodedata

    def plain(x: str) -> str:
        return "".join(ch for ch in unicodedata.normalize("NFKD", x)
                       if not unicodedata.combining(ch)).lower().strip()

    if not store.contests():
        return {}
    out: dict[str, str] = {}
    for level, pair in area_labels(store, default_contest(store, contest_id)).items():
        for word in pair:
            out[word.lower().strip()] = level
            out.setdefault(plain(word), level)
    return out


def ingest_warnings(snapshots: Sequence[ParsedSnapshot]) -> list[dict[str, str]]:
    """What ingest accepted with a caveat (a Latin-1 file, an unknown sidecar key, acta IDs
    the audit will refuse...), once each although a series repeats them in every cut:
    ``[{"field": ..., "es": ..., "en": ...}]``."""
    seen: dict[tuple[str, str], dict[str, str]] = {}
    for snap in snapshots:
        f = snap.findings
        if f.height == 0 or "rule" not in f.columns:
            continue
        for row in f.filter(pl.col("rule") == "ingest_warning").iter_rows(named=True):
            key = (row["message_es"], row["message_en"])
            seen.setdefault(key, {"field": row["field"] or "", "es": row["message_es"],
                                  "en": row["message_en"]})
    return list(seen.values())


def source_notes(snapshots: Sequence[ParsedSnapshot]) -> list[dict[str, str]]:
    """What the sources say about their own data (a generic sidecar's ``notes``: an
    inconsistent column kept as published, an estimate clipped...), once each."""
    import json

    seen: dict[tuple[str, str], dict[str, str]] = {}
    for snap in snapshots:
        for note in json.loads(snap.metadata.get("notes") or "[]"):
            seen.setdefault((note["es"], note["en"]), {"es": note["es"], "en": note["en"]})
    return list(seen.values())


def parse_paths(paths: Sequence[Path], *, as_of: str | None = None) -> list[ParsedSnapshot]:
    """Parse every path first; nothing is stored unless all of them parse."""
    out: list[ParsedSnapshot] = []
    for p in paths:
        out.extend(detect_parser(p, as_of=as_of)(p))
    return out


def ingest(store: Store, snapshots: list[ParsedSnapshot]) -> list[IngestOutcome]:
    """Store snapshots and append them to the tamper-evident ledger in one transaction:
    a snapshot is never stored without its chain entry (if logging fails, nothing is)."""
    from escrutinio.store.ledger import append_new

    return store.put_snapshots(
        snapshots, before_commit=lambda: append_new(store, in_transaction=True))


@dataclass(frozen=True, slots=True)
class Loaded:
    info: SnapshotInfo
    frame: pl.DataFrame


def load(store: Store, info: SnapshotInfo) -> Loaded:
    frame = (store.load_actas(info.snapshot_id) if info.kind is SnapshotKind.ACTAS
             else store.load_units(info.snapshot_id))
    return Loaded(info, frame)


def default_contest(store: Store, contest_id: str | None) -> str:
    if contest_id:
        return contest_id
    contests = store.contests()
    if not contests:
        raise EscrutinioError("el almacén está vacío; ejecute 'escrutinio ingest'",
                              "the store is empty; run 'escrutinio ingest'")
    # the contest with the most recent snapshot
    snaps = store.list_snapshots()
    return snaps[-1].contest_id if snaps else contests[0].id


def state(store: Store, ref: str = "latest", *, level: Level = Level.AREA1,
          contest_id: str | None = None, kind: SnapshotKind | None = None) -> CountState:
    cid = default_contest(store, contest_id)
    info = store.snapshot(ref, contest_id=cid, kind=kind)
    return state_of(store, info, level=level)


def state_of(store: Store, info: SnapshotInfo, *, level: Level = Level.AREA1) -> CountState:
    contest = store.contest(info.contest_id)
    geo = store.geography(info.contest_id)
    names = dict(zip(geo["code"].to_list(), geo["name"].to_list(), strict=True))
    loaded = load(store, info)
    if info.kind is SnapshotKind.ACTAS:
        rejected = store.load_row_reports(info.snapshot_id) if info.n_rejected else None
        return count_state_actas(loaded.frame, contest, _ref(info), level=level, names=names,
                                 n_rejected=info.n_rejected, rejected=rejected)
    parents = {c: p for c, p in zip(geo["code"].to_list(), geo["parent"].to_list(),
                                    strict=True) if p}
    return count_state_units(loaded.frame, contest, _ref(info), level=level, names=names,
                             n_rejected=info.n_rejected, parents=parents)


def levels_of(info: SnapshotInfo) -> tuple[Level, ...]:
    """Levels with units in a snapshot (an acta snapshot has them all)."""
    if info.kind is SnapshotKind.ACTAS:
        return (Level.NATIONAL, Level.AREA1, Level.AREA2, Level.AREA3)
    finest = Level(info.level or "national")
    order = list(Level)
    return tuple(order[: order.index(finest) + 1])


def latest_with_level(store: Store, info: SnapshotInfo, level: Level) -> SnapshotInfo | None:
    """``info`` if it has units at ``level``, else the latest earlier snapshot of the same
    contest that has (a national-only cut shows its areas from the latest cut with them)."""
    if level in levels_of(info):
        return info
    for s in reversed(store.list_snapshots(info.contest_id)):
        if s.as_of <= info.as_of and s.n_rows and level in levels_of(s):
            return s
    return None


def history_snapshots(store: Store, contest_id: str) -> list[SnapshotInfo]:
    """Snapshots that cover the whole country: acta snapshots, national unit cuts, and
    unit snapshots that carry their own national row (the layout of docs/formats.md's
    worked example) when no national cut of the same minute exists (a snapshot whose
    every row was rejected, e.g. a truncated scrape, has nothing to show)."""
    snaps = [s for s in store.list_snapshots(contest_id) if s.n_rows]
    national_at = {s.as_of for s in snaps
                   if s.kind is SnapshotKind.UNITS and s.level in (None, "national")}
    out = []
    for s in snaps:
        if s.kind is SnapshotKind.ACTAS or s.level in (None, "national"):
            out.append(s)
        elif s.as_of not in national_at and _has_national_row(store, s):
            out.append(s)
            national_at.add(s.as_of)
    return out


def _has_national_row(store: Store, info: SnapshotInfo) -> bool:
    return bool((_frame(store, info)["level"] == Level.NATIONAL.value).any())


def history(store: Store, contest_id: str | None = None,
            kind: SnapshotKind | None = None) -> LeadHistory:
    cid = default_contest(store, contest_id)
    snaps = [s for s in history_snapshots(store, cid) if kind is None or s.kind is kind]
    states = [state_of(store, s, level=Level.NATIONAL) for s in snaps]
    return lead_history(states)


def diff(store: Store, older: str, newer: str, *, contest_id: str | None = None,
         limit: int | None = 100) -> SnapshotDiff:
    cid = default_contest(store, contest_id)
    a = store.snapshot(older, contest_id=cid)
    b = store.snapshot(newer, contest_id=cid)
    if a.kind is not b.kind:
        raise EscrutinioError(
            "no se pueden comparar una instantánea por acta y una agregada",
            "cannot diff a per-acta snapshot against an aggregate one")
    contest = store.contest(cid)
    la, lb = load(store, a), load(store, b)
    fn = diff_actas if a.kind is SnapshotKind.ACTAS else diff_units
    return fn(la.frame, lb.frame, contest, _ref(a), _ref(b), limit=limit)


# --- projection (orchestration: load what the model needs, then call it) ---------------

_LEVEL_KEYS = {"area1": "area1_code", "area2": "area2_code", "area3": "area3_code"}


def area_parents(store: Store, contest_id: str) -> dict[str, str]:
    geo = store.geography(contest_id)
    return {c: p for c, p in zip(geo["code"].to_list(), geo["parent"].to_list(), strict=True)
            if p}


def national_cut_at(store: Store, info: SnapshotInfo) -> SnapshotInfo | None:
    for s in store.list_snapshots(info.contest_id, SnapshotKind.UNITS):
        if s.level == "national" and s.as_of == info.as_of:
            return s
    return None


def _source_remaining(store: Store, info: SnapshotInfo) -> pl.DataFrame | None:
    """The source's own estimate of the fraction counted per unit, when it publishes no
    acta counts (``fraction_counted_by_unit`` in the snapshot's metadata), as the
    ``remaining`` frame of :func:`escrutinio.projection.units.project_units`."""
    import json

    from escrutinio.sources.base import FRACTION_COUNTED_KEY

    raw = store.snapshot_metadata(info.contest_id).get(info.snapshot_id, {}).get(
        FRACTION_COUNTED_KEY)
    if not raw:
        return None
    frac = json.loads(raw)
    return pl.DataFrame({"unit_code": list(frac), "fraction_counted": list(frac.values())},
                        schema={"unit_code": pl.String, "fraction_counted": pl.Float64})


#: national vote vectors of series cuts, by snapshot id (snapshots never change)
_CUT_VOTES: dict[str, tuple[int, ...]] = {}


def _series_history(store: Store, info: SnapshotInfo
                    ) -> tuple[list[tuple[Sequence[float], float]], list[str]] | None:
    """(votes per candidate, fraction of the votes counted) of every national cut up to
    ``info``, when ``info`` is a national cut without acta counts whose source gives the
    fraction counted (metadata ``pct_votes_counted``, a fraction in (0, 1]: the 2026
    series), with the ids of those cuts; None otherwise."""
    from escrutinio.sources.base import SERIES_FRACTION_KEY

    if info.kind is not SnapshotKind.UNITS or info.level != Level.NATIONAL.value:
        return None
    md = store.snapshot_metadata(info.contest_id)
    if not md.get(info.snapshot_id, {}).get(SERIES_FRACTION_KEY):
        return None
    contest = store.contest(info.contest_id)
    out: list[tuple[Sequence[float], float]] = []
    ids: list[str] = []
    for s in history_snapshots(store, info.contest_id):
        frac = md.get(s.snapshot_id, {}).get(SERIES_FRACTION_KEY)
        if s.as_of > info.as_of or s.level != Level.NATIONAL.value or not frac:
            continue
        votes = _CUT_VOTES.get(s.snapshot_id)
        if votes is None:
            row = store.load_units(s.snapshot_id).row(0, named=True)
            votes = tuple(int(row[c.column] or 0) for c in contest.candidates)
            _CUT_VOTES[s.snapshot_id] = votes
        out.append((votes, float(frac)))
        ids.append(s.snapshot_id)
    return out, ids


# --- one projection for every caller (CLI project/replay, API, dashboard) ----------------

#: the earlier round of a contest when no sidecar declares it (``previous_round``)
KNOWN_PREVIOUS_ROUND: dict[str, str] = {"pe-2021-presidencial-2v": "pe-2021-presidencial-1v",
                                         "pe-2026-presidencial-2v": "pe-2026-presidencial-1v"}
#: sidecar keys read from the stored snapshot metadata of a contest
PREVIOUS_ROUND_KEY = "previous_round"
REVIEW_OUTCOMES_KEY = "review_outcomes"
#: countries whose court/review outcome rates are the defaults of :class:`JeeOutcomes`
JEE_DEFAULT_COUNTRIES = frozenset({"PE"})


def _contest_key(store: Store, contest_id: str, key: str) -> str | None:
    """A sidecar key of the contest, from its stored snapshot metadata (newest first)."""
    import json

    for md in reversed(list(store.snapshot_metadata(contest_id).values())):
        raw = md.get(key)
        if raw:
            if isinstance(raw, str) and raw.startswith('"'):
                raw = json.loads(raw)
            return str(raw)
    return None


def default_baseline_contest(store: Store, contest_id: str) -> str | None:
    """The earlier round of the same election, when the store holds it: the sidecar's
    ``previous_round``, else the known pairs (:data:`KNOWN_PREVIOUS_ROUND`)."""
    declared = (_contest_key(store, contest_id, PREVIOUS_ROUND_KEY)
                or KNOWN_PREVIOUS_ROUND.get(contest_id))
    if not declared or declared == contest_id:
        return None
    if declared not in {c.id for c in store.contests()}:
        return None
    return declared if any(s.n_rows for s in store.list_snapshots(declared)) else None


def review_outcomes(store: Store, contest: Contest) -> tuple[JeeOutcomes, dict[str, Any]]:
    """What becomes of sheets held for court/review, and why: Peru's JEE rates
    (:class:`JeeOutcomes` defaults) for Peruvian contests only; elsewhere the rates the
    contest declares (sidecar ``review_outcomes``: ``p_annulled``, optionally
    ``p_corrected``, ``correction_sd``, ``rate_prior_n``, ``source``), else an unknown rate
    (uniform between 0 and 1), said so in the output."""
    import json

    from escrutinio.projection.model import JeeOutcomes

    if contest.country.upper() in JEE_DEFAULT_COUNTRIES:
        jee = JeeOutcomes()
        return jee, {"basis": "peru", "p_annulled": jee.p_annulled, "source": jee.source,
                     "es": "tasas del JEE de Perú 2021 (segunda vuelta)",
                     "en": "Peru's 2021 JEE rates (runoff)"}
    raw = _contest_key(store, contest.id, REVIEW_OUTCOMES_KEY)
    if raw:
        try:
            d = json.loads(raw)
            jee = JeeOutcomes(
                p_annulled=float(d["p_annulled"]),
                p_corrected=float(d.get("p_corrected", 0.0)),
                correction_sd=float(d.get("correction_sd", 21.0)),
                rate_prior_n=float(d.get("rate_prior_n", 100.0)),
                source=str(d.get("source", "declared by the contest sidecar")))
            if not 0.0 <= jee.p_annulled <= 1.0 or not 0.0 <= jee.p_corrected <= 1.0:
                raise ValueError("rates outside [0, 1]")
        except (ValueError, KeyError, TypeError) as exc:
            raise EscrutinioError(
                f"la contienda {contest.id} declara {REVIEW_OUTCOMES_KEY} inválido ({exc}): "
                "se espera {\"p_annulled\": 0..1, ...}",
                f"contest {contest.id} declares an invalid {REVIEW_OUTCOMES_KEY} ({exc}): "
                "expected {\"p_annulled\": 0..1, ...}") from exc
        return jee, {"basis": "declared", "p_annulled": jee.p_annulled, "source": jee.source,
                     "es": "tasas declaradas por la contienda", "en": "rates the contest "
                     "declares"}
    jee = unknown_review()
    return jee, {"basis": "unknown", "p_annulled": None, "source": jee.source,
                 "es": "se desconoce qué parte de las actas en revisión se anulará (no hay "
                       "tasas medidas para este país y la contienda no declara tasas): se usa "
                       "una tasa desconocida, "
                       "uniforme entre 0 y 1, que ensancha el intervalo",
                 "en": "what share of the sheets under review will be annulled is unknown "
                       "(no measured rates for this country and the contest declares none): "
                       "an unknown rate, "
                       "uniform between 0 and 1, is used and widens the interval"}


def unknown_review() -> JeeOutcomes:
    """Review outcome rates when nothing is known: a uniform annulment rate."""
    from escrutinio.projection.model import JeeOutcomes

    # mean 1/2, variance 1/12 (rate_prior_n = 2: the variance of a uniform rate)
    return JeeOutcomes(p_annulled=0.5, p_corrected=0.5, correction_sd=21.0, rate_prior_n=2.0,
                       source="desconocido / unknown: uniform rate in [0, 1]")


#: small caches of immutable stored frames (snapshots never change once stored)
_FRAMES: OrderedDict[tuple[str, str], pl.DataFrame] = OrderedDict()
#: memory budget of the cached frames, and of the cached unit cuts (least recently used
#: first out): a replay of hundreds of district cuts fits, a server does not grow unbounded
_CACHE_BYTES = 512 * 2**20
_CACHE_LOCK = threading.Lock()


def _trim(cache: OrderedDict[Any, Any], size: Callable[[Any], int]) -> None:
    """Drop the least recently used entries until the cache is within the budget (the
    newest entry always stays)."""
    total = sum(size(v) for v in cache.values())
    while total > _CACHE_BYTES and len(cache) > 1:
        _, old = cache.popitem(last=False)
        total -= size(old)


def _frame(store: Store, info: SnapshotInfo) -> pl.DataFrame:
    """A stored snapshot's frame (cached: snapshots never change once stored)."""
    key = (info.kind.value, info.snapshot_id)
    with _CACHE_LOCK:
        got = _FRAMES.get(key)
        if got is not None:
            _FRAMES.move_to_end(key)
            return got
    frame = (store.load_actas(info.snapshot_id) if info.kind is SnapshotKind.ACTAS
             else store.load_units(info.snapshot_id))
    with _CACHE_LOCK:
        _FRAMES[key] = frame
        _trim(_FRAMES, lambda f: int(f.estimated_size()))
    return frame


def _with_vote_types(store: Store, info: SnapshotInfo, actas: pl.DataFrame) -> pl.DataFrame:
    """The acta frame with its ``vote_type`` column when the source gave one (snapshot
    metadata ``vote_type_by_acta``): the projection treats each type apart."""
    from escrutinio.sources.tabular import with_vote_types

    if "vote_type" in actas.columns:
        return actas
    return with_vote_types(actas, store.snapshot_metadata(info.contest_id).get(
        info.snapshot_id, {}))


def _with_unresolved(store: Store, info: SnapshotInfo, actas: pl.DataFrame
                     ) -> tuple[pl.DataFrame, int]:
    """The acta frame plus the actas behind its rejected and missing rows, as actas still
    to come (their figures are unknown, not zero: the model predicts them from their area
    and electors like any pending acta), and how many there are."""
    from escrutinio.count import unresolved_actas
    from escrutinio.domain import ActaStatus

    try:
        reports = store.load_row_reports(info.snapshot_id)
    except EscrutinioError:
        return actas, 0
    extra = unresolved_actas(reports, actas)
    if extra.is_empty():
        return actas, 0
    extra = extra.with_columns(pl.lit(ActaStatus.PENDING.value).alias("status"))
    return pl.concat([actas, extra.select(actas.columns)], how="vertical_relaxed"), \
        extra.height


def _warning(code: str, es: str, en: str) -> dict[str, str]:
    return {"code": code, "es": es, "en": en}


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
    from escrutinio.projection.units import complete_with_national, finest_units

    key = (info.snapshot_id, with_national, nat_info.snapshot_id if nat_info else None)
    with _CACHE_LOCK:
        got = _UNIT_CUTS.get(key)
        if got is not None:
            _UNIT_CUTS.move_to_end(key)
            return got
    contest = store.contest(info.contest_id)
    raw = _frame(store, info)
    fine = finest_units(raw)
    level = fine["level"][0] if fine.height else Level.NATIONAL.value
    nat: pl.DataFrame | None = None
    own = False
    warns: list[dict[str, str]] = []
    missing: tuple[str, ...] = ()
    if level != Level.NATIONAL.value:
        own_rows = raw.filter(pl.col("level") == Level.NATIONAL.value)
        if own_rows.height == 1:
            nat, own = own_rows, True
        elif with_national and nat_info is not None:
            nat = _frame(store, nat_info)
    units = fine
    if nat is not None and with_national:
        units = complete_with_national(fine, nat)
        if "__rest__" in units["unit_code"].to_list():
            geo = store.geography(info.contest_id).filter(pl.col("level") == level)
            present = set(fine["unit_code"].to_list())
            gone = geo.filter(~pl.col("code").is_in(list(present)))
            missing = tuple(gone["code"].to_list())
            home_gone = gone.filter(~pl.col("abroad").fill_null(False))
            names = [f"{c} {nm}" for c, nm in zip(gone["code"].to_list(),
                                                     gone["name"].to_list(), strict=True)]
            shown = ", ".join(names[:25]) + (" …" if len(names) > 25 else "")
            if own or home_gone.height or not missing:
                es = ("las unidades no suman la fila nacional de la propia instantánea"
                      if own else "las unidades no suman el corte nacional del mismo minuto")
                en = ("the units do not add up to the snapshot's own national row" if own
                      else "the units do not add up to the national cut of the same minute")
                warns.append(_warning(
                    "units_missing",
                    f"{es}: se proyecta desde la fila nacional (la diferencia es una unidad "
                    f"más); faltan {len(missing):,} unidades" + (f": {shown}" if missing
                                                               else ""),
                    f"{en}: projected from the national row (the difference is one more "
                    f"unit); {len(missing):,} units are missing" + (f": {shown}" if missing
                                                                   else "")))
            rest = units.filter(pl.col("unit_code") == "__rest__")
            if any((rest[c.column][0] or 0) < 0 for c in contest.candidates):
                warns.append(_warning(
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
                warns.append(_warning(
                    "leader_differs",
                    f"en la suma de las unidades adelanta {sum_lead}, en la fila nacional "
                    f"{nat_lead}: vale la fila nacional",
                    f"{sum_lead} leads in the sum of the units, {nat_lead} in the national "
                    "row: the national row is used"))
    elif with_national and level != Level.NATIONAL.value:
        nats = [s for s in store.list_snapshots(info.contest_id, SnapshotKind.UNITS)
                if s.level == Level.NATIONAL.value and s.n_rows]
        if nats:
            total = int(cast(int, _frame(store, nats[-1])["actas_total"].max() or 0))
            have = int(fine["actas_total"].fill_null(0).sum()) \
                if "actas_total" in fine.columns else 0
            if have < total:
                warns.append(_warning(
                    "coverage",
                    f"las unidades cubren {have:,} de {total:,} actas y ningún corte nacional "
                    "del mismo minuto las completa: se proyecta solo lo que cubren",
                    f"the units cover {have:,} of {total:,} actas and no national cut of the "
                    "same minute completes them: this projects only what they cover"))
    cut = UnitCut(info, units, nat, own, missing, tuple(warns),
                  _metadata_fraction(store, info, nat_info))
    with _CACHE_LOCK:
        _UNIT_CUTS[key] = cut
        _trim(_UNIT_CUTS, lambda c: int(c.units.estimated_size()))
    return cut


def _metadata_fraction(store: Store, info: SnapshotInfo,
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
            warns.append(_warning(
                "actas_total_changed",
                f"el total de actas cambió de {a:,} ({prev.info.label}) a {b:,} en este corte: "
                "la fuente no es coherente entre cortes (p. ej. totales del extranjero rotos)",
                f"the total number of actas changed from {a:,} ({prev.info.label}) to {b:,} "
                "at this cut: the source is not consistent between cuts (e.g. broken abroad "
                "totals)"))
    return warns


@dataclass(frozen=True, slots=True)
class ResolvedBaseline:
    contest_id: str
    info: SnapshotInfo
    frame: pl.DataFrame
    default: bool


def _baseline_snapshot(store: Store, contest_id: str, ref: str) -> SnapshotInfo:
    from escrutinio.projection.baseline_join import ORDER

    held = sorted(c.id for c in store.contests())
    if contest_id not in held:
        raise UnknownReferenceError(
            f"--baseline-contest: la contienda {contest_id!r} no está en el almacén; hay: "
            + ", ".join(held),
            f"--baseline-contest: contest {contest_id!r} is not in the store; it holds: "
            + ", ".join(held))
    if ref != "latest":
        return store.snapshot(ref, contest_id=contest_id)
    snaps = [s for s in store.list_snapshots(contest_id) if s.n_rows]
    if not snaps:
        raise EscrutinioError(
            f"la contienda de la línea de base {contest_id!r} no tiene instantáneas con filas",
            f"the baseline contest {contest_id!r} has no snapshots with rows")
    actas = [s for s in snaps if s.kind is SnapshotKind.ACTAS]
    if actas:
        return actas[-1]
    finest = max((s.level or "national" for s in snaps), key=ORDER.index)
    return [s for s in snaps if (s.level or "national") == finest][-1]


def resolve_baseline(store: Store, contest_id: str, *, baseline_contest: str | None,
                     baseline_ref: str = "latest", use_default: bool = True
                     ) -> ResolvedBaseline | None:
    """The baseline to use: ``baseline_contest`` if given, else the earlier round of the
    same election (:func:`default_baseline_contest`) when ``use_default``."""
    default = False
    if baseline_contest is None and use_default:
        baseline_contest = default_baseline_contest(store, contest_id)
        default = baseline_contest is not None
    if baseline_contest is None:
        return None
    info = _baseline_snapshot(store, baseline_contest, baseline_ref)
    return ResolvedBaseline(baseline_contest, info, _frame(store, info), default)


def _describe(base: ResolvedBaseline, join: Any) -> dict[str, Any]:
    cov = join.coverage_remaining
    how = "por omisión: la vuelta anterior" if base.default else "pedida"
    how_en = "by default: the earlier round" if base.default else "requested"
    pct = f"{100 * cov:.1f}%" if cov is not None else "—"
    return {
        "contest_id": base.contest_id, "snapshot_id": base.info.snapshot_id,
        "snapshot_label": base.info.label, "kind": base.info.kind.value,
        "default": base.default, "baseline_level": join.baseline_level,
        "count_level": join.count_level, "join_level": join.join_level,
        "n_joined": join.n_joined, "n_rows": join.n_rows,
        "coverage_remaining": cov,
        "es": f"línea de base {base.contest_id} ({how}), instantánea {base.info.label}, "
              f"unida a nivel {join.join_level}; cubre {pct} de lo que falta contar",
        "en": f"baseline {base.contest_id} ({how_en}), snapshot {base.info.label}, joined "
              f"at level {join.join_level}; covers {pct} of what remains to be counted",
    }


def project(store: Store, ref_or_info: str | SnapshotInfo, *, params: ModelParams,
            baseline_contest: str | None = None, baseline_ref: str = "latest",
            blocs: dict[str, list[str]] | None = None, with_national: bool = True,
            use_default_baseline: bool = True, contest_id: str | None = None,
            kind: SnapshotKind | None = None, pairs: tuple[tuple[str, str], ...] = ()
            ) -> Projection:
    """The projection of one stored snapshot, for every caller (CLI ``project`` and
    ``replay``, the API and the dashboard): the same snapshot, parameters and seed give
    the same figures everywhere.

    * per-acta snapshots: :func:`~escrutinio.projection.model.project_actas`;
    * national cuts with the source's fraction counted and no acta counts: the series
      model (:func:`~escrutinio.projection.units.project_series`);
    * unit snapshots: :func:`~escrutinio.projection.units.project_units` on the finest
      units, completed with the national row (:func:`unit_cut`), with the earlier cuts of
      the same level as history.

    Baseline: ``baseline_contest`` (snapshot ``baseline_ref``), else the earlier round of
    the same election (:func:`default_baseline_contest`) unless ``use_default_baseline``
    is False; joined at the finest level both share
    (:mod:`escrutinio.projection.baseline_join`). The result's diagnostics and provenance
    name it, its join level and the share of what remains it covers. Court/review
    outcome rates: :func:`review_outcomes` (unless ``params.jee`` was set by the caller).
    """
    from dataclasses import replace

    from escrutinio.projection.baseline_join import (
        BaselineJoinError,
        join_for_actas,
        join_for_units,
    )
    from escrutinio.projection.model import JeeOutcomes, project_actas
    from escrutinio.projection.units import project_series, project_units

    if isinstance(ref_or_info, SnapshotInfo):
        info = ref_or_info
    else:
        cid = default_contest(store, contest_id)
        info = store.snapshot(ref_or_info, contest_id=cid, kind=kind)
    contest = store.contest(info.contest_id)
    review: dict[str, Any] | None = None
    if params.jee == JeeOutcomes():
        jee, review = review_outcomes(store, contest)
        params = replace(params, jee=jee)
    base = resolve_baseline(store, info.contest_id, baseline_contest=baseline_contest,
                            baseline_ref=baseline_ref, use_default=use_default_baseline)
    warns: list[dict[str, str]] = []
    described: dict[str, Any] | None = None
    extra_ids: tuple[str, ...] = ()

    def unusable(exc: EscrutinioError) -> None:
        assert base is not None
        if not base.default:
            raise exc
        warns.append(_warning(
            "baseline_unused",
            f"la vuelta anterior ({base.contest_id}) no se usa como línea de base: "
            f"{exc.message_es}",
            f"the earlier round ({base.contest_id}) is not used as a baseline: "
            f"{exc.message_en}"))

    if info.kind is SnapshotKind.ACTAS:
        actas, n_unresolved = _with_unresolved(
            store, info, _with_vote_types(store, info, _frame(store, info)))
        if n_unresolved:
            warns.append(_warning(
                "unresolved_as_pending",
                f"{n_unresolved:,} actas rechazadas o faltantes se proyectan como pendientes "
                "(sus cifras se desconocen; no cuentan como cero)",
                f"{n_unresolved:,} rejected or missing actas are projected as still to come "
                "(their figures are unknown; they do not count as zero)"))
        frame = None
        if base is not None:
            try:
                join = join_for_actas(actas, base.frame, base_kind=base.info.kind.value)
                frame, described = join.frame, _describe(base, join)
            except BaselineJoinError as exc:
                unusable(exc)
        proj = project_actas(actas, contest, baseline=frame,
                             blocs=blocs if frame is not None else None, params=params,
                             snapshot_id=info.snapshot_id, as_of=info.as_of, pairs=pairs,
                             baseline_snapshot_id=base.info.snapshot_id
                             if frame is not None and base is not None else "")
    else:
        series = _series_history(store, info)
        if series is not None:  # national totals alone, with the source's fraction counted
            cuts, ids = series
            if base is not None:
                unusable(BaselineJoinError(
                    "una serie nacional no tiene unidades con las que unirse",
                    "a national series has no units to join"))
            proj = project_series(cuts, contest, params=params, snapshot_id=info.snapshot_id,
                                  as_of=info.as_of, pairs=pairs)
            # reproducible: every cut the series model saw, this one first
            proj = replace(proj, provenance=replace(proj.provenance, snapshot_ids=(
                info.snapshot_id, *(i for i in ids if i != info.snapshot_id))))
        else:
            cut = unit_cut(store, info, with_national=with_national)
            earlier = earlier_unit_cuts(store, info, with_national=with_national)
            warns.extend(unit_cut_warnings(cut, earlier))
            ub = None
            if base is not None:
                try:
                    join = join_for_units(cut.units, base.frame,
                                          base_kind=base.info.kind.value,
                                          parents=_all_parents(store, base.contest_id,
                                                               info.contest_id))
                    ub, described = join.frame, _describe(base, join)
                    extra_ids = (base.info.snapshot_id,)
                except BaselineJoinError as exc:
                    unusable(exc)
            proj = project_units(cut.units, contest,
                                 parents=area_parents(store, info.contest_id), baseline=ub,
                                 blocs=blocs if ub is not None else None,
                                 remaining=_source_remaining(store, info), params=params,
                                 snapshot_id=info.snapshot_id, as_of=info.as_of, pairs=pairs,
                                 history=tuple(c.units for c in earlier))
            # reproducible: every earlier cut the drift was learned from
            extra_ids = (*extra_ids, *(c.info.snapshot_id for c in earlier))
            diag_units = {"missing_units": list(cut.missing_units),
                          "national_row": ("own" if cut.own_national else
                                           "same_minute_cut" if cut.national is not None
                                           else None),
                          "n_history_cuts": len(earlier)}
            proj = replace(proj, diagnostics={**proj.diagnostics, **diag_units})
    return _finish(proj, described, warns, review, extra_ids)


def _all_parents(store: Store, *contest_ids: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for cid in reversed(contest_ids):  # the first contest's geography wins
        out.update(area_parents(store, cid))
    return out


def _finish(proj: Projection, described: dict[str, Any] | None,
            warns: list[dict[str, str]], review: dict[str, Any] | None,
            extra_ids: tuple[str, ...]) -> Projection:
    from dataclasses import replace

    diag = dict(proj.diagnostics)
    diag["baseline"] = described
    if review is not None:
        diag["review_outcomes"] = review
    old = diag.get("warnings")
    all_warns = [*(old if isinstance(old, list) else []), *warns]
    diag["warnings"] = all_warns
    cov = next((w for w in warns if w["code"] in ("coverage", "units_missing")), None)
    if cov is not None:
        diag["coverage_warning"] = {"es": cov["es"], "en": cov["en"]}
    params = dict(proj.provenance.parameters)
    params["baseline"] = None if described is None else {
        k: described[k] for k in ("contest_id", "snapshot_id", "join_level",
                                  "coverage_remaining", "default")}
    if review is not None:
        params["review_outcomes"] = review["basis"]
    ids = proj.provenance.snapshot_ids
    ids = (*ids, *(i for i in extra_ids if i not in ids))
    return replace(proj, diagnostics=diag,
                   provenance=replace(proj.provenance, parameters=params, snapshot_ids=ids))


# --- replay of a stored count (CLI ``replay``) ------------------------------------------

REPLAY_MODES = ("auto", "actas", "snapshots", "units", "series")


def _final_votes(store: Store, info: SnapshotInfo, contest: Contest) -> dict[str, int]:
    if info.kind is SnapshotKind.ACTAS:
        counted = _frame(store, info).filter(pl.col("status") == "counted")
        return {x.code: int(counted[x.column].fill_null(0).sum()) for x in contest.candidates}
    return unit_cut(store, info).counted(contest)


def _series_fraction(store: Store, info: SnapshotInfo,
                     md: dict[str, dict[str, str]] | None = None) -> float | None:
    """Fraction counted of a national cut: its acta counts, else the source's own figure
    (metadata ``pct_votes_counted``)."""
    r0 = _frame(store, info).row(0, named=True)
    if r0.get("actas_total") and r0.get("actas_counted") is not None:
        return float(r0["actas_counted"] / r0["actas_total"])
    return _metadata_fraction(store, info, None, md)


def replay(store: Store, *, params: ModelParams, contest_id: str | None = None,
           mode: str = "auto", final_ref: str | None = None,
           baseline_contest: str | None = None, baseline_ref: str = "latest",
           blocs: dict[str, list[str]] | None = None, order_seed: int = 2021,
           tilt_by: str = "area3_code", from_pct: float = 67.0,
           use_default_baseline: bool = True,
           progress: Callable[[int, int], Any] | None = None) -> ReplayResult:
    """Replay a stored count and score the projection against its final result
    (docs/projection.md §Replay). Modes: ``actas`` (arrival order rebuilt from the national
    cuts), ``snapshots`` (per-acta snapshots as published), ``units`` (every unit snapshot,
    projected by :func:`project` as ``escrutinio project`` would), ``series`` (national
    totals alone); ``auto`` picks the first the store allows. Cuts that cannot be projected
    are skipped with their reason (``ReplayResult.skipped``). The provenance names the mode
    and the baseline (a series never uses one)."""
    from dataclasses import replace

    res = _replay(store, params=params, contest_id=contest_id, mode=mode, final_ref=final_ref,
                  baseline_contest=baseline_contest, baseline_ref=baseline_ref, blocs=blocs,
                  order_seed=order_seed, tilt_by=tilt_by, from_pct=from_pct,
                  use_default_baseline=use_default_baseline, progress=progress)
    base = None
    if res.basis != "series":
        base = resolve_baseline(store, res.contest_id, baseline_contest=baseline_contest,
                                baseline_ref=baseline_ref, use_default=use_default_baseline)
    desc = None if base is None else {"contest_id": base.contest_id,
                                      "snapshot_id": base.info.snapshot_id,
                                      "default": base.default}
    ids = res.provenance.snapshot_ids
    if base is not None and base.info.snapshot_id not in ids:
        ids = (*ids, base.info.snapshot_id)
    parameters = {**res.provenance.parameters, "basis": res.basis, "baseline": desc,
                  "n_sims": params.n_sims}
    return replace(res, provenance=replace(res.provenance, parameters=parameters,
                                           snapshot_ids=ids))


def _replay(store: Store, *, params: ModelParams, contest_id: str | None, mode: str,
            final_ref: str | None, baseline_contest: str | None, baseline_ref: str,
            blocs: dict[str, list[str]] | None, order_seed: int, tilt_by: str,
            from_pct: float, use_default_baseline: bool,
            progress: Callable[[int, int], Any] | None) -> ReplayResult:
    from escrutinio.projection.baseline_join import join_for_actas
    from escrutinio.projection.model import prepare_baseline
    from escrutinio.projection.order import (
        ActaState,
        cuts_from_unit_snapshots,
        derive_arrival_order,
        unit_progress_from_frames,
    )
    from escrutinio.projection.replay import (
        CutMeta,
        SkippedCut,
        replay_actas,
        replay_series,
        replay_snapshots,
        run_replay,
    )

    if mode not in REPLAY_MODES:
        raise EscrutinioError(f"modo desconocido {mode!r}: use {', '.join(REPLAY_MODES)}",
                              f"unknown mode {mode!r}: use {', '.join(REPLAY_MODES)}")
    cid = default_contest(store, contest_id)
    c = store.contest(cid)
    snaps = [s for s in store.list_snapshots(cid) if s.n_rows]
    actas = [s for s in snaps if s.kind is SnapshotKind.ACTAS]
    nat = [s for s in snaps if s.kind is SnapshotKind.UNITS and s.level == "national"]
    sub = [s for s in snaps if s.kind is SnapshotKind.UNITS and s.level not in
           (None, "national")]
    if final_ref is not None:
        fin_info = store.snapshot(final_ref, contest_id=cid)
    elif actas:
        fin_info = actas[-1]
    elif nat:
        fin_info = nat[-1]
    elif sub:
        fin_info = sub[-1]
    else:
        raise EscrutinioError("no hay instantáneas para reproducir", "no snapshots to replay")
    final = _final_votes(store, fin_info, c)
    if mode == "auto":
        if fin_info.kind is SnapshotKind.ACTAS and nat:
            mode = "actas"
        elif len(actas) >= 2:
            mode = "snapshots"
        elif sub:
            mode = "units"
        else:
            mode = "series"
    order_ = sorted(final, key=lambda x: -final[x])
    race = (order_[0], order_[1])
    if mode in ("actas", "snapshots"):
        if fin_info.kind is not SnapshotKind.ACTAS:
            raise EscrutinioError(f"el modo {mode!r} necesita una instantánea final por acta",
                                  f"mode {mode!r} needs a final per-acta snapshot")
        ff = _frame(store, fin_info)
        base = resolve_baseline(store, cid, baseline_contest=baseline_contest,
                                baseline_ref=baseline_ref, use_default=use_default_baseline)
        base_arg = None
        if base is not None:
            join = join_for_actas(ff, base.frame, base_kind=base.info.kind.value)
            base_arg = prepare_baseline(join.frame, blocs)
        if mode == "actas":
            if not nat:
                raise EscrutinioError("no hay cortes nacionales para reproducir",
                                      "no national cuts to replay")
            cuts = cuts_from_unit_snapshots(
                [(s.as_of, _frame(store, s), s.label, s.snapshot_id) for s in nat], c)
            states = [ActaState(s.as_of, _frame(store, s), s.label)
                      for s in actas if s.snapshot_id != fin_info.snapshot_id]
            units = unit_progress_from_frames(
                [(s.as_of, _frame(store, s), s.label) for s in sub])
            order = derive_arrival_order(ff, c, cuts, states=states, units=units,
                                         seed=order_seed, tilt_by=tilt_by)
            return replay_actas(order, c, baseline=base_arg, params=params, final=final,
                                from_pct=from_pct, progress=progress)
        items_a = [(CutMeta(s.as_of, s.label, s.snapshot_id, None, {}), _frame(store, s))
                   for s in actas if s.snapshot_id != fin_info.snapshot_id
                   and s.as_of <= fin_info.as_of]
        if not items_a:
            raise EscrutinioError("no hay instantáneas por acta anteriores a la final",
                                  "no per-acta snapshots before the final one")
        return replay_snapshots(items_a, c, final=final, baseline=base_arg, params=params,
                                from_pct=from_pct, progress=progress)
    if mode == "units":
        cuts_u = [s for s in sub if s.as_of <= fin_info.as_of]
        if not cuts_u:
            raise EscrutinioError("no hay instantáneas por unidad", "no unit snapshots")
        metas = []
        for s in cuts_u:
            cut = unit_cut(store, s)
            metas.append(CutMeta(s.as_of, s.label, s.snapshot_id, cut.pct_counted,
                                 cut.counted(c)))

        def one(i: int) -> Projection:
            s = cuts_u[i]
            cut = unit_cut(store, s)
            if cut.national is None and nat:
                # a subnational table without a national row may not cover the whole
                # country (ONPE 2021: no abroad): not projected
                raise EscrutinioError(
                    "instantánea por unidad sin fila nacional ni corte nacional del mismo "
                    "minuto: puede no cubrir todo el país",
                    "unit snapshot without a national row or a national cut of the same "
                    "minute: it may not cover the whole country")
            return project(store, s, params=params, baseline_contest=baseline_contest,
                           baseline_ref=baseline_ref, blocs=blocs,
                           use_default_baseline=use_default_baseline, pairs=(race,))

        return run_replay(cid, "units", metas, one, final, race=race, from_pct=from_pct,
                          progress=progress, seed=params.seed)
    # series: national totals alone
    metas_s: list[CutMeta] = []
    fracs: list[float] = []
    skipped: list[SkippedCut] = []
    md = dict(store.snapshot_metadata(cid))
    for s in nat:
        if s.as_of > fin_info.as_of:
            continue
        f = _series_fraction(store, s, md)
        r0 = _frame(store, s).row(0, named=True)
        counted = {x.code: int(r0[x.column] or 0) for x in c.candidates}
        if f is None:
            skipped.append(SkippedCut(
                len(metas_s) + len(skipped), s.as_of, s.label, s.snapshot_id, None,
                "el corte no dice qué fracción se contó (ni actas ni porcentaje de votos)",
                "the cut does not say what fraction was counted (no acta counts, no share "
                "of the votes)"))
            continue
        metas_s.append(CutMeta(s.as_of, s.label, s.snapshot_id, 100 * f, counted))
        fracs.append(f)
    if not metas_s:
        raise EscrutinioError(
            "ningún corte nacional dice qué fracción se contó: no hay serie que reproducir",
            "no national cut says what fraction was counted: no series to replay")
    return replay_series(metas_s, fracs, c, final=final, params=params, race=race,
                         from_pct=from_pct, progress=progress, skipped=skipped)
