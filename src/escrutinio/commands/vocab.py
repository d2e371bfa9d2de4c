"""The words of the contest's country for the presenters (:mod:`escrutinio.countries`).

Every CLI command that names the electoral court, a polling station or an acta state asks
here instead of writing "JEE" or "mesa": a Peruvian contest reads "JEE" and "mesa", a
Chilean one "TRICEL" and "mesa receptora", an unknown country "tribunal electoral /
electoral court" and "mesa de votación / polling station".
"""

from __future__ import annotations

from escrutinio.commands.common import opts
from escrutinio.countries import Vocabulary, localized, pack_for
from escrutinio.errors import EscrutinioError
from escrutinio.store.base import Store

__all__ = ["W", "contest_vocabulary", "localized"]


def contest_vocabulary(store: Store, contest_id: str,
                       snapshot_id: str | None = None) -> Vocabulary:
    """The contest's vocabulary; a stored sidecar's ``court_name`` (the given snapshot's,
    else the newest that names one) overrides the pack's court."""
    from escrutinio.service.inputs import contest_words

    try:
        contest = store.contest(contest_id)
    except (EscrutinioError, KeyError):
        return pack_for(None).vocabulary
    return contest_words(store, contest, snapshot_id)


def W(voc: Vocabulary, key: str) -> str:  # noqa: N802  (like T: one word per call site)
    """One vocabulary word (``court``, ``polling_stations``...) in the user's language."""
    es, en = getattr(voc, key)
    return es if opts.lang == "es" else en
