"""What a projection is given beyond the count: the baseline (by default the earlier
round of the same election) and the court/review outcome rates of the contest."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

from escrutinio.domain import Contest, SnapshotKind
from escrutinio.errors import EscrutinioError, UnknownReferenceError
from escrutinio.service.common import stored_frame
from escrutinio.store.base import SnapshotInfo, Store

if TYPE_CHECKING:
    from escrutinio.projection.model import JeeOutcomes


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
                     "lean_margin_sd": jee.lean_margin_sd,
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
                source=_source_text(d.get("source")),
                lean_margin_sd=None if d.get("lean_margin_sd") is None
                else float(d["lean_margin_sd"]))
            if not 0.0 <= jee.p_annulled <= 1.0 or not 0.0 <= jee.p_corrected <= 1.0:
                raise ValueError("rates outside [0, 1]")
        except (ValueError, KeyError, TypeError) as exc:
            raise EscrutinioError(
                f"la contienda {contest.id} declara {REVIEW_OUTCOMES_KEY} inválido ({exc}): "
                "se espera {\"p_annulled\": 0..1, ...}",
                f"contest {contest.id} declares an invalid {REVIEW_OUTCOMES_KEY} ({exc}): "
                "expected {\"p_annulled\": 0..1, ...}") from exc
        return jee, {"basis": "declared", "p_annulled": jee.p_annulled, "source": jee.source,
                     "lean_margin_sd": jee.lean_margin_sd,
                     "es": "tasas declaradas por la contienda", "en": "rates the contest "
                     "declares"}
    jee = unknown_review()
    return jee, {"basis": "unknown", "p_annulled": None, "source": jee.source,
                 "lean_margin_sd": None,
                 "es": "se desconoce qué parte de las actas en revisión se anulará (no hay "
                       "tasas medidas para este país y la contienda no declara tasas): se usa "
                       "una tasa desconocida, "
                       "uniforme entre 0 y 1, que ensancha el intervalo",
                 "en": "what share of the sheets under review will be annulled is unknown "
                       "(no measured rates for this country and the contest declares none): "
                       "an unknown rate, "
                       "uniform between 0 and 1, is used and widens the interval"}


def _source_text(v: object) -> str:
    if isinstance(v, dict):
        return " / ".join(str(v[k]) for k in ("es", "en") if k in v)
    return str(v) if v else "declarada por la contienda / declared by the contest sidecar"


def unknown_review() -> JeeOutcomes:
    """Review outcome rates when nothing is known: a uniform annulment rate."""
    from escrutinio.projection.model import JeeOutcomes

    # mean 1/2, variance 1/12 (rate_prior_n = 2: the variance of a uniform rate)
    return JeeOutcomes(p_annulled=0.5, p_corrected=0.5, correction_sd=21.0, rate_prior_n=2.0,
                       source="desconocido / unknown: uniform rate in [0, 1]",
                       lean_margin_sd=None)


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
    return ResolvedBaseline(baseline_contest, info, stored_frame(store, info), default)


def describe_baseline(base: ResolvedBaseline, join: Any) -> dict[str, Any]:
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


def first_round_actas(store: Store, contest_id: str) -> SnapshotInfo | None:
    """The latest per-acta snapshot of the first round of the same country and year, when
    ``contest_id`` is a runoff (what the forensic screen compares a runoff with)."""
    from escrutinio.domain import ContestKind

    contest = store.contest(contest_id)
    if contest.kind is not ContestKind.RUNOFF:
        return None
    for c in store.contests():
        if (c.kind is ContestKind.FIRST_ROUND and c.country == contest.country
                and c.date[:4] == contest.date[:4]):
            snaps = store.list_snapshots(c.id, SnapshotKind.ACTAS)
            if snaps:
                return snaps[-1]
    return None
