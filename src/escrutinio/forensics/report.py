"""Forensic screening report: every test, multiple-testing control, flagged actas, the
stakes bound and a reproducibility footer, in Spanish and English.

:func:`run_forensics` is a pure function: a canonical acta frame (and optionally the
previous round's) in, a frozen :class:`ForensicsReport` out. It never reads files.
A flag is an **anomaly, not proof**: each test lists the benign explanations to check
first, and the report says how many flags chance alone would produce.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import polars as pl

from escrutinio.domain import Contest
from escrutinio.forensics.benford import BENFORD_ALIASES, BenfordRefused
from escrutinio.forensics.common import (
    Outliers,
    Scope,
    ScopeResult,
    format_p,
    known_geography,
    sanitized,
    scopes_for,
)
from escrutinio.forensics.digits import DEFAULT_MIN_EXPECTED
from escrutinio.forensics.engine import run_count_tests
from escrutinio.forensics.fingerprint import (
    Histogram2D,
    TailShares,
    joint_tail_mask,
    run_fingerprint,
)
from escrutinio.forensics.inputs import ForensicInput, prepare
from escrutinio.forensics.integers import COMBINED, KOBAK_DRAWS, run_combined
from escrutinio.forensics.klimek import DEFAULT_BOOTSTRAP, KlimekFit, fit_klimek
from escrutinio.forensics.outliers import DEFAULT_THRESHOLD, run_place
from escrutinio.forensics.panel import run_panel
from escrutinio.forensics.stakes import Stakes, stakes_bound
from escrutinio.forensics.stats import benjamini_hochberg
from escrutinio.provenance import Provenance

TESTS: tuple[str, ...] = ("integer", "last_digit", "second_digit", "fingerprint", "place",
                          "panel")
DEFAULT_SEED = 20210606
#: a-priori weights of the weighted Benjamini-Hochberg procedure (rescaled to mean 1):
#: the national test pools every acta and answers the main question; home/abroad next;
#: regions localise. FDR stays controlled at q for any weights fixed in advance.
SCOPE_WEIGHTS: dict[str, float] = {"national": 10.0, "home": 3.0, "abroad": 3.0,
                                   "region": 1.0}

TITLES: dict[str, tuple[str, str]] = {
    "integer": ("Exceso de porcentajes enteros", "Integer-percentage excess"),
    "last_digit": ("Último dígito (nulo según tamaño)", "Last digit (size-aware null)"),
    "second_digit": ("Segundo dígito (2BL, línea base simulada)",
                     "Second digit (2BL, simulated baseline)"),
    "fingerprint": ("Huella participación × voto (colas ≥ 95 %)",
                    "Turnout × share fingerprint (≥ 95 % tails)"),
    "place": ("Atípicos dentro del local de votación", "Outliers within the polling place"),
    "panel": ("Segunda vuelta contra primera vuelta (misma mesa)",
              "Runoff against first round (same mesa)"),
}

BENIGN: dict[str, tuple[str, str]] = {
    "integer": (
        "Mesas pequeñas o de tamaño redondo (con 100 electores toda cifra es un porcentaje "
        "entero; con 200, toda cifra par; con 300, una de cada tres) — el nulo ya lo "
        "considera, así que un exceso significa algo más; actas corregidas por el JEE; "
        "errores de transcripción que redondean.",
        "Small or round-sized mesas (with 100 electors every count is a whole percentage; "
        "with 200 every even count; with 300 one in three) — the null already accounts for "
        "this, so an excess means something more; actas corrected by the JEE; "
        "transcription errors that round."),
    "last_digit": (
        "Candidatos con pocos votos por mesa (dominan los dígitos bajos); muchas mesas del "
        "mismo tamaño; errores de digitación. La prueba no sabe quién escribió las cifras.",
        "Candidates with few votes per mesa (low digits dominate); many mesas of the same "
        "size; typing errors. The test cannot tell who wrote the figures."),
    "second_digit": (
        "El segundo dígito de una cifra de tres dígitos es su decena: depende de dónde se "
        "concentran los votos de las mesas, no de la honestidad. Desvíos aparecen en "
        "elecciones limpias con mesas de tamaño parecido y candidatos fuertes (Deckert et "
        "al. 2011). Evidencia débil en cualquier sentido.",
        "The second digit of a 3-digit count is its tens digit: it depends on where mesas' "
        "votes concentrate, not on honesty. Deviations appear in clean elections with "
        "similar-sized mesas and strong candidates (Deckert et al. 2011). Weak evidence "
        "either way."),
    "fingerprint": (
        "Comunidades cerradas que votan en bloque y acuden en pleno (comunidades "
        "campesinas, bases militares, centros poblados pequeños); mesas con pocos "
        "electores; padrón depurado en una mesa.",
        "Closed communities that vote en bloc and turn out in full (peasant communities, "
        "military bases, small villages); mesas with few electors; a cleaned roll in one "
        "mesa."),
    "place": (
        "Mesas del mismo local con electorados distintos (asignación por DNI/edad, mesas "
        "de personal o de personas con discapacidad); actas resueltas por el JEE con cifras "
        "corregidas; errores de transcripción (dígitos transpuestos, votos de un candidato "
        "en la casilla del otro); una mesa con muchos electores fallecidos o emigrados.",
        "Mesas at the same place serving different electorates (assignment by ID number/"
        "age, staff or accessibility mesas); actas resolved by the JEE with corrected "
        "figures; transcription errors (transposed digits, one candidate's votes in the "
        "other's box); a mesa with many deceased or emigrated electors."),
    "panel": (
        "Electores reasignados entre vueltas (el número de mesa se reutiliza con otro "
        "padrón), un error en el acta de primera vuelta, campañas o hechos locales entre "
        "vueltas, respaldos de partidos eliminados.",
        "Electors reassigned between rounds (the mesa number reused with another roll), "
        "an error in the first-round acta, local campaigns or events between rounds, "
        "endorsements by eliminated parties."),
}

CANNOT_TELL: dict[str, tuple[str, str]] = {
    "integer": ("No detecta cifras inventadas que no sean redondas, ni votos añadidos con "
                "cifras 'naturales'.",
                "It does not detect invented figures that are not round, nor votes added "
                "with 'natural-looking' figures."),
    "last_digit": ("No detecta relleno de urnas ni traslado de votos: ambos dejan dígitos "
                   "finales normales.",
                   "It does not detect ballot stuffing or vote shifting: both leave normal "
                   "final digits."),
    "second_digit": ("No separa elecciones limpias de manipuladas en mesas pequeñas de "
                     "tamaño parecido; la ley de Benford no es una ley de los votos.",
                     "It does not separate clean from manipulated elections on small, "
                     "similar-sized units; Benford's law is not a law of votes."),
    "fingerprint": ("Solo ve el relleno extremo (participación y voto cerca del 100 %) en "
                    "mesas cuyo local tiene mesas normales; no mide cuántos votos son "
                    "falsos.",
                    "It only sees extreme stuffing (turnout and share near 100 %) in mesas "
                    "whose place has normal mesas; it does not measure how many votes are "
                    "false."),
    "place": ("No ve manipulación pareja en todas las mesas de un local, ni en locales con "
              "una o dos mesas.",
              "It does not see manipulation applied evenly to every mesa of a place, nor "
              "in places with one or two mesas."),
    "panel": ("Necesita la misma mesa en ambas vueltas; no ve manipulación presente en las "
              "dos vueltas ni cambios parejos en todo un local.",
              "It needs the same mesa in both rounds; it does not see manipulation present "
              "in both rounds nor even changes across a whole place."),
}


@dataclass(frozen=True, slots=True)
class TestSummary:
    """One test for one quantity (turnout or a candidate), national and by scope."""

    test: str
    quantity: str
    title_es: str
    title_en: str
    national: ScopeResult
    scopes: tuple[ScopeResult, ...]  # every scope, national first, with q-values
    n_flagged_scopes: int
    expected_false_flags: float  # q × flagged scopes: the BH bound on false ones
    n_flagged_actas: int  # actas this test singles out (0: aggregate tests)
    verdict_es: str  # the national line, then the partial scopes' line
    verdict_en: str
    verdict_national_es: str  # the nation only
    verdict_national_en: str
    verdict_scopes_es: str  # home / abroad / regions only
    verdict_scopes_en: str
    benign_es: str
    benign_en: str
    cannot_tell_es: str
    cannot_tell_en: str


@dataclass(frozen=True, slots=True)
class Flag:
    """A (scope, test, quantity) rejected by Benjamini-Hochberg."""

    scope: str
    scope_name: str
    test: str
    quantity: str
    p_value: float
    q_value: float
    p_text: str = ""  # as printed: never "0" ("< 0.001" below the resolution)
    q_text: str = ""


@dataclass(frozen=True, slots=True)
class FlaggedActa:
    acta_id: str
    area1: str
    area3: str
    polling_place: str
    electors: int | None
    cast: int
    votes: dict[str, int]
    resolved: bool
    reasons: tuple[str, ...]  # e.g. "place:turnout", "panel:fujimori", "fingerprint:castillo"
    max_abs_z: float
    in_flagged_scope: bool  # a scope holding it is flagged by a test that singles it out


@dataclass(frozen=True, slots=True)
class Skipped:
    test: str
    reason_es: str
    reason_en: str


@dataclass(frozen=True, slots=True)
class ForensicsReport:
    contest_id: str
    contest_name: str
    provenance: Provenance
    data_hash: str
    filters: dict[str, int]
    q_level: float
    threshold: float
    tests: tuple[TestSummary, ...]
    flags: tuple[Flag, ...]
    n_hypotheses: int
    expected_false_flags: float  # ≈ q × number of flags (Benjamini-Hochberg)
    chance_flags_raw: float  # q × number of hypotheses: raw p < q expected by chance
    flagged_actas: tuple[FlaggedActa, ...]
    n_flagged_actas: int
    stakes: Stakes
    tails: tuple[TailShares, ...]
    histograms: tuple[Histogram2D, ...]
    klimek: tuple[KlimekFit, ...]  # Klimek et al.'s fingerprint fit: an estimate, no test
    skipped: tuple[Skipped, ...]
    panel_info: dict[str, int]
    scope_names: dict[str, str]
    summary_es: str
    summary_en: str
    footer_es: str
    footer_en: str


def _eq(name: str, text: str) -> str:
    """"p = 0.397", or "p < 0.001" below the method's resolution."""
    return f"{name} {text}" if text.startswith("<") else f"{name} = {text}"


