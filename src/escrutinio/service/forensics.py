"""The forensic screen, assembled once for the CLI (``escrutinio forensics``) and the web
layer (``/api/v1/s/{ref}/forensics``, the forensics page and its fingerprint PNG).

One set of defaults (:class:`ForensicsParams`), one resolution of the first round the
panel test compares with (:func:`first_round_snapshot`), one call of the pure analysis
(:func:`escrutinio.forensics.run_forensics`) and one localisation in the contest's words.
The result is frozen and carries its provenance: the report's ``provenance`` names every
snapshot it read (the first round included), the seed, the parameters and the version.
No number is computed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from escrutinio.domain import SnapshotKind
from escrutinio.errors import EscrutinioError
from escrutinio.forensics import outliers
from escrutinio.forensics import report as report_mod

if TYPE_CHECKING:
    from escrutinio.countries import Vocabulary
    from escrutinio.domain import Contest
    from escrutinio.forensics.report import ForensicsReport
    from escrutinio.store.base import SnapshotInfo, Store

#: seed of the Monte-Carlo nulls, Kobak's combined count and the Klimek bootstrap
DEFAULT_SEED = report_mod.DEFAULT_SEED
#: Monte-Carlo draws of the integer and last-digit nulls (0: exact/analytic nulls only)
DEFAULT_DRAWS = 0
#: false discovery rate of the Benjamini-Hochberg control
DEFAULT_Q = 0.05
#: outlier threshold in robust SD (place, panel)
DEFAULT_THRESHOLD = outliers.DEFAULT_THRESHOLD
#: how the panel test finds its first round (see :func:`first_round_snapshot`)
DEFAULT_FIRST_ROUND = "auto"


class ScreenUnavailable(EscrutinioError):
    """The screen cannot run on this data (no counted actas with figures, no electors
    for the fingerprint...), explained in both languages."""


@dataclass(frozen=True, slots=True)
class ForensicsParams:
    """Everything that changes the forensic screen, with its one set of defaults."""

    #: tests to run (``escrutinio.forensics.TESTS``); None: every test
    tests: tuple[str, ...] | None = None
    seed: int = DEFAULT_SEED
    draws: int = DEFAULT_DRAWS
    q: float = DEFAULT_Q
    threshold: float = DEFAULT_THRESHOLD
    #: ``auto`` | ``none`` | ``CONTEST_ID[:REF]`` | a snapshot ref
    first_round: str = DEFAULT_FIRST_ROUND
    #: flagged actas listed in the report (None: all of them; the stakes bound counts
    #: the listed ones, so a presenter that shows fewer cuts the list, not the analysis)
    max_flagged: int | None = None


@dataclass(frozen=True, slots=True)
class ForensicsResult:
    """The localized report and what it was computed from."""

    snapshot: SnapshotInfo
    first_round: SnapshotInfo | None  # the panel test's first round, when one was used
    contest: Contest
    vocabulary: Vocabulary  # the contest's words (its court...), already applied
    params: ForensicsParams
    report: ForensicsReport


def first_round_snapshot(store: Store, contest_id: str,
                         ref: str = DEFAULT_FIRST_ROUND) -> SnapshotInfo | None:
    """The per-acta first round the panel test compares ``contest_id`` with.

    ``none``: none. ``auto``: for a runoff, the latest per-acta snapshot of a first-round
    contest of the same country and year (none for any other contest).
    ``CONTEST_ID[:REF]``: that contest's per-acta snapshot ``REF`` (default latest).
    Anything else: a per-acta snapshot reference."""
    if ref == "none":
        return None
    if ref == "auto":
        from escrutinio.service.baseline import first_round_actas

        return first_round_actas(store, contest_id)
    cid, _, sref = ref.partition(":")
    if cid in {c.id for c in store.contests()}:
        return store.snapshot(sref or "latest", contest_id=cid, kind=SnapshotKind.ACTAS)
    return store.snapshot(ref, kind=SnapshotKind.ACTAS)


def contest_vocabulary(store: Store, contest: Contest,
                       snapshot_id: str | None = None) -> Vocabulary:
    """The contest's words: its country pack's, with the court a stored sidecar names
    (``court_name`` of the given snapshot, else of the newest snapshot that names one)."""
    from escrutinio.countries import vocabulary

    metadata = store.snapshot_metadata(contest.id)
    chosen = metadata.get(snapshot_id, {}) if snapshot_id is not None else {}
    if "court_name" not in chosen:
        chosen = next((md for md in reversed(list(metadata.values())) if "court_name" in md),
                      {})
    return vocabulary(contest, chosen)


def forensics(store: Store, snapshot: str | SnapshotInfo = "latest",
              params: ForensicsParams = ForensicsParams(), *,
              contest_id: str | None = None) -> ForensicsResult:
    """The forensic screen of a per-acta snapshot (a reference resolved within
    ``contest_id``, default the store's current contest; or a resolved snapshot).

    Raises :class:`ScreenUnavailable` when the data cannot be screened, and
    :class:`~escrutinio.forensics.BenfordRefused` when first-digit Benford is asked for."""
    from escrutinio import service
    from escrutinio.countries import localized
    from escrutinio.forensics.report import run_forensics

    if isinstance(snapshot, str):
        cid = service.default_contest(store, contest_id)
        info = store.snapshot(snapshot, contest_id=cid, kind=SnapshotKind.ACTAS)
    else:
        info = snapshot
    contest = store.contest(info.contest_id)
    geo = store.geography(info.contest_id)
    names = dict(zip(geo["code"].to_list(), geo["name"].to_list(), strict=True))
    first = first_round_snapshot(store, info.contest_id, params.first_round)
    frame = store.load_actas(info.snapshot_id)
    previous = previous_contest = None
    ids = [info.snapshot_id]
    if first is not None:
        previous = store.load_actas(first.snapshot_id)
        previous_contest = store.contest(first.contest_id)
        ids.append(first.snapshot_id)
    try:
        report = run_forensics(
            frame, contest, previous=previous, previous_contest=previous_contest,
            tests=params.tests, seed=params.seed, draws=params.draws, q=params.q,
            threshold=params.threshold, names=names, snapshot_ids=tuple(ids),
            max_flagged=params.max_flagged)
    except ValueError as exc:
        raise ScreenUnavailable(f"no se puede ejecutar el cribado: {exc}",
                                f"the screen cannot run: {exc}") from exc
    voc = contest_vocabulary(store, contest, info.snapshot_id)
    return ForensicsResult(info, first, contest, voc, params, localized(report, voc))


def fingerprint_png(report: ForensicsReport, candidate: str | None = None) -> bytes:
    """The turnout × share fingerprint of ``candidate`` (default: the leader) as PNG
    bytes (home and abroad side by side when both exist)."""
    from escrutinio.forensics.png import encode_png
    from escrutinio.forensics.report import fingerprint_image

    try:
        return encode_png(fingerprint_image(report, candidate))
    except ValueError as exc:
        raise ScreenUnavailable(f"no hay huella que dibujar: {exc}",
                                f"there is no fingerprint to draw: {exc}") from exc


__all__ = ["DEFAULT_DRAWS", "DEFAULT_FIRST_ROUND", "DEFAULT_Q", "DEFAULT_SEED",
           "DEFAULT_THRESHOLD", "ForensicsParams", "ForensicsResult", "ScreenUnavailable",
           "contest_vocabulary", "fingerprint_png", "first_round_snapshot", "forensics"]
