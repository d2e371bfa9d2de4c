"""Acceptance: classified answers in, accepted states (or not) out.

The only way a unit or an acta state enters a :class:`~escrutinio.live.watcher.Watcher`,
live, crawled or replayed. The rule it serves: **a rejected response never replaces the
last good state**. A response must be classified ``ok`` (:mod:`~escrutinio.live.classify`),
parse without type drift (:mod:`~escrutinio.live.parse`), pass the reading checks and the
progress checks (:mod:`~escrutinio.live.validate`). A decrease is accepted only after it
is seen ``confirm_decreases`` times in a row, and then it is logged as a correction.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from escrutinio.live.classify import Classification, Outcome, RawResponse
from escrutinio.live.config import LiveConfig, Scope, Stack
from escrutinio.live.parse import (
    ActaReading,
    ListedActa,
    ParseDrift,
    UnitReading,
    parse_acta_2021,
    parse_acta_2026,
    parse_unit_2021,
    parse_unit_2026,
)
from escrutinio.live.state import EventLog, LiveState, ScopeState, iso, lima
from escrutinio.live.transport import Clock, FetchResult
from escrutinio.live.validate import (
    Problem,
    Progress,
    check_acta,
    check_progress,
    check_reading,
    rejects,
)

#: reading rules that mean the two answers of a scope were read at different moments
TORN_RULES = frozenset({"valid_total_mismatch", "votes_above_valid"})
#: acta rules that hold a change of a counted acta until it is confirmed
MOVED_RULES = frozenset({"counted_acta_moved", "counted_acta_changed"})


class _Part:
    """One kind of state (unit scopes or actas), judged with its owner's verdicts."""

    def __init__(self, owner: Acceptor) -> None:
        self.a = owner
        self.cfg = owner.cfg
        self.clock = owner.clock
        self.live = owner.live
        self.emit = owner.emit


