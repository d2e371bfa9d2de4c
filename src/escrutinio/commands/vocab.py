"""The words of the contest's country for the presenters (:mod:`escrutinio.countries`).

Every CLI command that names the electoral court, a polling station or an acta state asks
here instead of writing "JEE" or "mesa": a Peruvian contest reads "JEE" and "mesa", a
Chilean one "TRICEL" and "mesa receptora", an unknown country "tribunal electoral /
electoral court" and "mesa de votación / polling station".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, is_dataclass, replace
from typing import Any, TypeVar

from escrutinio.commands.common import opts
from escrutinio.countries import CountryPack, Vocabulary, pack_for, vocabulary
from escrutinio.domain import ActaStatus, Contest
from escrutinio.errors import EscrutinioError
from escrutinio.store.base import Store

T_ = TypeVar("T_")


def contest_vocabulary(store: Store, contest_id: str,
                       snapshot_id: str | None = None) -> Vocabulary:
    """The contest's vocabulary; a stored sidecar's ``court_name`` (the given snapshot's,
    else the newest that names one) overrides the pack's court."""
    try:
        contest = store.contest(contest_id)
        metadata = store.snapshot_metadata(contest_id)
    except (EscrutinioError, KeyError):
        return pack_for(None).vocabulary
    chosen: Mapping[str, str] = {}
    if snapshot_id is not None and "court_name" in metadata.get(snapshot_id, {}):
        chosen = metadata[snapshot_id]
    else:
        for md in reversed(list(metadata.values())):
            if "court_name" in md:
                chosen = md
                break
    return vocabulary(contest, chosen)


def contest_pack(contest: Contest | str | None) -> CountryPack:
    return pack_for(contest)


def W(voc: Vocabulary, key: str) -> str:  # noqa: N802  (like T: one word per call site)
    """One vocabulary word (``court``, ``polling_stations``...) in the user's language."""
    es, en = getattr(voc, key)
    return es if opts.lang == "es" else en


def status_word(voc: Vocabulary, status: ActaStatus | str) -> str:
    """An acta state's name in the user's language, as the contest's country says it."""
    return voc.status_label(status, opts.lang)


def localized(obj: T_, voc: Vocabulary) -> T_:
    """``obj`` (a frozen result dataclass, or a JSON-like tree) with every bilingual
    text — a string field or key ending in ``_es`` / ``_en`` — written in the contest's
    words (:meth:`Vocabulary.localize`). Numbers, codes and names are untouched."""
    if voc.is_reference:
        return obj
    return _walk(obj, voc)


def _text(name: str, value: object, voc: Vocabulary) -> object:
    if isinstance(value, str) and name.endswith(("_es", "_en")):
        return voc.localize(value, "es" if name.endswith("_es") else "en")
    return _walk(value, voc)


def _walk(obj: Any, voc: Vocabulary) -> Any:
    if is_dataclass(obj) and not isinstance(obj, type):
        changes = {}
        for f in fields(obj):
            if not f.init:
                continue
            old = getattr(obj, f.name)
            new = _text(f.name, old, voc)
            if new is not old:
                changes[f.name] = new
        return replace(obj, **changes) if changes else obj
    if isinstance(obj, dict):
        out_ = {k: _text(str(k), v, voc) for k, v in obj.items()}
        return obj if all(out_[k] is obj[k] for k in obj) else out_
    if type(obj) in (list, tuple) and obj:
        items = [_walk(v, voc) for v in obj]
        if all(a is b for a, b in zip(items, obj, strict=True)):
            return obj
        return type(obj)(items) if isinstance(obj, list) else tuple(items)
    return obj