def _p(r: ScopeResult) -> str:
    """The p-value as printed, with its "p": never 0 ("p < 1/(B+1)" below the
    method's resolution)."""
    return _eq("p", r.p_text or format_p(r.p_value))


def _describe(test: str, quantity: str, r: ScopeResult, names: Mapping[str, str],
              threshold: float) -> tuple[str, str]:
    """One plain sentence with the numbers of the national result."""
    qn = names.get(quantity, quantity)
    d = r.details
    if r.n_units == 0 or r.statistic is None or r.expected is None:
        return ("No hay actas que cumplan las condiciones de esta prueba.",
                "No actas meet this test's conditions.")
    if test == "integer" and quantity == COMBINED:
        ln = names.get(d.get("leader", ""), d.get("leader", ""))
        return (f"{int(r.statistic):,} de {r.n_units:,} actas tienen la participación o el "
                f"porcentaje de {ln} en un porcentaje entero (±0,05; cuenta combinada de "
                f"Kobak et al.); se esperaban {r.expected:,.0f} por el nulo binomial al "
                f"tamaño de cada mesa ({d.get('draws', 0)} sorteos Monte Carlo; razón "
                f"{r.effect:.3f}); {_p(r)}.",
                f"{int(r.statistic):,} of {r.n_units:,} actas report turnout or {ln}'s "
                f"share as a whole percentage (±0.05; Kobak et al.'s combined count); "
                f"{r.expected:,.0f} were expected from the binomial null at each mesa's size "
                f"({d.get('draws', 0)} Monte-Carlo draws; ratio {r.effect:.3f}); {_p(r)}.")
    if test == "integer":
        what_es = "participación" if quantity == "turnout" else f"el porcentaje de {qn}"
        what_en = "turnout" if quantity == "turnout" else f"{qn}'s share"
        return (f"{int(r.statistic):,} de {r.n_units:,} actas tienen {what_es} en un "
                f"porcentaje entero (±0,05); se esperaban {r.expected:,.0f} por el tamaño de "
                f"cada mesa (razón {r.effect:.3f}); {_p(r)}.",
                f"{int(r.statistic):,} of {r.n_units:,} actas report {what_en} as a whole "
                f"percentage (±0.05); {r.expected:,.0f} were expected from each mesa's size "
                f"(ratio {r.effect:.3f}); {_p(r)}.")
    if test == "last_digit":
        dig = d.get("largest_excess_digit", 0)
        return (f"Últimos dígitos de los votos de {qn} en {r.n_units:,} actas: χ² = "
                f"{r.statistic:.1f} con {int(r.expected)} g.l. contra el nulo según tamaño "
                f"(mayor exceso: dígito {dig}); {_p(r)}.",
                f"Last digits of {qn}'s votes in {r.n_units:,} actas: χ² = "
                f"{r.statistic:.1f} on {int(r.expected)} df against the size-aware null "
                f"(largest excess: digit {dig}); {_p(r)}.")
    if test == "second_digit":
        lo = min(d["baseline_smoothed"], d["baseline_binomial"])
        hi = max(d["baseline_smoothed"], d["baseline_binomial"])
        return (f"Media del segundo dígito de {qn}: {r.statistic:.3f}; líneas base simuladas "
                f"{lo:.3f}–{hi:.3f} (el 4,187 de Benford no aplica); {_p(r)}.",
                f"Mean second digit of {qn}: {r.statistic:.3f}; simulated baselines "
                f"{lo:.3f}–{hi:.3f} (Benford's 4.187 does not apply); "
                f"{_p(r)}.")
    if test == "fingerprint":
        return (f"{int(r.statistic)} actas con participación ≥ 95 % y {qn} ≥ 95 %; "
                f"{r.expected:.1f} esperadas según sus locales; {_p(r)}.",
                f"{int(r.statistic)} actas with turnout ≥ 95 % and {qn} ≥ 95 %; "
                f"{r.expected:.1f} expected from their polling places; "
                f"{_p(r)}.")
    where_es = "su local" if test == "place" else "su local y su primera vuelta"
    where_en = "their polling place" if test == "place" else "their place and first round"
    if quantity == "turnout":
        return (f"{int(r.statistic)} actas con participación muy por encima de {where_es} "
                f"(≥ {threshold:g} desv. robustas) y {int(r.expected)} muy por debajo; "
                f"{_p(r)}.",
                f"{int(r.statistic)} actas with turnout far above {where_en} (≥ "
                f"{threshold:g} robust SD) and {int(r.expected)} far below; "
                f"{_p(r)}.")
    return (f"{int(r.statistic)} actas muy a favor de {qn} respecto de {where_es} (≥ "
            f"{threshold:g} desv. robustas) y {int(r.expected)} muy en contra; "
            f"{_p(r)}.",
            f"{int(r.statistic)} actas far in favour of {qn} relative to {where_en} (≥ "
            f"{threshold:g} robust SD) and {int(r.expected)} far against; "
            f"{_p(r)}.")