class UnitAcceptor(_Part):
    """National, home/abroad and first-level area states."""

    # -- ----------------------------------------------------------------------
    def ingest_unit(self, scope: Scope, responses: dict[str, tuple[RawResponse,
                                                                 Classification]]) -> str:
        """Classified responses of one scope -> accepted / duplicate / held / rejected...

        The only way a unit state is accepted, live or replayed."""
        for resp, cls in responses.values():
            if cls.outcome is not Outcome.OK:
                return self.a.failure(scope.key, (resp, cls))
        self.a.ok()
        raws = [r for r, _ in responses.values()]
        try:
            reading = self._parse_unit(scope, responses)
        except ParseDrift as exc:
            self.live.stats.results["rejected"] += 1
            self.a.reject(scope.key, "schema_drift", exc.detail_en, raws)
            return "rejected"
        return self.accept_unit(reading, raws)

    def _parse_unit(self, scope: Scope, responses: dict[str, tuple[RawResponse,
                                                                 Classification]]
                    ) -> UnitReading:
        raws = [r for r, _ in responses.values()]
        shas = tuple(r.sha256 for r in raws)
        fetched = max(r.fetched_at for r in raws)
        if self.cfg.stack is Stack.ONPE2021:
            resp, cls = responses["results"]
            return parse_unit_2021(cls.payload, scope, self.cfg, url=resp.url,
                                   raw_sha256=shas, fetched_at=fetched)
        (tr, tc), (pr, pc) = responses["totales"], responses["participantes"]
        return parse_unit_2026(tc.payload, pc.payload, scope, self.cfg,
                               urls=(tr.url, pr.url), raw_sha256=shas, fetched_at=fetched)

    def accept_unit(self, reading: UnitReading, raws: list[RawResponse], *,
                    persist: bool = True) -> str:
        """Validate a reading against its scope's accepted state and accept it or not.
        ``persist=False`` (replay of stored snapshots) updates the state only."""
        scope, stats = reading.scope, self.live.stats
        problems = check_reading(reading, self.cfg.validation)
        rej = rejects(problems)
        if rej:
            stats.results["rejected"] += 1
            self.a.reject(scope, rej, "", raws)
            return "torn" if any(p.rule in TORN_RULES for p in rej) else "rejected"
        st = self.live.scopes[scope]
        now = self.clock.now()
        prog = check_progress(st.accepted, reading)
        if prog.duplicate:
            return self._unit_duplicate(st, reading, now)
        if prog.stale:
            stats.results["rejected"] += 1
            assert st.accepted is not None
            self.a.reject(scope, "stale_response",
                        f"ONPE time {lima(reading.as_of)} older than the accepted "
                        f"{lima(st.accepted.as_of)}", raws)
            return "stale"
        corrections: list[dict[str, Any]] = []
        if prog.decreases:
            confirmed = self._unit_decrease(st, reading, prog)
            if confirmed is None:
                return "held"
            corrections = confirmed
        self._take_unit(st, reading, problems, prog, corrections, now)
        if persist:
            if scope == "national":
                self.a.on_national(corrections)
            else:
                self.live.warm_changed = True
        return "accepted"

    def _unit_duplicate(self, st: ScopeState, reading: UnitReading, now: datetime) -> str:
        """The same state again: ONPE confirmed it (its age starts over)."""
        st.confirmed_at = now
        st.pending, st.pending_seen = None, 0
        if reading.as_of and (st.latest_onpe_time is None
                              or reading.as_of > st.latest_onpe_time):
            st.latest_onpe_time = reading.as_of
        self.live.last_success = now
        self.live.stats.results["duplicate"] += 1
        return "duplicate"

    def _unit_decrease(self, st: ScopeState, reading: UnitReading, prog: Progress
                       ) -> list[dict[str, Any]] | None:
        """A decrease must persist: ``confirm_decreases`` readings in a row (not stale,
        ONPE time not going back) below the accepted state; then the latest is accepted
        and logged as a correction (its decreases returned). None: held."""
        scope = reading.scope
        p = st.pending
        if p is not None and (p.as_of is None or reading.as_of is None
                              or reading.as_of >= p.as_of):
            st.pending_seen += 1
        else:
            st.pending_seen = 1
        st.pending = reading
        need = max(1, self.live.confirm_decreases)
        dec = [{"field": f, "before": a, "after": b} for f, a, b in prog.decreases]
        if st.pending_seen < need:
            self.live.stats.results["held"] += 1
            self.emit("decrease_unconfirmed", "warning", scope,
                      f"{scope}: conteos que bajan; se espera confirmación "
                      f"({st.pending_seen}/{need})",
                      f"{scope}: counts going down; waiting for confirmation "
                      f"({st.pending_seen}/{need})", decreases=dec)
            return None
        self.live.stats.corrections += 1
        moves = ", ".join(f"{d['field']} {d['before']}→{d['after']}" for d in dec)
        self.emit("correction", "error", scope,
                  f"{scope}: CORRECCIÓN aceptada tras {need} lecturas seguidas: {moves}",
                  f"{scope}: CORRECTION accepted after {need} readings in a row: {moves}",
                  decreases=dec, sha256=list(reading.raw_sha256))
        return dec

    def _take_unit(self, st: ScopeState, reading: UnitReading, problems: list[Problem],
                   prog: Progress, corrections: list[dict[str, Any]], now: datetime) -> None:
        scope = reading.scope
        for a in prog.alarms:
            self.live.stats.alarms += 1
            self.emit("alarm", "warning", scope, f"{scope}: {a.message_es}",
                      f"{scope}: {a.message_en}", rule=a.rule)
        st.accepted, st.accepted_at, st.confirmed_at = reading, now, now
        st.latest_onpe_time = reading.as_of
        st.pending, st.pending_seen = None, 0
        st.findings = [p for p in problems if p.severity != "reject"] + list(prog.alarms)
        if corrections:
            st.findings.append(Problem("correction", "flag", "counts",
                                       "corrección: conteos que bajan",
                                       "correction: counts going down"))
        self.live.last_success = now
        self.live.stats.results["accepted"] += 1
        counted = reading.counts.get("actas_counted")
        self.emit("accepted", "info", scope,
                  f"{scope}: nuevo estado ({counted} actas contabilizadas)",
                  f"{scope}: new state ({counted} counted actas)", as_of=lima(reading.as_of),
                  sha256=list(reading.raw_sha256), corrections=corrections or None)


