"""First-digit Benford: asked for, refused, and why.

This module exists so that a request for the classic first-digit Benford test gets an
explanation instead of a number. It computes nothing on purpose.
"""

from __future__ import annotations

from escrutinio.errors import EscrutinioError

REFUSAL_ES = (
    "La prueba de Benford del primer dígito no es una prueba válida para elecciones y "
    "escrutinio no la ofrece. La ley de Benford describe números que abarcan varios "
    "órdenes de magnitud (de 1 a 100 000). Los votos por mesa no: una mesa tiene como "
    "máximo 300 electores, casi todas tienen entre 200 y 300, y los votos de un candidato "
    "se concentran en un rango estrecho (en Perú 2021 casi todos entre 50 y 200). El "
    "primer dígito lo decide entonces el tamaño de las mesas y el porcentaje del "
    "candidato, no la honestidad del conteo: un candidato con 45 % en mesas de 220 "
    "votantes escribe casi siempre un 8, 9 o 1 como primer dígito. Así, elecciones limpias "
    "'fallan' Benford y elecciones manipuladas pueden 'pasarlo' (Deckert, Myagkov y "
    "Ordeshook 2011, Political Analysis 19(3); Mebane 2011). Use en su lugar: el exceso de "
    "porcentajes enteros (integer), el último dígito contra un nulo que considera el "
    "tamaño de cada mesa (last_digit), el segundo dígito solo contra una línea base "
    "simulada (second_digit), la huella participación × voto (fingerprint), los valores "
    "atípicos dentro de un local (place) y la comparación con la primera vuelta (panel)."
)
REFUSAL_EN = (
    "The first-digit Benford test is not a valid election test and escrutinio does not "
    "offer it. Benford's law describes numbers that span several orders of magnitude "
    "(1 to 100,000). Votes per polling station do not: a Peruvian mesa has at most 300 "
    "electors, almost all have 200-300, and a candidate's votes fall in a narrow range "
    "(in Peru 2021 almost all between 50 and 200). The first digit is then set by the "
    "stations' size and the candidate's share, not by the honesty of the count: a "
    "candidate at 45 % in stations of 220 voters writes an 8, 9 or 1 as first digit almost "
    "every time. Clean elections 'fail' Benford and manipulated ones can 'pass' it "
    "(Deckert, Myagkov & Ordeshook 2011, Political Analysis 19(3); Mebane 2011). Use "
    "instead: the integer-percentage excess (integer), the last digit against a "
    "size-aware null (last_digit), the second digit only against a simulated baseline "
    "(second_digit), the turnout × share fingerprint (fingerprint), outliers within a "
    "polling place (place) and the runoff-vs-first-round panel (panel)."
)

#: names under which users ask for it
BENFORD_ALIASES = frozenset({"benford", "first_digit", "1bl", "benford1", "first-digit",
                             "primer_digito", "primer-digito"})


class BenfordRefused(EscrutinioError):
    """Raised when the first-digit Benford test is requested. Exit code 2 in the CLI."""

    exit_code = 2

    def __init__(self) -> None:
        super().__init__(REFUSAL_ES, REFUSAL_EN)

    def to_dict(self) -> dict[str, object]:
        return super().to_dict() | {"test": "benford_first_digit", "refused": True}


def first_digit_benford(*_: object, **__: object) -> None:
    """Always raises :class:`BenfordRefused`: see the module docstring."""
    raise BenfordRefused()
