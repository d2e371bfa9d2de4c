"""The stakes bound: what the votes of flagged actas could do to every line that decides
something.

Only actas that a test singles out (an outlier, a joint-tail acta) **and** that lie in a
scope where that same test survived the false-discovery control count. Actas listed
individually in scopes nobody flagged are shown for review but add nothing: a clean
election of 86,000 mesas has hundreds of them by chance. Aggregate flags (integer
percentages, digits) do not single out actas and add nothing by themselves.

Thresholds (``decisive_thresholds``): the winner (first against second) in a runoff or a
plurality contest; in a first round with a majority rule, the majority line (the leader's
votes against ``majority_threshold`` of the valid votes) and the race for second place
(who goes to the runoff); the last seat when a contest declares ``seats``.

Worst case per acta i against the margin of A (ahead) over B (behind): if the acta's
valid votes really belonged to B — a swap or a reassignment, not just an annulment — the
margin falls by (a_i − b_i) + v_i = 2 a_i + o_i (o_i: other candidates' votes), up to
twice its valid votes. Against a majority line at share t: A's votes reassigned to others
move A − t·V by a_i each (others' votes reassigned to A, when A is below the line).
Annulling the actas moves the margin by Σ (a_i − b_i) (majority: Σ (a_i − t v_i)), which
is reported too but is not the worst case.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from escrutinio.domain import Contest, ContestKind


@dataclass(frozen=True, slots=True)
class Threshold:
    """One line that decides something, and how far the counted actas could move it."""

    kind: str  # winner | runoff | majority | seat
    ahead: str  # candidate code on the safe side of the line
    behind: str  # candidate code, or "line" for the majority threshold
    margin: int  # votes by which ``ahead`` clears the line over the analysed actas
    reach: int  # worst case (reassigned / swapped votes) the counted actas could move it
    annul_move: int  # what annulling the counted actas would take off the margin (the
    #: texts print the signed change, −annul_move)
    could_change: bool  # some counted acta exists and reach >= margin
    text_es: str
    text_en: str


@dataclass(frozen=True, slots=True)
class Stakes:
    """If every counted acta (listed individually *and* in a flagged scope) were wrong."""

    n_actas: int  # counted actas: in a scope flagged by the test that singles them out
    n_listed: int  # actas listed individually, in any scope (for review; not counted)
    n_scope_flags: int  # flags of tests that single out actas (place, panel, fingerprint)
    n_aggregate_flags: int  # flags of aggregate tests (integer, digits): add no votes
    valid_votes: int  # candidate votes in the counted actas
    cast_votes: int
    leader: str
    runner_up: str
    margin: int  # leader − runner-up over the analysed actas
    net_for_leader: int  # Σ (leader − runner-up) in counted actas: what annulling moves
    margin_if_annulled: int
    could_change_winner: bool  # the winner line could move (worst case) — counted only
    could_change_result: bool  # any decisive line could move (worst case)
    thresholds: tuple[Threshold, ...]
    text_es: str
    text_en: str


def decisive_thresholds(contest: Contest, totals: np.ndarray) -> list[tuple[str, int, int]]:
    """(kind, index ahead, index behind; -1 = the majority line) for every line that
    decides something in ``contest``, candidates ordered by ``totals``."""
    order = [int(i) for i in np.argsort(-totals, kind="stable")]
    out: list[tuple[str, int, int]] = []
    if len(order) < 2:
        return out
    majority = contest.majority_threshold
    first_round = contest.kind is ContestKind.FIRST_ROUND and len(order) > 2
    if first_round and majority is not None:
        out.append(("majority", order[0], -1))
        out.append(("runoff", order[1], order[2]))
    else:  # a runoff, or a first round without a threshold: plurality, no runoff
        out.append(("winner", order[0], order[1]))
    seats = getattr(contest, "seats", None)
    if isinstance(seats, int) and 1 < seats < len(order):
        out.append(("seat", order[seats - 1], order[seats]))
    return out


_LINE = {"winner": ("el ganador", "the winner"),
         "runoff": ("el paso a la segunda vuelta (segundo lugar)",
                    "the place in the runoff (second place)"),
         "seat": ("el último escaño", "the last seat")}


def _pair_line(kind: str, a: str, b: str, margin: int, reach: int, annul: int, k: int,
               could: bool) -> tuple[str, str]:
    what_es, what_en = _LINE[kind]
    es = (f"Para {what_es}: {a} aventaja a {b} por {margin:,} votos; en el peor caso (votos "
          f"de las actas contadas que en verdad fueran de {b}: un intercambio cuenta dos "
          f"veces) se movería {reach:,}; anularlas lo movería {annul:+,}. ")
    en = (f"For {what_en}: {a} leads {b} by {margin:,} votes; in the worst case (votes of "
          f"the counted actas that really were {b}'s: a swap counts twice) it would move "
          f"{reach:,}; annulling them would move it {annul:+,}. ")
    if could:
        es += ("Eso alcanza el margen: estas actas importan para el resultado y deben "
               "revisarse acta por acta. Que importen no significa que estén mal.")
        en += ("That reaches the margin: these actas matter for the result and should be "
               "checked acta by acta. Mattering does not mean they are wrong.")
    elif k:
        es += "Ni en el peor caso alcanza el margen."
        en += "Not even the worst case reaches the margin."
    return es, en


def _majority_line(a: str, t: float, above: bool, margin: int, reach: int, annul: int,
                   k: int, could: bool) -> tuple[str, str]:
    side_es = "por encima" if above else "por debajo"
    side_en = "above" if above else "below"
    es = (f"Para la mayoría ({t:.0%} de los votos válidos): {a} está {margin:,} votos "
          f"{side_es} de la línea; en el peor caso (votos reasignados) las actas contadas "
          f"la moverían {reach:,}; anularlas, {annul:+,}. ")
    en = (f"For the majority ({t:.0%} of valid votes): {a} is {margin:,} votes {side_en} "
          f"the line; in the worst case (reassigned votes) the counted actas would move it "
          f"{reach:,}; annulling them, {annul:+,}. ")
    if could:
        es += ("Eso alcanza la línea: estas actas importan para el resultado y deben "
               "revisarse acta por acta. Que importen no significa que estén mal.")
        en += ("That reaches the line: these actas matter for the result and should be "
               "checked acta by acta. Mattering does not mean they are wrong.")
    elif k:
        es += "Ni en el peor caso alcanza la línea."
        en += "Not even the worst case reaches the line."
    return es, en


def stakes_bound(
    contest: Contest, codes: list[str], votes: np.ndarray, valid: np.ndarray,
    cast: np.ndarray, counted: np.ndarray, n_listed: int, n_scope_flags: int,
    n_aggregate_flags: int, names: Mapping[str, str],
) -> Stakes:
    """The stakes bound over ``counted`` actas (bool mask) — see the module docstring.

    ``votes`` (N, K), ``valid`` and ``cast`` (N,) are the analysed actas' figures."""
    totals = votes.sum(axis=0)
    k = int(counted.sum())
    vc = votes[counted]
    valid_c = valid[counted]
    lines = decisive_thresholds(contest, totals)
    order = np.argsort(-totals, kind="stable")
    lead = int(order[0])
    run = int(order[1]) if len(order) > 1 else lead
    nm = [names.get(c, c) for c in codes]
    thresholds: list[Threshold] = []
    for kind, a, b in lines:
        if b >= 0:
            margin = int(totals[a] - totals[b])
            others = valid_c - vc[:, a] - vc[:, b]
            reach = int((2 * vc[:, a] + others).sum())
            annul = int((vc[:, a] - vc[:, b]).sum())
            could = k > 0 and reach >= margin
            es, en = _pair_line(kind, nm[a], nm[b], margin, reach, -annul, k, could)
            thresholds.append(Threshold(kind, codes[a], codes[b], margin, reach, annul,
                                        could, es, en))
        else:
            t = float(contest.majority_threshold or 0.5)
            dist = float(totals[a]) - t * float(totals.sum())
            above = dist >= 0
            margin = int(np.floor(abs(dist)))
            reach = int(vc[:, a].sum() if above else (valid_c - vc[:, a]).sum())
            annul = int(np.rint((vc[:, a] - t * valid_c).sum()))
            annul = annul if above else -annul  # what annulling takes off the distance
            could = k > 0 and reach >= margin
            es, en = _majority_line(nm[a], t, above, margin, reach, -annul, k, could)
            thresholds.append(Threshold("majority", codes[a], "line", margin, reach,
                                        annul, could, es, en))
    margin = int(totals[lead] - totals[run])
    net = int((vc[:, lead] - vc[:, run]).sum())
    could_any = any(t.could_change for t in thresholds)
    could_winner = any(t.could_change for t in thresholds if t.kind in ("winner", "majority"))
    valid_votes = int(valid_c.sum())
    es_parts: list[str] = []
    en_parts: list[str] = []
    if n_scope_flags == 0:
        es_parts.append("Ninguna prueba que señale actas sobrevive al control de falsos "
                        "descubrimientos en ningún ámbito: no hay votos señalados que "
                        "comparar con el margen.")
        en_parts.append("No test that singles out actas survives the false-discovery "
                        "control in any scope: there are no flagged votes to weigh "
                        "against the margin.")
    elif k == 0:
        es_parts.append("Los ámbitos señalados no contienen actas que destaquen "
                        "individualmente: no hay votos señalados que comparar con el "
                        "margen.")
        en_parts.append("The flagged scopes hold no acta that stands out individually: "
                        "there are no flagged votes to weigh against the margin.")
    if n_aggregate_flags:
        es_parts.append(f"{n_aggregate_flags} señal(es) de pruebas agregadas (porcentajes "
                        "enteros, dígitos) no señalan actas y por sí solas no suman votos "
                        "en juego.")
        en_parts.append(f"{n_aggregate_flags} flag(s) of aggregate tests (integer "
                        "percentages, digits) single out no acta and add no votes at "
                        "stake by themselves.")
    if n_listed and n_listed > k:
        es_parts.append(f"{n_listed - k:,} actas destacan individualmente fuera de los "
                        "ámbitos señalados: se listan para revisión, no se suman (en una "
                        "elección limpia de este tamaño también aparecen).")
        en_parts.append(f"{n_listed - k:,} actas stand out individually outside the "
                        "flagged scopes: they are listed for review, not added up (a "
                        "clean election of this size has them too).")
    if k:
        es_parts.append(f"Las {k:,} actas señaladas en ámbitos señalados suman {valid_votes:,} "
                        "votos válidos.")
        en_parts.append(f"The {k:,} flagged actas in flagged scopes hold {valid_votes:,} "
                        "valid votes.")
        es_parts += [t.text_es for t in thresholds]
        en_parts += [t.text_en for t in thresholds]
        if not could_any:
            es_parts.append("Los votos señalados no pueden cambiar nada: ni en el peor caso "
                            "alcanzan ninguna de las líneas que deciden esta elección.")
            en_parts.append("The flagged votes cannot change anything: not even in the "
                            "worst case do they reach any line that decides this election.")
    else:
        line_es = "; ".join(
            f"{_LINE.get(t.kind, ('la línea de mayoría', ''))[0]}: {t.margin:,}"
            for t in thresholds)
        line_en = "; ".join(
            f"{_LINE.get(t.kind, ('', 'the majority line'))[1]}: {t.margin:,}"
            for t in thresholds)
        es_parts.append(f"Márgenes en juego ({line_es}): ningún voto señalado puede "
                        "cambiarlos.")
        en_parts.append(f"Margins at stake ({line_en}): no flagged vote can change them.")
    return Stakes(
        n_actas=k, n_listed=n_listed, n_scope_flags=n_scope_flags,
        n_aggregate_flags=n_aggregate_flags, valid_votes=valid_votes,
        cast_votes=int(cast[counted].sum()), leader=codes[lead], runner_up=codes[run],
        margin=margin, net_for_leader=net, margin_if_annulled=margin - net,
        could_change_winner=could_winner, could_change_result=could_any,
        thresholds=tuple(thresholds), text_es=" ".join(es_parts), text_en=" ".join(en_parts))
