"""Follow a folder of recorded responses or snapshots in time order, through the same
path as the live count (classify → parse → validate → accept → store).

Three kinds of folder are recognised:

* **a raw-log export** (``responses.jsonl`` + ``bodies/<sha256>``, written by
  ``escrutinio watch-export`` / :meth:`RawLog.export`): every exchange of a live run, in
  order. Responses are regrouped per scope request (a ``totales``/``results`` answer
  starts a group; retries replace the earlier attempt) and fed to
  :meth:`Acceptor.ingest_unit` / :meth:`Acceptor.ingest_acta` (``watcher.accept``), with
  the clock set to each response's fetch time. Replaying the export of a run reproduces
  its snapshots, ids included.
* **raw 2021 bodies** named ``<ubigeo>__<anything>.json`` (the layout of
  ``onpe-api-fixtures/2021/results-ubigeo/``): each file is one ``/results/{id}/{ubigeo}``
  answer, ordered by the ``actData`` time inside it.
* **snapshot files** (ONPE progress tables, the generic CSV/Parquet format...): parsed
  with the ingest parsers, ordered by ``as_of``; each national/area1 row is checked
  like a live reading, and the original snapshot is stored only when accepted.

Recorded publications (raw 2021 bodies, snapshot files) are each a distinct state that
ONPE published, not one poll among many: for them a decrease needs no second sighting
(``confirm_decreases`` = 1); it is still logged as a correction. An export is a record of
polls and keeps the configuration's rule.

``speed`` > 0 sleeps (really) between items: the gap between their times divided by
``speed``; 0 replays as fast as possible.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from escrutinio.errors import IngestError, Location
from escrutinio.live.classify import Classification, Outcome, RawResponse, classify
from escrutinio.live.config import LiveConfig, Scope, Stack
from escrutinio.live.parse import LIMA, UnitReading, lima_from_2021
from escrutinio.live.transport import FakeClock


class ReplayClock(FakeClock):
    """Virtual time that jumps to each recorded moment (never backwards)."""

    def set(self, when: datetime) -> None:
        delta = (when - self.now()).total_seconds()
        if delta > 0:
            self.sleep(delta)


@dataclass(slots=True)
class ReplayReport:
    kind: str  # export | raw2021 | snapshots
    items: int = 0
    results: dict[str, int] = field(default_factory=dict)

    def add(self, r: str) -> None:
        self.items += 1
        self.results[r] = self.results.get(r, 0) + 1


def folder_kind(folder: Path) -> str:
    if (folder / "responses.jsonl").is_file():
        return "export"
    if folder.is_dir() and any("__" in p.name for p in folder.glob("*.json")) \
            and not any(folder.glob("votacion-*")):
        return "raw2021"
    return "snapshots"


def _export_groups(folder: Path) -> Iterator[tuple[int, str, list[RawResponse]]]:
    """(cycle, scope key, responses of one request) in recorded order."""
    group: list[RawResponse] = []
    key = ""
    cycle = 0
    with (folder / "responses.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            d = json.loads(line)
            resp = RawResponse(
                url=d["url"], status=d["status"],
                headers=tuple((str(k), str(v)) for k, v in d["headers"]),
                body=(folder / "bodies" / d["sha256"]).read_bytes(),
                fetched_at=datetime.fromisoformat(d["fetched_at"]),
                elapsed_s=float(d.get("elapsed_ms") or 0.0) / 1e3, error=d.get("error"),
                scope=d["scope"], endpoint=d["endpoint"], attempt=int(d["attempt"]))
            starts = (resp.endpoint in ("totales", "results", "acta", "proceso", "prime",
                                        "geography", "list")
                      and resp.attempt == 1)
            if group and (starts or resp.scope != key or int(d["cycle"]) != cycle):
                yield cycle, key, group
                group = []
            key, cycle = resp.scope, int(d["cycle"])
            group.append(resp)
    if group:
        yield cycle, key, group


def _last_by_endpoint(group: list[RawResponse]) -> dict[str, RawResponse]:
    out: dict[str, RawResponse] = {}
    for r in group:
        out[r.endpoint] = r
    return out


def replay_export(folder: Path, watcher: Any, clock: ReplayClock, *, speed: float = 0.0
                  ) -> ReplayReport:
    cfg: LiveConfig = watcher.cfg
    report = ReplayReport("export")
    prev_t: datetime | None = None
    open_tier: tuple[int, str] | None = None  # (cycle, tier) whose snapshot is pending
    for cycle, key, group in _export_groups(folder):
        if key.startswith(("geo", "list:")):  # the crawl's geography and acta lists
            for r in group:
                watcher._on_response(r, classify(r, cfg.stack))
            if key.startswith("list:"):
                _replay_list(watcher, key[5:], group[-1])
            continue
        try:
            tier = Scope.from_key(key).tier.value if key not in ("site", "proceso") else ""
        except ValueError:
            tier = ""
        if open_tier is not None and open_tier != (cycle, tier):
            # the live run stored the warm/cold snapshot when that tier's sweep ended
            watcher._finish_tier_units()
            watcher._finish_tier_actas()
            open_tier = None
        t = group[-1].fetched_at
        _pace(prev_t, t, speed)
        prev_t = t
        clock.set(t)
        for r in group:
            watcher._on_response(r, classify(r, cfg.stack))
        last = _last_by_endpoint(group)
        if key in ("site", "proceso"):
            _replay_election(watcher, cfg, last)
        elif _replay_scope(watcher, cfg, key, last, report):
            open_tier = (cycle, tier)
    watcher._finish_tier_units()
    watcher._finish_tier_actas()
    watcher.rawlog.flush()
    watcher._publish_status()
    return report


def _replay_election(watcher: Any, cfg: LiveConfig, last: dict[str, RawResponse]) -> None:
    """The election id as the live run found it: discovered, or the probed fallback."""
    from escrutinio.live.parse import election_from_proceso

    p = last.get("proceso")
    if p is not None:
        c = classify(p, cfg.stack)
        eid = election_from_proceso(c.payload) if c.outcome is Outcome.OK else None
        if eid is not None:
            watcher.election_id = eid
    probe = last.get("probe")
    if probe is not None and watcher.election_id is None \
            and classify(probe, cfg.stack).outcome is Outcome.OK:
        watcher.election_id = cfg.election_id


def _replay_scope(watcher: Any, cfg: LiveConfig, key: str, last: dict[str, RawResponse],
                  report: ReplayReport) -> bool:
    """One recorded request of a unit or acta scope through acceptance. True when it
    belongs to a warm/cold sweep whose snapshot is stored when the sweep ends."""
    try:
        scope = Scope.from_key(key)
    except ValueError:
        return False
    if scope.kind in ("acta", "mesa"):
        a = last.get("acta")
        if a is None:
            return False
        report.add(watcher.accept.ingest_acta(scope, a, classify(a, cfg.stack)))
        return True
    if scope.key not in watcher.state:
        return False
    classified = {ep: (r, classify(r, cfg.stack)) for ep, r in last.items()}
    first_bad = next(((ep, rc) for ep, rc in classified.items()
                      if rc[1].outcome is not Outcome.OK), None)
    if first_bad is not None or (cfg.stack is Stack.ONPE2026
                                 and set(classified) != {"totales", "participantes"}):
        bad = first_bad[1] if first_bad else next(iter(classified.values()))
        report.add(watcher.accept.failure(scope.key, bad))
    else:
        report.add(watcher.accept.ingest_unit(scope, classified))
    return scope.kind != "national"


def _replay_list(watcher: Any, district: str, resp: RawResponse) -> None:
    """A recorded acta list: its pending actas enter as the live crawl took them (the
    others were fetched, and their answers are in the export)."""
    from escrutinio.live.parse import ParseDrift, parse_acta_list_2026, parse_mesas_2021

    cls = classify(resp, watcher.cfg.stack)
    if cls.outcome is not Outcome.OK:
        return
    try:
        if watcher.cfg.stack is Stack.ONPE2026:
            page = parse_acta_list_2026(cls.payload, url=resp.url, district=district,
                                        election_id=watcher.election_id)
        elif "/mesas/actas/" in resp.url:
            page = parse_mesas_2021(cls.payload, url=resp.url, district=district)
        else:
            return
    except ParseDrift:
        return
    for item in page.items:
        if item.state == "P" and item.key not in watcher.actas:
            watcher.accept.ingest_listed(item, resp)


def _pace(prev: datetime | None, t: datetime, speed: float) -> None:
    if speed > 0 and prev is not None:
        gap = (t - prev).total_seconds() / speed
        if gap > 0:
            time.sleep(min(gap, 60.0))


def _raw2021_items(folder: Path, cfg: LiveConfig) -> list[tuple[datetime, Scope, RawResponse]]:
    items = []
    for p in sorted(folder.glob("*.json")):
        ubigeo = p.name.split("__", 1)[0].zfill(6)
        if ubigeo == cfg.national_ubigeo:
            scope = Scope.from_key("national")
        elif ubigeo == cfg.abroad_ubigeo:
            scope = Scope.from_key("ambito:2")
        elif ubigeo.endswith("0000"):
            scope = Scope.from_key(f"area1:{ubigeo}")
        else:
            continue  # provinces and districts are not followed
        body = p.read_bytes()
        when: datetime | None = None
        try:
            act = json.loads(body).get("generals", {}).get("actData", {})
            when = lima_from_2021(act.get("FECHA"), act.get("HORA"))
        except (ValueError, AttributeError, IngestError):
            when = None
        when = (when or datetime.fromtimestamp(p.stat().st_mtime, UTC)).astimezone(UTC)
        url = f"file://{p.resolve()}"
        items.append((when, scope, RawResponse(url=url, status=200, headers=(), body=body,
                                               fetched_at=when, elapsed_s=0.0,
                                               scope=scope.key, endpoint="results")))
    items.sort(key=lambda x: (x[0], x[1].key != "national", x[1].key))
    return items


def replay_raw2021(folder: Path, watcher: Any, clock: ReplayClock, *, speed: float = 0.0
                   ) -> ReplayReport:
    cfg: LiveConfig = watcher.cfg
    if cfg.stack is not Stack.ONPE2021:
        raise IngestError(Location(str(folder)), "replay_stack",
                          "una carpeta de respuestas 2021 requiere stack = onpe2021",
                          "a folder of 2021 answers needs stack = onpe2021")
    report = ReplayReport("raw2021")
    watcher.live.confirm_decreases = 1  # each file is a publication, not a poll
    prev: datetime | None = None
    for when, scope, resp in _raw2021_items(folder, cfg):
        _pace(prev, when, speed)
        prev = when
        clock.set(when)
        cls = classify(resp, cfg.stack)
        watcher._on_response(resp, cls)
        if scope.key not in watcher.state:
            continue
        report.add(watcher.accept.ingest_unit(scope, {"results": (resp, cls)}))
        if scope.kind != "national":
            watcher._finish_tier_units()
    watcher._finish_tier_units()
    watcher.rawlog.flush()
    watcher._publish_status()
    return report


def replay_snapshots(folder: Path, watcher: Any, clock: ReplayClock, *, speed: float = 0.0
                     ) -> ReplayReport:
    from escrutinio.service import parse_paths

    cfg: LiveConfig = watcher.cfg
    snaps = sorted(parse_paths([folder]), key=lambda s: (s.as_of, s.label))
    report = ReplayReport("snapshots")
    watcher.live.confirm_decreases = 1  # each snapshot is a publication, not a poll
    cands = [c.code for c in cfg.contest.candidates]
    prev: datetime | None = None
    batch: list[Any] = []
    for snap in snaps:
        if snap.contest.id != cfg.contest.id:
            raise IngestError(Location(snap.source_uri), "contest_mismatch",
                              f"la instantánea es de {snap.contest.id}, la configuración de "
                              f"{cfg.contest.id}",
                              f"the snapshot is for {snap.contest.id}, the configuration for "
                              f"{cfg.contest.id}")
        _pace(prev, snap.as_of, speed)
        prev = snap.as_of
        clock.set(snap.as_of)
        accepted = False
        for row in snap.frame.iter_rows(named=True):
            key = ("national" if row.get("level") == "national"
                   else f"area1:{row.get('unit_code')}")
            if key not in watcher.state:
                continue
            counts = {k: v for k, v in row.items()
                      if k not in ("level", "unit_code", "abroad") and not k.startswith("v_")}
            reading = UnitReading(
                scope=key, level=row["level"], unit_code=row["unit_code"],
                abroad=row["abroad"], as_of=snap.as_of.astimezone(LIMA), counts=counts,
                votes={c: row.get(f"v_{c}") for c in cands}, raw_sha256=(snap.snapshot_id,),
                urls=(snap.source_uri,), fetched_at=snap.as_of)
            r = watcher.accept.accept_unit(reading, [], persist=False)
            report.add(r)
            accepted = accepted or r == "accepted"
        if accepted:
            batch.append(snap)
            if speed > 0:  # paced (the dashboard's replay): each appears in its time
                _store_batch(watcher, batch)
    _store_batch(watcher, batch)  # as fast as possible: one transaction, one ledger append
    watcher.rawlog.flush()
    watcher._publish_status()
    return report


def _store_batch(watcher: Any, batch: list[Any]) -> None:
    """Store the accepted snapshots (and append them to the ledger), as any ingest."""
    if not batch:
        return
    for snap, out in zip(batch, watcher.build.put_many(batch), strict=True):
        if snap.level in (None, "national"):
            watcher.live.served_snapshot = out.snapshot_id
    batch.clear()


def replay(folder: str | Path, watcher: Any, clock: ReplayClock, *, speed: float = 0.0
           ) -> ReplayReport:
    """Replay ``folder`` through ``watcher`` (built with ``clock``)."""
    p = Path(folder)
    if not p.exists():
        raise IngestError(Location(str(p)), "file_not_found", "la carpeta no existe",
                          "the folder does not exist")
    watcher.crawler = None  # a replay follows what was recorded; it never crawls
    kind = folder_kind(p)
    if kind == "export":
        return replay_export(p, watcher, clock, speed=speed)
    if kind == "raw2021":
        return replay_raw2021(p, watcher, clock, speed=speed)
    return replay_snapshots(p, watcher, clock, speed=speed)


def classify_file(path: str | Path, stack: Stack) -> Classification:
    """Classify a recorded body from a file as if it had arrived with HTTP 200."""
    p = Path(path)
    resp = RawResponse(url=f"file://{p.resolve()}", status=200, headers=(),
                       body=p.read_bytes(), fetched_at=datetime.now(UTC), elapsed_s=0.0)
    return classify(resp, stack)