def _beneficiaries(outliers: Mapping[str, list[Outliers]],
                   threshold: float) -> dict[tuple[str, str], dict[str, float]]:
    """Who gains in the actas whose turnout jumps: for each candidate, the share of the
    high-turnout outliers where the candidate's share is also above the neighbours'."""
    out: dict[tuple[str, str], dict[str, float]] = {}
    for test, zs in outliers.items():
        by_q = {o.quantity: o.z for o in zs}
        if "turnout" not in by_q:
            continue
        hit = np.nan_to_num(by_q["turnout"], nan=0.0) >= threshold
        if not hit.any():
            continue
        out[(test, "turnout")] = {
            q: round(float(np.mean(np.nan_to_num(z[hit], nan=0.0) > 0)), 3)
            for q, z in by_q.items() if q != "turnout"}
    return out


@dataclass(frozen=True, slots=True)
class _Verdict:
    national_es: str
    national_en: str
    scopes_es: str
    scopes_en: str
    n_flagged: int

    @property
    def es(self) -> str:
        return f"{self.national_es} {self.scopes_es}"

    @property
    def en(self) -> str:
        return f"{self.national_en} {self.scopes_en}"


def _verdict(test: str, quantity: str, rows: list[ScopeResult], names: Mapping[str, str],
             scope_names: Mapping[str, str], threshold: float) -> _Verdict:
    """Two lines that cannot contradict each other: the nation (its own test, its own
    p-value) and the partial scopes (home, abroad, regions: how many of how many survived
    the false-discovery control, and where)."""
    nat = rows[0]
    partial = [r for r in rows[1:] if r.n_units > 0]
    flagged = [r for r in partial if r.flagged]
    es, en = _describe(test, quantity, nat, names, threshold)
    gains = nat.details.get("share_above_neighbours")
    if (nat.flagged or flagged) and gains:
        best = max(gains, key=lambda c: gains[c])
        bn = names.get(best, best)
        es += (f" En {gains[best]:.0%} de esas actas de participación alta, {bn} también "
               "supera a sus vecinas.")
        en += (f" In {gains[best]:.0%} of those high-turnout actas {bn} also beats the "
               "neighbouring mesas.")
    if nat.flagged:
        nes = (f"Total nacional: ANOMALÍA (no prueba) tras el control FDR "
               f"({_eq('q', nat.q_text)}). {es}")
        nen = (f"National total: ANOMALY (not proof) after FDR control "
               f"({_eq('q', nat.q_text)}). {en}")
    else:
        nes = f"Sin anomalía detectable en el total nacional. {es}"
        nen = f"No detectable anomaly in the national total. {en}"
    n_part = len(partial)
    if n_part == 0:
        ses, sen = "", ""
    elif not flagged:
        ses = (f"Ámbitos parciales (país/extranjero y regiones): ninguno de {n_part} "
               "señalado tras el control FDR.")
        sen = (f"Partial scopes (home/abroad and regions): none of {n_part} flagged after "
               "FDR control.")
    else:
        where = ", ".join(f"{scope_names.get(r.scope, r.scope)} ({_eq('p', r.p_text)}, "
                          f"{_eq('q', r.q_text)})" for r in flagged[:8])
        more = f" (+{len(flagged) - 8})" if len(flagged) > 8 else ""
        local_es = ("" if nat.flagged else
                    " Es local: el total nacional no la muestra.")
        local_en = ("" if nat.flagged else
                    " It is local: the national total does not show it.")
        ses = (f"Ámbitos parciales: ANOMALÍA (no prueba) en {len(flagged)} de {n_part} tras "
               f"el control FDR: {where}{more}.{local_es}")
        sen = (f"Partial scopes: ANOMALY (not proof) in {len(flagged)} of {n_part} after "
               f"FDR control: {where}{more}.{local_en}")
    if nat.flagged or flagged:
        ses += " Revise primero las explicaciones benignas."
        sen += " Check the benign explanations first."
    return _Verdict(nes, nen, ses.strip(), sen.strip(),
                    len(flagged) + int(nat.flagged))


