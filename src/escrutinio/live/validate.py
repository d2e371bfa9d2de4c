"""Validate a reading BEFORE accepting it.

Two kinds of checks:

* :func:`check_reading` — the reading on its own. ``reject`` rules mean the response is
  wrong or torn and must never be served: an expected candidate missing (by code), an
  unknown candidate (wrong election id, schema drift), a negative count, the acta
  invariant broken (counted + at the JEE + pending ≠ total), more counted actas than
  actas, candidate votes above the valid total (or not adding up to it when every
  candidate is known), valid above cast. ``flag`` rules are kept as findings of the
  snapshot: published percentages that disagree with count/total, cast above electors,
  cast ≠ valid + blank + null (+ challenged).
* :func:`check_progress` — the reading against the last accepted one of the same scope.
  An older ONPE update time is a stale answer (a cache serving an earlier state): reject.
  A decrease (counted actas, processed actas, cast, valid, any candidate) is a possible
  correction: the watcher accepts it only when ``confirm_decreases`` readings in a row
  (ONPE time not going back) stay below the accepted state, and logs it as a correction
  event. Votes that
  change while counted actas do not are an alarm (accepted, flagged).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from escrutinio.live.config import ValidationConfig
from escrutinio.live.parse import ActaReading, UnitReading

REJECT: Final = "reject"
FLAG: Final = "flag"

#: counts that must never go down except by a correction
MONOTONE: Final = ("actas_counted", "actas_processed", "cast")


@dataclass(frozen=True, slots=True)
class Problem:
    rule: str
    severity: str  # reject | flag
    field: str
    message_es: str
    message_en: str

    def to_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "severity": self.severity, "field": self.field,
                "message_es": self.message_es, "message_en": self.message_en}


def _p(rule: str, severity: str, field: str, es: str, en: str) -> Problem:
    return Problem(rule, severity, field, es, en)


def rejects(problems: Iterable[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == REJECT]


def check_reading(r: UnitReading, cfg: ValidationConfig) -> list[Problem]:
    """Rules on one reading alone (see the module docstring)."""
    out: list[Problem] = []
    if r.missing:
        out.append(_p("missing_candidate", REJECT, "votes",
                      f"faltan candidatos esperados: {', '.join(r.missing)}",
                      f"expected candidates are missing: {', '.join(r.missing)}"))
    if r.extra and not cfg.allow_extra_candidates:
        codes = ", ".join(sorted(r.extra))
        out.append(_p("unknown_candidate", REJECT, "votes",
                      f"candidatos que la contienda no tiene (¿otra elección?): {codes}",
                      f"candidates the contest does not have (another election?): {codes}"))
    numbers = {**{k: v for k, v in r.counts.items()}, "valid": r.valid,
               **{f"v_{c}": v for c, v in r.votes.items()}}
    neg = sorted(k for k, v in numbers.items() if v is not None and v < 0)
    if neg:
        out.append(_p("negative_count", REJECT, neg[0], f"conteos negativos: {', '.join(neg)}",
                      f"negative counts: {', '.join(neg)}"))
    c = r.counts
    total, counted, jee, pending = (c.get("actas_total"), c.get("actas_counted"),
                                    c.get("actas_jee"), c.get("actas_pending"))
    if None not in (total, counted, jee, pending):
        assert total is not None and counted is not None and jee is not None
        assert pending is not None
        if counted + jee + pending != total:
            out.append(_p("acta_invariant", REJECT, "actas_total",
                          f"contabilizadas + JEE + pendientes = {counted + jee + pending} "
                          f"≠ total {total}",
                          f"counted + JEE + pending = {counted + jee + pending} "
                          f"≠ total {total}"))
    if total is not None and counted is not None and counted > total:
        out.append(_p("counted_above_total", REJECT, "actas_counted",
                      f"más actas contabilizadas ({counted}) que actas ({total})",
                      f"more counted actas ({counted}) than actas ({total})"))
    processed = c.get("actas_processed")
    if processed is not None and counted is not None and jee is not None \
            and processed != counted + jee:
        out.append(_p("processed_identity", FLAG, "actas_processed",
                      "procesadas ≠ contabilizadas + JEE", "processed ≠ counted + JEE"))
    votes = [v for v in r.votes.values() if v is not None]
    s_votes = sum(votes) + (sum(r.extra.values()) if cfg.allow_extra_candidates else 0)
    if r.valid is not None and not r.missing:
        if s_votes > r.valid:
            out.append(_p("votes_above_valid", REJECT, "valid",
                          f"los candidatos suman {s_votes} > válidos {r.valid}",
                          f"candidates add up to {s_votes} > valid {r.valid}"))
        elif s_votes != r.valid and (not r.extra or cfg.allow_extra_candidates):
            out.append(_p("valid_total_mismatch", REJECT, "valid",
                          f"los candidatos suman {s_votes} ≠ válidos {r.valid} (¿lectura "
                          "cruzada de dos estados?)",
                          f"candidates add up to {s_votes} ≠ valid {r.valid} (a torn read "
                          "across two states?)"))
    cast = c.get("cast")
    valid = r.valid if r.valid is not None else (s_votes if not r.missing else None)
    if cast is not None and valid is not None and valid > cast:
        out.append(_p("valid_above_cast", REJECT, "cast",
                      f"válidos {valid} > emitidos {cast}", f"valid {valid} > cast {cast}"))
    electors = c.get("electors")
    if cast is not None and electors is not None and cast > electors:
        out.append(_p("cast_above_electors", FLAG, "cast",
                      f"emitidos {cast} > electores {electors}",
                      f"cast {cast} > electors {electors}"))
    blank, null = c.get("blank"), c.get("null")
    if None not in (cast, valid, blank, null):
        assert cast is not None and valid is not None and blank is not None
        assert null is not None
        chal = c.get("challenged") or 0
        if valid + blank + null + chal != cast:
            out.append(_p("cast_identity", FLAG, "cast",
                          "emitidos ≠ válidos + blancos + nulos (+ impugnados)",
                          "cast ≠ valid + blank + null (+ challenged)"))
    pct = r.percents.get("actas_counted")
    if pct is not None and total and counted is not None:
        derived = 100.0 * counted / total
        if abs(derived - pct) > cfg.pct_tolerance_pp:
            out.append(_p("percent_mismatch", FLAG, "actas_counted",
                          f"% de actas contabilizadas publicado {pct} ≠ {derived:.3f} calculado",
                          f"published % of counted actas {pct} ≠ derived {derived:.3f}"))
    return out


@dataclass(frozen=True, slots=True)
class Progress:
    stale: bool  # older ONPE time than the accepted state
    duplicate: bool  # same numbers as the accepted state
    decreases: tuple[tuple[str, int, int], ...]  # (field, before, after)
    alarms: tuple[Problem, ...]  # accepted, but worth a look


def check_progress(prev: UnitReading | None, new: UnitReading) -> Progress:
    """Compare a reading with the last accepted one of the same scope."""
    if prev is None:
        return Progress(False, False, (), ())
    if new.fingerprint() == prev.fingerprint():
        return Progress(False, True, (), ())
    stale = prev.as_of is not None and new.as_of is not None and new.as_of < prev.as_of
    fields = [*MONOTONE, *(f"v_{c}" for c in new.votes), "valid"]

    def val(r: UnitReading, f: str) -> int | None:
        if f == "valid":
            return r.valid
        if f.startswith("v_"):
            return r.votes.get(f[2:])
        return r.counts.get(f)

    dec = []
    for f in fields:
        a, b = val(prev, f), val(new, f)
        if a is not None and b is not None and b < a:
            dec.append((f, a, b))
    alarms: list[Problem] = []
    if prev.counts.get("actas_total") is not None and new.counts.get("actas_total") is not None \
            and prev.counts["actas_total"] != new.counts["actas_total"]:
        alarms.append(_p("total_actas_changed", FLAG, "actas_total",
                         f"el total de actas cambió: {prev.counts['actas_total']} → "
                         f"{new.counts['actas_total']}",
                         f"the total of actas changed: {prev.counts['actas_total']} → "
                         f"{new.counts['actas_total']}"))
    if prev.counts.get("actas_counted") == new.counts.get("actas_counted") and any(
            prev.votes.get(k) != v for k, v in new.votes.items()):
        alarms.append(_p("votes_without_new_actas", FLAG, "votes",
                         "los votos cambiaron sin nuevas actas contabilizadas",
                         "votes changed with no new counted actas"))
    return Progress(stale, False, tuple(dec), tuple(alarms))


def check_acta(prev: ActaReading | None, new: ActaReading,
               cfg: ValidationConfig | None = None) -> list[Problem]:
    """One acta: no negative count; when it has per-party figures, every expected
    candidate and no unknown one (another election's answer); a counted acta should
    never change its figures and a final state never moves back (flags: the watcher
    holds such a change until it is confirmed)."""
    out: list[Problem] = []
    neg = [k for k, v in {**dict(new.figures), **dict(new.votes)}.items()
           if v is not None and v < 0]
    if neg:
        out.append(_p("negative_count", REJECT, neg[0], "conteos negativos en el acta",
                      "negative counts in the acta"))
    has_detail = any(v is not None for v in new.votes.values())
    if has_detail and new.missing:
        out.append(_p("missing_candidate", REJECT, "votes",
                      f"faltan candidatos esperados en el acta: {', '.join(new.missing)}",
                      f"expected candidates are missing in the acta: "
                      f"{', '.join(new.missing)}"))
    if new.extra and not (cfg is not None and cfg.allow_extra_candidates):
        codes = ", ".join(sorted(new.extra))
        out.append(_p("unknown_candidate", REJECT, "votes",
                      f"el acta trae partidos que la contienda no tiene: {codes}",
                      f"the acta carries parties the contest does not have: {codes}"))
    if new.status == "counted":
        cast = new.figures.get("cast")
        parts = [*new.votes.values(), new.figures.get("blank"), new.figures.get("null")]
        if cast is not None and None not in parts:
            s = sum(x or 0 for x in parts) + (new.figures.get("challenged") or 0)
            if s != cast:
                out.append(_p("acta_sum", FLAG, "cast",
                              "votos del acta ≠ emitidos", "acta votes ≠ cast"))
    if prev is not None and prev.status == "counted":
        if new.status != "counted":
            out.append(_p("counted_acta_moved", FLAG, "status",
                          f"un acta contabilizada pasó a {new.status}",
                          f"a counted acta moved to {new.status}"))
        elif new.fingerprint() != prev.fingerprint():
            out.append(_p("counted_acta_changed", FLAG, "votes",
                          "un acta contabilizada cambió sus cifras",
                          "a counted acta changed its figures"))
    return out


def aggregate_drift(national: UnitReading, parts: list[UnitReading]) -> dict[str, int]:
    """national − Σ parts for counted actas, cast and each candidate (non-zero only).

    ONPE's national totals and the sum of its departments disagreed at times in 2026:
    both are kept, and the difference is reported, never reconciled silently."""
    out: dict[str, int] = {}
    for f in ("actas_counted", "actas_total", "cast"):
        a = national.counts.get(f)
        b = [p.counts.get(f) for p in parts]
        if a is not None and None not in b:
            d = a - sum(x or 0 for x in b)
            if d:
                out[f] = d
    for c, v in national.votes.items():
        b = [p.votes.get(c) for p in parts]
        if v is not None and None not in b:
            d = v - sum(x or 0 for x in b)
            if d:
                out[f"v_{c}"] = d
    return out
