"""Contested actas: bounds, distribution and the smallest flipping set
(:func:`escrutinio.defence.contested.analyse_contested`).

The one answer of ``escrutinio contested`` and ``/api/v1/s/{id}/contested`` (and its
page): resolution rates learned from every earlier per-acta snapshot of the contest on top
of the country's prior, the same simulations and seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from escrutinio.errors import BadOptionError
from escrutinio.provenance import to_jsonable
from escrutinio.service import inputs
from escrutinio.store.base import SnapshotInfo, Store

if TYPE_CHECKING:
    from escrutinio.defence.contested import ContestedAnalysis, ResolutionRates
    from escrutinio.domain import Contest

#: the priors of the resolution rates: the country pack's (Peru: the 2021 runoff's),
#: the 2021 runoff's, or the 2011/2016 historical one
PRIORS = ("country", "2021", "historical")
CONTESTED_SIMS = 20_000
CONTESTED_SEED = 0
#: prior weight in pseudo-actas
PRIOR_STRENGTH = 20.0


@dataclass(frozen=True, slots=True)
class ContestedParams:
    """``history``: learn the rates from earlier snapshots; ``prior``: one of
    :data:`PRIORS`; ``requested``: actas a party asks to annul (a nullity request);
    ``pair``: the two candidate codes (default: the two leaders among counted actas)."""

    history: bool = True
    prior: str = "country"
    strength: float = PRIOR_STRENGTH
    requested: tuple[str, ...] | None = None
    pair: tuple[str, str] | None = None
    n_sims: int = CONTESTED_SIMS
    seed: int = CONTESTED_SEED

    def __post_init__(self) -> None:
        if self.prior not in PRIORS:
            raise BadOptionError("--prior", self.prior, "country, 2021 o historical",
                                 "country, 2021 or historical")


DEFAULTS = ContestedParams()


@dataclass(frozen=True, slots=True)
class ContestedActas:
    """The analysis of ``snapshot``, its rates learned from ``earlier`` (oldest first);
    ``result``'s texts are in the contest's words."""

    snapshot: SnapshotInfo
    earlier: tuple[SnapshotInfo, ...]
    params: ContestedParams
    result: ContestedAnalysis

    def to_jsonable(self, limit: int | None = 200) -> dict[str, Any]:
        """What the CLI's ``--json`` and the API's ``result`` hold."""
        return self.result.to_jsonable(limit)


def prior_rates(contest: Contest, prior: str) -> ResolutionRates:
    """The prior of the resolution rates ``prior`` names (:data:`PRIORS`)."""
    from escrutinio.defence import contested as ct

    if prior == "country":
        return ct.resolution_prior(contest)
    if prior == "2021":
        return ct.RATES_2021
    return ct.historical_prior()


def _described(params: ContestedParams) -> dict[str, Any]:
    """The parameters as provenance: a nullity request by its size and the SHA-256 of its
    ids (one per line, in the order given), not the whole list."""
    import hashlib

    out: dict[str, Any] = to_jsonable(params)
    if params.requested is not None:
        ids = "\n".join(params.requested).encode()
        out["requested"] = {"n": len(params.requested),
                            "sha256": hashlib.sha256(ids).hexdigest()}
    return out


def history_snapshots(store: Store, info: SnapshotInfo, params: ContestedParams = DEFAULTS
                      ) -> tuple[SnapshotInfo, ...]:
    """The earlier per-acta snapshots the rates are learned from (none without
    ``params.history``)."""
    return tuple(inputs.earlier_actas(store, info)) if params.history else ()


def contested(store: Store, snapshot: inputs.SnapshotArg = "latest",
              params: ContestedParams = DEFAULTS, *, contest_id: str | None = None
              ) -> ContestedActas:
    """The contested actas of the per-acta ``snapshot`` (a reference within
    ``contest_id``, or a snapshot already resolved)."""
    from escrutinio.countries import localized
    from escrutinio.defence.contested import analyse_contested

    info = inputs.resolve(store, snapshot, contest_id)
    inputs.require_actas(info, "el análisis de actas en disputa", "the contested-actas analysis")
    earlier = history_snapshots(store, info, params)
    contest = store.contest(info.contest_id)
    res = analyse_contested(
        store.load_actas(info.snapshot_id), contest,
        earlier=[store.load_actas(s.snapshot_id) for s in earlier],
        prior=prior_rates(contest, params.prior), strength=params.strength,
        requested=params.requested, pair=params.pair, n_sims=params.n_sims, seed=params.seed,
        snapshot_ids=[info.snapshot_id, *[s.snapshot_id for s in earlier]])
    used = [inputs.snapshot_input("snapshot", info),
            *[inputs.snapshot_input("earlier", s) for s in earlier]]
    res = inputs.with_inputs(res, "contested", _described(params), used)
    return ContestedActas(info, earlier, params,
                          localized(res, inputs.contest_words(store, contest, info.snapshot_id)))