def _coverage(filters: Mapping[str, int]) -> tuple[str, str]:
    """What the tests saw, out of what the snapshot holds: what was left out is unknown
    to them, never clean."""
    total = int(filters.get("actas_in_snapshot", 0))
    seen = int(filters.get("actas_analysed", 0))
    left = total - seen
    if left <= 0:
        return (f"Se analizaron las {seen:,} actas de la instantánea.",
                f"All {seen:,} actas of the snapshot were analysed.")
    return (f"Se analizaron {seen:,} de {total:,} actas; las otras {left:,} (anuladas, "
            "pendientes, en el JEE o sin cifras completas) no entraron: las pruebas no dicen "
            "nada de ellas.",
            f"{seen:,} of {total:,} actas were analysed; the other {left:,} (annulled, "
            "pending, at the JEE or without complete figures) did not enter: the tests say "
            "nothing about them.")


def _candidates_by_votes(inp: ForensicInput, top: int) -> list[int]:
    order = np.argsort(-inp.votes.sum(axis=0), kind="stable")
    k = len(inp.codes) if len(inp.codes) == 2 else min(top, len(inp.codes))
    return sorted(order[:k].tolist(), key=lambda c: list(order).index(c))


def _flagged_actas(
    inp: ForensicInput, outliers: dict[str, list[Outliers]], tails: dict[str, np.ndarray],
    threshold: float, flagged_scopes: set[tuple[str, str, str]], limit: int | None,
    scopes: list[Scope],
) -> tuple[list[FlaggedActa], np.ndarray, np.ndarray]:
    """Actas beyond the threshold in the favourable direction of each quantity (turnout
    up; a candidate's share up), and actas in the joint ≥ 95 % tail."""
    n = inp.n
    reasons: dict[int, list[str]] = {}
    max_z = np.zeros(n)
    any_flag = np.zeros(n, dtype=bool)
    in_scope = np.zeros(n, dtype=bool)
    region_code = inp.region_codes[inp.region_idx]
    for test, zs in outliers.items():
        for o in zs:
            z = np.nan_to_num(o.z, nan=0.0)
            hit = z >= threshold
            for i in np.flatnonzero(hit).tolist():
                reasons.setdefault(i, []).append(f"{test}:{o.quantity}")
            max_z = np.maximum(max_z, np.where(hit, z, 0.0))
            any_flag |= hit
            in_scope |= hit & _flagged_scope_mask(inp, scopes, flagged_scopes, test,
                                                  o.quantity)
    for code, mask in tails.items():
        for i in np.flatnonzero(mask).tolist():
            reasons.setdefault(i, []).append(f"fingerprint:{code}")
        any_flag |= mask
        in_scope |= mask & _flagged_scope_mask(inp, scopes, flagged_scopes, "fingerprint",
                                               code)
    idx = np.flatnonzero(any_flag)
    idx = idx[np.argsort(-max_z[idx], kind="stable")]
    shown = idx if limit is None else idx[:limit]
    codes = inp.codes
    out = [FlaggedActa(
        acta_id=str(inp.acta_id[i]), area1=str(region_code[i]), area3=str(inp.area3[i]),
        polling_place=str(inp.place[i]),
        electors=None if inp.electors is None else int(inp.electors[i]),
        cast=int(inp.cast[i]), votes={c: int(v) for c, v in zip(codes, inp.votes[i],
                                                                 strict=True)},
        resolved=bool(inp.resolved[i]), reasons=tuple(reasons[i]),
        max_abs_z=round(float(max_z[i]), 2), in_flagged_scope=bool(in_scope[i]))
        for i in shown.tolist()]
    return out, any_flag, in_scope