class ActaAcceptor(_Part):
    """Acta states: configured, crawled, listed (pending) or replayed."""

    # -- ----------------------------------------------------------------------------
    def ingest_acta(self, scope: Scope, resp: RawResponse, cls: Classification) -> str:
        """A classified answer for one acta -> accepted / duplicate / held / rejected /
        stale / a failure class. The only way an acta state is accepted, live, crawled
        or replayed.

        Rejected: type drift, an answer for another acta, negative counts, a missing or
        unknown party in its figures, an older state than the accepted one (its
        ``lineaTiempo`` ends earlier: a cache). A counted acta that leaves the counted
        state or changes its figures is held until ``confirm_decreases`` readings in a
        row say the same, then accepted as a logged correction."""
        key = scope.key
        if cls.outcome is not Outcome.OK:
            self.a.acta_error(key, {"outcome": cls.outcome.value, "reason": cls.reason})
            return self.a.failure(key, (resp, cls))
        self.a.ok()
        parse = parse_acta_2021 if self.cfg.stack is Stack.ONPE2021 else parse_acta_2026
        try:
            reading = parse(cls.payload, scope, self.cfg, url=resp.url,
                            raw_sha256=(resp.sha256,), fetched_at=resp.fetched_at)
        except ParseDrift as exc:
            self.live.stats.results["rejected"] += 1
            self.a.acta_error(key, {"outcome": "rejected", "reason": "schema_drift"})
            self.a.reject(key, "schema_drift", exc.detail_en, [resp])
            return "rejected"
        return self.accept_acta(reading, resp)

    def ingest_listed(self, item: ListedActa, resp: RawResponse) -> str:
        """A pending acta as its district's list shows it (state P): a pending acta has
        neither figures nor detail, so the list says all the acta would (mesa, place,
        electors, status) and it is not requested on its own until the list says it
        moved. Accepted through the same checks as a fetched acta."""
        reading = ActaReading(
            scope=item.key, acta_id=item.mesa, status="pending", area3_code=item.district,
            figures={"electors": item.electors, "cast": None, "blank": None, "null": None,
                     "challenged": None},
            votes=dict.fromkeys(c.code for c in self.cfg.contest.candidates),
            raw_sha256=(resp.sha256,), urls=(resp.url,), fetched_at=resp.fetched_at,
            polling_place=item.polling_place)
        return self.accept_acta(reading, resp)

    def accept_acta(self, reading: ActaReading, resp: RawResponse) -> str:
        """Validate one acta reading against the accepted state of that acta."""
        key, results = reading.scope, self.live.stats.results
        prev = self.live.actas.get(key)
        problems = check_acta(prev, reading, self.cfg.validation)
        rej = rejects(problems)
        if rej:
            results["rejected"] += 1
            self.a.acta_error(key, {"outcome": "rejected",
                                  "reason": ",".join(p.rule for p in rej)})
            self.a.reject(key, rej, "", [resp])
            return "rejected"
        if prev is not None and prev.fingerprint() == reading.fingerprint():
            self.live.acta_pending.pop(key, None)
            results["duplicate"] += 1
            return "duplicate"
        if prev is not None and prev.as_of is not None and reading.as_of is not None \
                and reading.as_of < prev.as_of:
            results["rejected"] += 1
            self.a.reject(key, "stale_response",
                        f"acta {reading.acta_id}: state history ends {lima(reading.as_of)}, "
                        f"before the accepted {lima(prev.as_of)}", [resp])
            return "stale"
        moved = [p for p in problems if p.rule in MOVED_RULES]
        if moved:
            assert prev is not None  # only a known acta can move
            if not self._acta_confirmed(reading, prev, moved[0], resp):
                return "held"
        self._take_acta(reading, prev, [p for p in problems if p not in moved], resp)
        return "accepted"

    def _acta_confirmed(self, reading: ActaReading, prev: ActaReading, rule: Problem,
                        resp: RawResponse) -> bool:
        """A counted acta that moved: held until ``confirm_decreases`` identical readings
        in a row, then accepted as a logged correction (True)."""
        key, fp = reading.scope, reading.fingerprint()
        held = self.live.acta_pending.get(key)
        seen = held[1] + 1 if held is not None and held[0] == fp else 1
        need = max(1, self.live.confirm_decreases)
        if seen < need:
            self.live.acta_pending[key] = (fp, seen)
            self.live.stats.results["held"] += 1
            self.emit("decrease_unconfirmed", "warning", key,
                      f"acta {reading.acta_id}: {rule.message_es}; se espera "
                      f"confirmación ({seen}/{need})",
                      f"acta {reading.acta_id}: {rule.message_en}; waiting for "
                      f"confirmation ({seen}/{need})", rule=rule.rule, sha256=resp.sha256)
            return False
        self.live.acta_pending.pop(key, None)
        self.live.stats.corrections += 1
        self.emit("correction", "error", key,
                  f"acta {reading.acta_id}: CORRECCIÓN aceptada tras {need} lecturas: "
                  f"{prev.status} → {reading.status}",
                  f"acta {reading.acta_id}: CORRECTION accepted after {need} readings: "
                  f"{prev.status} → {reading.status}", rule=rule.rule, sha256=resp.sha256)
        return True

    def _take_acta(self, reading: ActaReading, prev: ActaReading | None,
                   alarms: list[Problem], resp: RawResponse) -> None:
        key, live = reading.scope, self.live
        for p in alarms:
            live.stats.alarms += 1
            self.emit("alarm", "warning", key, f"{key}: {p.message_es}",
                      f"{key}: {p.message_en}", rule=p.rule)
        live.actas[key] = reading
        live.acta_errors.pop(key, None)
        live.acta_dirty.add(key)
        live.actas_changed = True
        live.stats.results["accepted"] += 1
        move = f"acta {reading.acta_id}: {prev.status if prev else '-'} → {reading.status}"
        self.emit("acta_changed", "info", key, move, move, sha256=resp.sha256)