def _flagged_scope_mask(inp: ForensicInput, scopes: list[Scope],
                        flagged_scopes: set[tuple[str, str, str]], test: str,
                        quantity: str) -> np.ndarray:
    """Actas inside some scope where ``test`` on ``quantity`` survived FDR."""
    regions = np.zeros(len(inp.region_codes), dtype=bool)
    for sc in scopes:
        if (sc.id, test, quantity) in flagged_scopes:
            regions[list(sc.regions)] = True
    return regions[inp.region_idx]


def run_forensics(
    frame: pl.DataFrame, contest: Contest, *, previous: pl.DataFrame | None = None,
    previous_contest: Contest | None = None, tests: Iterable[str] | None = None,
    seed: int = DEFAULT_SEED, draws: int = 0, q: float = 0.05,
    threshold: float = DEFAULT_THRESHOLD, min_expected: float = DEFAULT_MIN_EXPECTED,
    top: int = 3, names: Mapping[str, str] | None = None,
    snapshot_ids: tuple[str, ...] = (), max_flagged: int | None = 500,
    klimek_bootstrap: int = DEFAULT_BOOTSTRAP,
) -> ForensicsReport:
    """Run the forensic screen on a canonical acta frame.

    ``previous`` is the first round's acta frame (same acta ids) for the panel test;
    ``names`` maps area codes and candidate codes to display names. ``draws`` > 0 adds
    Monte-Carlo nulls (seeded by ``seed``) to the integer and last-digit tests; Kobak et
    al.'s combined count always uses Monte Carlo (``draws`` or KOBAK_DRAWS), and the
    Klimek fit ``klimek_bootstrap`` bootstrap replicates (same seed).
    """
    requested = list(TESTS if tests is None else tests)
    if any(t.lower() in BENFORD_ALIASES for t in requested):
        raise BenfordRefused()
    unknown = [t for t in requested if t not in TESTS]
    if unknown:
        raise ValueError(f"unknown tests {unknown}; known: {list(TESTS)}")
    names = dict(names or {})
    for c in contest.candidates:
        names.setdefault(c.code, c.name)
    rng = np.random.Generator(np.random.PCG64(seed))
    inp = prepare(frame, contest)
    scopes = scopes_for(inp)
    scope_names = {s.id: (names.get(s.code, s.code) if s.kind == "region" else
                          {"national": "nacional/national", "home": "en el país/home",
                           "abroad": "extranjero/abroad"}[s.kind]) for s in scopes}
    cands = _candidates_by_votes(inp, top)
    skipped: list[Skipped] = []
    results: dict[str, dict[str, list[ScopeResult]]] = {}
    outliers: dict[str, list[Outliers]] = {}
    hists: list[Histogram2D] = []
    tails: list[TailShares] = []
    klimek: list[KlimekFit] = []
    panel_info: dict[str, int] = {}
    if inp.n == 0:
        raise ValueError("no counted actas with figures to analyse")
    count_tests = {t for t in requested if t in ("integer", "last_digit", "second_digit")}
    probs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if count_tests:
        results |= run_count_tests(inp, scopes, count_tests, cands, draws=draws, rng=rng,
                                   min_expected=min_expected, integer_probs=probs)
    if "integer" in requested and inp.has_turnout and cands:
        results.setdefault("integer", {})[COMBINED] = run_combined(
            inp, cands[0], scopes, draws or KOBAK_DRAWS, rng, probs)
    no_turnout = ("sin electores hábiles por acta no hay participación",
                  "without registered electors per acta there is no turnout")
    if "integer" in requested and not inp.has_turnout:
        skipped.append(Skipped("integer:turnout", *no_turnout))
    if "fingerprint" in requested:
        if inp.has_turnout:
            res, hists, tails = run_fingerprint(inp, scopes, cands)
            results["fingerprint"] = res
            for ci in cands[:2]:
                fit = fit_klimek(inp, ci, rng, bootstrap=klimek_bootstrap, names=names)
                if fit is not None:
                    klimek.append(fit)
        else:
            skipped.append(Skipped("fingerprint", *no_turnout))
    if "place" in requested:
        if not known_geography(inp).any():
            skipped.append(Skipped(
                "place", "sin local de votación ni distrito por acta no hay con qué comparar "
                "cada mesa (compararla con todo el país no dice nada de su local)",
                "without a polling place or district per acta there is nothing to compare "
                "each mesa with (comparing it with the whole country says nothing about its "
                "place)"))
        else:
            res, zs = run_place(inp, scopes, cands, threshold=threshold)
            results["place"] = res
            outliers["place"] = zs
            if not inp.has_turnout:
                skipped.append(Skipped("place:turnout", *no_turnout))
    if "panel" in requested:
        if previous is None:
            skipped.append(Skipped(
                "panel", "no se dio la vuelta anterior (--first-round)",
                "no previous round was given (--first-round)"))
        else:
            prev = prepare(previous, previous_contest or contest)
            res, zs, panel_info = run_panel(inp, prev, scopes, cands, threshold=threshold)
            if res:
                results["panel"] = res
                outliers["panel"] = zs
            else:
                skipped.append(Skipped("panel", "ninguna mesa coincide entre las vueltas",
                                       "no mesa matches between the rounds"))
    # Benjamini-Hochberg across scopes × tests × quantities
    keys: list[tuple[str, str, int]] = []
    pvals: list[float] = []
    weights: list[float] = []
    kind_of = {s.id: s.kind for s in scopes}
    for test, by_q in results.items():
        for quantity, rows in by_q.items():
            for i, r in enumerate(rows):
                if r.n_units > 0 and np.isfinite(r.p_value):
                    keys.append((test, quantity, i))
                    pvals.append(r.p_value)
                    weights.append(SCOPE_WEIGHTS[kind_of[r.scope]])
    adj, rej = benjamini_hochberg(np.asarray(pvals), q, np.asarray(weights))
    qmap = {k: (float(a), bool(f)) for k, a, f in zip(keys, adj, rej, strict=True)}
    summaries: list[TestSummary] = []
    flags: list[Flag] = []
    flagged_scopes: set[tuple[str, str, str]] = set()
    beneficiaries = _beneficiaries(outliers, threshold)
    for test in TESTS:
        for quantity, rows in results.get(test, {}).items():
            new_rows = []
            if (test, quantity) in beneficiaries:
                rows = [replace(rows[0], details=rows[0].details | {
                    "share_above_neighbours": beneficiaries[(test, quantity)]}), *rows[1:]]
            for i, r in enumerate(rows):
                qv, fl = qmap.get((test, quantity, i), (None, False))
                new_rows.append(sanitized(replace(r, q_value=qv, flagged=fl)))
                if fl:
                    sr = new_rows[-1]
                    flags.append(Flag(r.scope, scope_names.get(r.scope, r.scope), test,
                                      quantity, r.p_value, float(qv or 0.0), sr.p_text,
                                      sr.q_text))
                    flagged_scopes.add((r.scope, test, quantity))
            vd = _verdict(test, quantity, new_rows, names, scope_names, threshold)
            t_es, t_en = TITLES[test]
            b_es, b_en = BENIGN[test]
            c_es, c_en = CANNOT_TELL[test]
            summaries.append(TestSummary(
                test=test, quantity=quantity, title_es=t_es, title_en=t_en,
                national=new_rows[0], scopes=tuple(new_rows), n_flagged_scopes=vd.n_flagged,
                expected_false_flags=q * vd.n_flagged, n_flagged_actas=0, verdict_es=vd.es,
                verdict_en=vd.en, verdict_national_es=vd.national_es,
                verdict_national_en=vd.national_en, verdict_scopes_es=vd.scopes_es,
                verdict_scopes_en=vd.scopes_en, benign_es=b_es, benign_en=b_en, cannot_tell_es=c_es,
                cannot_tell_en=c_en))
    tail_masks = ({inp.codes[c]: joint_tail_mask(inp, c) for c in cands}
                  if "fingerprint" in results else {})
    per_test_actas: dict[tuple[str, str], int] = {
        (test, o.quantity): int((np.nan_to_num(o.z, nan=0.0) >= threshold).sum())
        for test, zs in outliers.items() for o in zs}
    per_test_actas |= {("fingerprint", code): int(m.sum()) for code, m in tail_masks.items()}
    summaries = [replace(t, n_flagged_actas=per_test_actas.get((t.test, t.quantity), 0))
                 for t in summaries]
    flagged, mask, in_scope = _flagged_actas(inp, outliers, tail_masks, threshold,
                                             flagged_scopes, max_flagged, scopes)
    singles = {"place", "panel", "fingerprint"}
    n_scope_flags = sum(f.test in singles for f in flags)
    stakes = stakes_bound(contest, inp.codes, inp.votes, inp.valid, inp.cast,
                          mask & in_scope, int(mask.sum()), n_scope_flags,
                          len(flags) - n_scope_flags, names)
    m = len(pvals)
    efl = q * len(flags)
    params: dict[str, Any] = {
        "tests": requested, "q": q, "threshold": threshold, "min_expected": min_expected,
        "draws": draws, "candidates": [inp.codes[c] for c in cands],
        "first_round": previous is not None, "bh_scope_weights": SCOPE_WEIGHTS,
        "kobak_combined_draws": (draws or KOBAK_DRAWS) if inp.has_turnout else 0,
        "klimek_bootstrap": klimek_bootstrap,
    }
    prov = Provenance(snapshot_ids=snapshot_ids, analysis="forensics", parameters=params,
                      seed=seed)
    filt = ", ".join(f"{k}={v:,}" for k, v in inp.filters.items())
    kd = params["kobak_combined_draws"] if COMBINED in results.get("integer", {}) else 0
    kob_es = f" ({kd} en la cuenta combinada de Kobak)" if kd and not draws else ""
    kob_en = f" ({kd} in Kobak's combined count)" if kd and not draws else ""
    footer_es = (f"Reproducibilidad: datos sha256:{inp.data_hash[:16]}… ({inp.n:,} actas "
                 f"contabilizadas con cifras; {filt}); instantáneas "
                 f"{', '.join(s[:12] for s in snapshot_ids) or '—'}; semilla {seed}; "
                 f"{draws} sorteos Monte Carlo{kob_es}; q = {q}; umbral {threshold:g}; "
                 f"escrutinio {prov.version}.")
    footer_en = (f"Reproducibility: data sha256:{inp.data_hash[:16]}… ({inp.n:,} counted "
                 f"actas with figures; {filt}); snapshots "
                 f"{', '.join(s[:12] for s in snapshot_ids) or '—'}; seed {seed}; "
                 f"{draws} Monte-Carlo draws{kob_en}; q = {q}; threshold {threshold:g}; "
                 f"escrutinio {prov.version}.")
    n_tests = len(summaries)
    nat_flags = [f for f in flags if f.scope == "national"]
    part_flags = [f for f in flags if f.scope != "national"]
    cov_es, cov_en = _coverage(inp.filters)
    if flags:
        def _list(fs: list[Flag]) -> str:
            shown = ", ".join(f"{f.test}/{names.get(f.quantity, f.quantity)}"
                              + ("" if f.scope == "national" else f" ({f.scope_name})")
                              for f in fs[:6])
            return shown + (f" (+{len(fs) - 6})" if len(fs) > 6 else "")
        nat_es = (f"Total nacional: {len(nat_flags)} señal(es) de anomalía tras el control FDR "
                  f"al {q:.0%}: {_list(nat_flags)}." if nat_flags else
                  "Total nacional: ninguna prueba nacional señala anomalía tras el control "
                  f"FDR al {q:.0%}.")
        nat_en = (f"National total: {len(nat_flags)} anomaly flag(s) after FDR control at "
                  f"{q:.0%}: {_list(nat_flags)}." if nat_flags else
                  f"National total: no national test flags an anomaly after FDR control at "
                  f"{q:.0%}.")
        part_es = (f" Ámbitos parciales: {len(part_flags)} señal(es) de anomalía: "
                   f"{_list(part_flags)}." if part_flags else
                   " Ámbitos parciales: ninguna señal.")
        part_en = (f" Partial scopes: {len(part_flags)} anomaly flag(s): "
                   f"{_list(part_flags)}." if part_flags else
                   " Partial scopes: no flag.")
        summary_es = (f"{nat_es}{part_es} Entre {m} hipótesis; ~{efl:.1f} de las señales "
                      f"podrían ser falsas alarmas. Una anomalía no es prueba de fraude. "
                      f"{cov_es} {stakes.text_es}")
        summary_en = (f"{nat_en}{part_en} Among {m} hypotheses; ~{efl:.1f} of the flags may "
                      f"be false alarms. An anomaly is not proof of fraud. {cov_en} "
                      f"{stakes.text_en}")
    else:
        summary_es = (f"Ninguna de las {n_tests} pruebas ({m} hipótesis por ámbito) señala "
                      f"anomalías tras el control FDR al {q:.0%}, ni en el total nacional ni "
                      f"en los ámbitos parciales. Sin control, unas {q * m:.0f} tendrían "
                      f"p < {q} solo por azar. {cov_es} {stakes.text_es}")
        summary_en = (f"None of the {n_tests} tests ({m} hypotheses by scope) flags an "
                      f"anomaly after FDR control at {q:.0%}, neither in the national total "
                      f"nor in the partial scopes. Without control, about {q * m:.0f} would "
                      f"have p < {q} by chance alone. {cov_en} {stakes.text_en}")
    return ForensicsReport(
        contest_id=contest.id, contest_name=contest.name, provenance=prov,
        data_hash=inp.data_hash, filters=dict(inp.filters), q_level=q, threshold=threshold,
        tests=tuple(summaries), flags=tuple(flags), n_hypotheses=m,
        expected_false_flags=efl, chance_flags_raw=q * m, flagged_actas=tuple(flagged),
        n_flagged_actas=int(mask.sum()), stakes=stakes, tails=tuple(tails),
        histograms=tuple(hists), klimek=tuple(klimek), skipped=tuple(skipped),
        panel_info=panel_info,
        scope_names=scope_names, summary_es=summary_es, summary_en=summary_en,
        footer_es=footer_es, footer_en=footer_en)


def fingerprint_image(report: ForensicsReport, candidate: str | None = None) -> np.ndarray:
    """RGB image of the fingerprint (home and abroad side by side when both exist)."""
    from escrutinio.forensics.png import heatmap_panel, side_by_side

    if not report.histograms:
        raise ValueError("the report has no fingerprint (no electors in the data)")
    cand = candidate or report.histograms[0].candidate
    wanted = [h for h in report.histograms if h.candidate == cand
              and h.stratum in ("home", "abroad")]
    if not wanted:
        wanted = [h for h in report.histograms if h.candidate == cand
                  and h.stratum == "national"]
    if not wanted:
        raise ValueError(f"no fingerprint for candidate {cand!r}")
    panels = []
    for h in wanted:
        counts = np.asarray(h.counts)
        label = {"home": "PAIS / HOME", "abroad": "EXTRANJERO / ABROAD",
                 "national": "NACIONAL / NATIONAL"}[h.stratum]
        panels.append(heatmap_panel(counts, max(1, 300 // h.bins), f"{label}: {h.n_actas} ACTAS",
                                    "PARTICIPACION / TURNOUT %", f"{cand} %"))
    return side_by_side(panels)