class Acceptor:
    """The verdicts every answer can get (failure, rejection, ok), and the way in for
    unit and acta states. ``on_national(corrections)``: a new national state was
    accepted (the watcher stores its snapshot at once); other unit scopes mark the warm
    tier as changed."""

    def __init__(self, cfg: LiveConfig, clock: Clock, live: LiveState, emit: EventLog,
                 on_national: Callable[[list[dict[str, Any]]], None]) -> None:
        self.cfg = cfg
        self.clock = clock
        self.live = live
        self.emit = emit
        self.on_national = on_national
        self.units = UnitAcceptor(self)
        self.actas = ActaAcceptor(self)

    # -- failures and rejections ----------------------------------------------------------
    def _error(self, scope: str, err: dict[str, Any]) -> None:
        self.live.last_error = err
        if scope in self.live.scopes:
            self.live.scopes[scope].last_error = err

    def failure(self, scope: str, res: FetchResult | tuple[RawResponse, Classification]
                ) -> str:
        """An answer that is not ``ok``: counted, logged; the last good state stays."""
        resp, cls = ((res.response, res.classification) if isinstance(res, FetchResult)
                     else res)
        outcome, live = cls.outcome, self.live
        if outcome is Outcome.NO_DATA:
            live.stats.results["no_data"] += 1
            return "no_data"
        self._error(scope, {"at": iso(self.clock.now()), "scope": scope,
                            "outcome": outcome.value, "reason": cls.reason, "url": resp.url,
                            "status": resp.status})
        live.stats.results[outcome.value] += 1
        if outcome in (Outcome.TRANSIENT, Outcome.BLOCKED):
            live.consecutive_failures += 1
        self.emit("fetch_failed", "warning", scope,
                  f"{scope}: {outcome.value} ({cls.reason}); se mantiene el último estado "
                  "válido",
                  f"{scope}: {outcome.value} ({cls.reason}); keeping the last good state",
                  outcome=outcome.value, reason=cls.reason, url=resp.url,
                  status=resp.status, sha256=resp.sha256)
        return outcome.value

    def reject(self, scope: str, rules: list[Problem] | str, detail: str,
               responses: list[RawResponse]) -> None:
        names = [rules] if isinstance(rules, str) else [p.rule for p in rules]
        for n in names:
            self.live.stats.rejections[n] += 1
        msg_es = detail if isinstance(rules, str) else "; ".join(p.message_es for p in rules)
        msg_en = detail if isinstance(rules, str) else "; ".join(p.message_en for p in rules)
        self._error(scope, {"at": iso(self.clock.now()), "scope": scope,
                            "outcome": "rejected", "reason": ",".join(names),
                            "url": responses[0].url if responses else None})
        self.emit("rejected", "warning", scope,
                  f"{scope}: respuesta rechazada ({', '.join(names)}): {msg_es}",
                  f"{scope}: response rejected ({', '.join(names)}): {msg_en}",
                  rules=names, sha256=[r.sha256 for r in responses],
                  urls=[r.url for r in responses])

    def ok(self) -> None:
        """An answer was usable: the run of failures (storm detection) is over."""
        self.live.consecutive_failures = 0
        self.live.storm_level = 0

    def acta_error(self, key: str, err: dict[str, Any]) -> None:
        errors = self.live.acta_errors
        errors.pop(key, None)
        errors[key] = err
        while len(errors) > 200:  # a crawl can fail on thousands: keep the last
            errors.pop(next(iter(errors)))

    # -- the way in ------------------------------------------------------------------------
    def ingest_unit(self, scope: Scope, responses: dict[str, tuple[RawResponse,
                                                                 Classification]]) -> str:
        """Classified responses of one scope -> accepted / duplicate / held / rejected..."""
        return self.units.ingest_unit(scope, responses)

    def accept_unit(self, reading: UnitReading, raws: list[RawResponse], *,
                    persist: bool = True) -> str:
        return self.units.accept_unit(reading, raws, persist=persist)

    def ingest_acta(self, scope: Scope, resp: RawResponse, cls: Classification) -> str:
        """A classified answer for one acta -> accepted / duplicate / held / ..."""
        return self.actas.ingest_acta(scope, resp, cls)

    def ingest_listed(self, item: ListedActa, resp: RawResponse) -> str:
        return self.actas.ingest_listed(item, resp)

    def accept_acta(self, reading: ActaReading, resp: RawResponse) -> str:
        return self.actas.accept_acta(reading, resp)


__all__ = ["Acceptor", "ActaAcceptor", "UnitAcceptor"]
