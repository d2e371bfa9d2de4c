"""Live count, no network: configuration, the failure table (classify), tolerant parsing
of the recorded ONPE answers, and the validation rules. Real recorded bodies from
onpe-api-fixtures/."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from escrutinio.errors import IngestError
from escrutinio.live.classify import Outcome, RawResponse, classify
from escrutinio.live.config import (
    EXAMPLES_DIR,
    Scope,
    Stack,
    ValidationConfig,
    config_from_dict,
    load_config,
)
from escrutinio.live.parse import (
    LIMA,
    ParseDrift,
    UnitReading,
    election_from_proceso,
    lima_from_2021,
    norm_code,
    parse_acta_2021,
    parse_acta_2026,
    parse_unit_2021,
    parse_unit_2026,
    pick,
    to_int,
    to_lima,
    to_percent,
    ubigeo6,
)
from escrutinio.live.validate import (
    aggregate_drift,
    check_acta,
    check_progress,
    check_reading,
    rejects,
)

F = "onpe-api-fixtures"
T0 = datetime(2026, 6, 7, 23, 0, tzinfo=UTC)


def resp(body: bytes | str, status: int | None = 200, ctype: str = "application/json",
         error: str | None = None) -> RawResponse:
    b = body.encode() if isinstance(body, str) else body
    return RawResponse("http://127.0.0.1/x", status, (("Content-Type", ctype),), b, T0, 0.0,
                       error)


@pytest.fixture(scope="module")
def fx(data_dir: Path) -> Path:
    return data_dir / F


def cfg_2021_first():
    return load_config(EXAMPLES_DIR / "onpe2021-first-round.toml")


def cfg_2021_runoff():
    return load_config(EXAMPLES_DIR / "onpe2021-runoff.toml")


def cfg_erm_amazonas():
    """The ERM 2026 governor race of Amazonas, as its recorded participants name it."""
    codes = {"sanca": 107, "torres": 96, "julon": 95, "vasquez": 140, "hernandez": 139,
             "diaz": 94}
    d = {
        "stack": "onpe2026", "base_url": "http://127.0.0.1/presentacion-backend",
        "contest": {"id": "erm-2026-amazonas-gr", "name": "ERM 2026 Amazonas",
                    "kind": "first_round", "country": "PE", "date": "2026-10-04",
                    "candidates": [{"code": k, "name": k.upper(), "authority_code": str(v)}
                                   for k, v in codes.items()]},
        "election": {"fallback_id": 1},
    }
    return config_from_dict(d)


# --- configuration ------------------------------------------------------------------

def test_examples_load_and_describe_their_scopes():
    names = sorted(p.stem for p in EXAMPLES_DIR.glob("*.toml"))
    assert names == ["onpe2021-first-round", "onpe2021-runoff", "onpe2026-first-round",
                     "onpe2026-runoff"]
    runoff = load_config(EXAMPLES_DIR / "onpe2026-runoff.toml")
    assert runoff.stack is Stack.ONPE2026 and runoff.discover_election
    assert dict(runoff.authority_codes) == {"fujimori": "8", "sanchez": "10"}
    keys = [s.key for s in runoff.scopes()]
    assert keys[:3] == ["national", "ambito:1", "ambito:2"] and len(keys) == 33
    assert "area1:140000" in keys and "area1:950000" in keys
    r21 = load_config(EXAMPLES_DIR / "onpe2021-runoff.toml")
    assert [s.key for s in r21.scopes()][:2] == ["national", "ambito:2"]  # no home total
    assert r21.election_id == 10 and not r21.discover_election
    assert len(runoff.sha256) == 64


def test_config_json_equals_toml_and_errors_are_bilingual(tmp_path: Path):
    import tomllib

    d = tomllib.loads((EXAMPLES_DIR / "onpe2026-runoff.toml").read_text())
    p = tmp_path / "c.json"
    p.write_text(json.dumps(d))
    a, b = load_config(p), load_config(EXAMPLES_DIR / "onpe2026-runoff.toml")
    assert replace(a, source="", sha256="") == replace(b, source="", sha256="")
    with pytest.raises(IngestError) as e:
        config_from_dict(d | {"intervals": {"hot": 3}})
    assert "clave desconocida" in e.value.message_es and "unknown key" in e.value.message_en
    bad = json.loads(json.dumps(d))
    del bad["contest"]["candidates"][0]["authority_code"]
    with pytest.raises(IngestError, match="authority"):
        config_from_dict(bad)
    with pytest.raises(IngestError, match="stack"):
        config_from_dict(d | {"stack": "onpe2031"})


# --- classify -------------------------------------------------------------------------

def test_classify_recorded_bodies(fx: Path):
    s21, s26 = Stack.ONPE2021, Stack.ONPE2026
    r = classify(resp((fx / "2021/results-ubigeo/800000__12-04-2021_0846.json").read_bytes()), s21)
    assert r.outcome is Outcome.OK and "summary" in r.payload
    lam = (fx / "2021/errors/results-10-050000__lambda-timeout-400.txt").read_bytes()
    assert classify(resp(lam), s21).reason == "lambda_timeout"
    assert classify(resp(lam, 400), s21).outcome is Outcome.TRANSIENT
    rep = (fx / "2021/errors/results-10-cod__invalid-ubigeo-400.txt").read_bytes()
    r = classify(resp(rep, 400), s21)
    assert (r.outcome, r.reason) == (Outcome.TRANSIENT, "gateway_repr")
    tot = (fx / "2026/resumen-general-totales/erm2026__idEleccion1__ubigeo_nivel_01__010000.json")
    r = classify(resp(tot.read_bytes()), s26)
    assert r.outcome is Outcome.OK and r.payload["contabilizadas"] == 1232
    wrapped = fx / "2026/resumen-general-elecciones/eg2026-r1__2026-04-27T2200Z__wrapped.json"
    assert classify(resp(wrapped.read_bytes()), s26).outcome is Outcome.OK
    spring = (fx / "2026/documented-examples/"
              "spring-error-envelope__backend-source__transcribed.json").read_bytes()
    assert classify(resp(spring, 404), s26).reason == "spring_error"
    assert classify(resp(spring, 200), s26).outcome is Outcome.API_ERROR
    null_acta = json.loads((fx / "2026/documented-examples/"
                            "actas-id__inexistente__data-only__transcribed.json").read_text())
    env = json.dumps({"success": True, "message": "", "data": null_acta})
    assert classify(resp(env), s26).outcome is Outcome.NO_DATA


@pytest.mark.parametrize(("body", "status", "ctype", "error", "stack", "outcome", "reason"), [
    ("<!doctype html><html><body><app-root></app-root></body></html>", 200, "text/html",
     None, "onpe2026", Outcome.BLOCKED, "html_shell"),
    ("  <HTML><HEAD><TITLE>x</TITLE></HEAD></HTML>", 200, "application/json", None,
     "onpe2021", Outcome.BLOCKED, "html_shell"),
    ("<HTML>403 ERROR</HTML>", 403, "text/html", None, "onpe2026", Outcome.HARD_BLOCKED,
     "http_403"),
    ("", 401, "text/html", None, "onpe2026", Outcome.HARD_BLOCKED, "http_401"),
    ('{"message":"Too Many Requests"}', 429, "application/json", None, "onpe2026",
     Outcome.TRANSIENT, "http_429"),
    ("", 502, "text/html", None, "onpe2021", Outcome.TRANSIENT, "http_502"),
    ("", 204, "", None, "onpe2026", Outcome.NO_DATA, "no_content"),
    ("   \r\n", 200, "application/json", None, "onpe2026", Outcome.NO_DATA, "empty_body"),
    ('{"success":true,"message":"","data":{"contabil', 200, "application/json", None,
     "onpe2026", Outcome.TRANSIENT, "truncated_json"),
    ('{"success":false,"message":"Error","data":null}', 200, "application/json", None,
     "onpe2026", Outcome.API_ERROR, "success_false"),
    ('{"success":true,"message":""}', 200, "application/json", None, "onpe2026",
     Outcome.API_ERROR, "missing_data"),
    ('{"success":true,"message":"","data":[]}', 200, "application/json", None, "onpe2026",
     Outcome.NO_DATA, "null_data"),
    ('{"message":"Internal server error"}', 200, "application/json", None, "onpe2021",
     Outcome.TRANSIENT, "gateway_message"),
    ("", None, "", "timeout after 15s", "onpe2026", Outcome.TRANSIENT, "timeout"),
    ("", None, "", "ConnectionRefusedError: refused", "onpe2021", Outcome.TRANSIENT,
     "network_error"),
    ('"just a string"', 200, "application/json", None, "onpe2026", Outcome.API_ERROR,
     "unexpected_json"),
])
def test_failure_table(body, status, ctype, error, stack, outcome, reason):
    r = classify(resp(body, status, ctype, error), stack)
    assert (r.outcome, r.reason) == (outcome, reason)


def test_429_retry_after_is_read():
    r = RawResponse("u", 429, (("Retry-After", "7"),), b"", T0, 0.0)
    assert classify(r, "onpe2026").retry_after_s == 7.0


# --- scalars ------------------------------------------------------------------------------

def test_tolerant_scalars():
    assert to_int("14,983,462") == 14_983_462
    assert to_int("  1 234 ") == 1234 and to_int(86656.0) == 86656 and to_int(None) is None
    with pytest.raises(ParseDrift, match="percentage"):
        to_int(93.414, name="contabilizadas")
    with pytest.raises(ParseDrift):
        to_int("12a")
    with pytest.raises(ParseDrift):
        to_int(True)
    assert to_percent("  65.1485") == 65.1485
    with pytest.raises(ParseDrift, match="count"):
        to_percent(89201, name="actasContabilizadas")
    assert ubigeo6(10000) == "010000" and ubigeo6("40100") == "040100"
    assert ubigeo6(140000) == "140000"
    with pytest.raises(ParseDrift):
        ubigeo6("14A000")
    assert norm_code("00000014") == norm_code(14) == norm_code("14") == "14"
    assert norm_code(8.0) == "8"
    assert pick({"nvotos": 3}, "votos") == 3 and pick({"adVotos": 5}, "votos") == 5
    assert pick({"ccodigo": "00000008"}, "codigo") == "00000008"
    assert pick({"adDescripcion": "X", "descripcion": None}, "descripcion") == "X"


def test_times_to_lima():
    ms = to_lima(1776488709960)  # EG2026 epoch milliseconds
    assert ms is not None and ms.utcoffset() == timedelta(hours=-5)
    assert ms.astimezone(UTC) == datetime(2026, 4, 18, 5, 5, 9, 960000, tzinfo=UTC)
    assert to_lima("1776488709960") == ms
    iso = to_lima("2026-10-06T16:16:01.569Z")  # ERM 2026 ISO string
    assert iso is not None and (iso.hour, iso.minute, iso.tzinfo) == (11, 16, LIMA)
    naive = to_lima("2026-10-06T11:16:01")
    assert naive is not None and naive.astimezone(UTC).hour == 16
    t21 = lima_from_2021("12/04/2021", "08:46 h")
    assert t21 is not None and t21.astimezone(UTC) == datetime(2021, 4, 12, 13, 46, tzinfo=UTC)
    with pytest.raises(ParseDrift):
        to_lima("mañana")


# --- parsing the recorded answers --------------------------------------------------------

def test_parse_2021_results_first_round(fx: Path):
    cfg = cfg_2021_first()
    doc = json.loads((fx / "2021/results-ubigeo/800000__12-04-2021_0846.json").read_bytes())
    r = parse_unit_2021(doc, Scope.from_key("national"), cfg, url="u")
    c = r.counts
    assert (c["actas_total"], c["actas_counted"], c["actas_jee"], c["actas_pending"]) == (
        83_048, 51_107, 1_988, 29_953)
    assert c["actas_processed"] == 53_095 and c["electors"] == 14_983_462
    assert (c["cast"], c["blank"], c["null"], r.valid) == (11_053_945, 1_194_302, 540_254,
                                                          9_319_389)
    assert r.votes["perulibre"] == 1_543_237 and r.votes["fp"] == 1_208_953
    assert r.votes["app"] == 545_229 and not r.extra and not r.missing
    assert r.percents["avance"] == 65.1485 and r.percents["actas_counted"] == 61.539
    assert r.as_of == datetime(2021, 4, 12, 8, 46, tzinfo=LIMA)
    assert rejects(check_reading(r, ValidationConfig())) == []
    abroad = json.loads((fx / "2021/results-ubigeo/900000__12-04-2021_0048.json").read_bytes())
    a = parse_unit_2021(abroad, Scope.from_key("ambito:2"), cfg, url="u")
    assert a.abroad is True and a.counts["actas_counted"] == 182
    with pytest.raises(ParseDrift, match="900000"):  # an answer for another scope
        parse_unit_2021(abroad, Scope.from_key("national"), cfg, url="u")
    lima = json.loads((fx / "2021/results-ubigeo/140000__12-04-2021_0315.json").read_bytes())
    d = parse_unit_2021(lima, Scope.from_key("area1:140000"), cfg, url="u")
    assert d.level == "area1" and d.unit_code == "140000" and d.abroad is False
    assert rejects(check_reading(d, ValidationConfig())) == []


def test_parse_2026_recorded_erm(fx: Path):
    cfg = cfg_erm_amazonas()
    base = fx / "2026"
    tot = classify(resp((base / "resumen-general-totales/"
                                "erm2026__idEleccion1__ubigeo_nivel_01__010000.json").read_bytes()),
                   "onpe2026").payload
    par = classify(resp((base / "resumen-general-participantes/"
                                "erm2026__idEleccion1__ubigeo_nivel_01__010000.json").read_bytes()),
                   "onpe2026").payload
    r = parse_unit_2026(tot, par, Scope.from_key("area1:010000"), cfg, urls=("t", "p"))
    c = r.counts
    assert (c["actas_total"], c["actas_counted"], c["actas_jee"], c["actas_pending"]) == (
        1263, 1232, 15, 16)
    assert c["cast"] == 234_042 and r.valid == 200_419 and c["blank"] is None
    assert r.votes["diaz"] == 51_974 and sum(r.votes.values()) == r.valid
    assert r.percents["actas_counted"] == 97.546  # a percent, kept apart from the count
    assert r.as_of is not None and r.as_of.astimezone(UTC) == datetime(
        2026, 10, 6, 16, 16, 1, 569000, tzinfo=UTC)
    assert check_reading(r, ValidationConfig()) == []
    with pytest.raises(ParseDrift, match="010000"):  # the answer is for Amazonas
        parse_unit_2026(tot, par, Scope.from_key("area1:020000"), cfg)
    no_count = {k: v for k, v in tot.items() if k != "contabilizadas"}
    with pytest.raises(ParseDrift, match="percentage"):
        parse_unit_2026(no_count, par, Scope.from_key("area1:010000"), cfg)
    # int-or-string codes: the same answer with codes as zero-padded strings
    par_str = [dict(p, codigoAgrupacionPolitica=f"{p['codigoAgrupacionPolitica']:08d}")
               for p in par]
    r2 = parse_unit_2026(tot, par_str, Scope.from_key("area1:010000"), cfg)
    assert r2.votes == r.votes
    dup = [*par, par[0]]
    with pytest.raises(ParseDrift, match="twice"):
        parse_unit_2026(tot, dup, Scope.from_key("area1:010000"), cfg)


def test_parse_2026_national_transcribed(fx: Path):
    tot = json.loads((fx / "2026/documented-examples/resumen-general-totales__eleccion__"
                            "idEleccion10__2026-04-18__data-only__transcribed.json").read_text())
    cfg = load_config(EXAMPLES_DIR / "onpe2026-runoff.toml")
    half = tot["totalVotosValidos"] // 2
    par = [{"codigoAgrupacionPolitica": 8, "totalVotosValidos": half},
           {"codigoAgrupacionPolitica": "10", "totalVotosValidos": tot["totalVotosValidos"] - half}]
    r = parse_unit_2026(tot, par, Scope.from_key("national"), cfg)
    assert r.counts["actas_counted"] == 86_656 and r.counts["actas_total"] == 92_766
    assert r.counts["actas_counted"] + r.counts["actas_jee"] + r.counts["actas_pending"] \
        == r.counts["actas_total"]
    assert check_reading(r, ValidationConfig()) == []
    assert r.as_of is not None and r.as_of.date().isoformat() == "2026-04-18"
    proceso = json.loads((fx / "2026/documented-examples/"
                                "proceso-electoral-activo__eg2026-r1__transcribed.json").read_text())
    assert election_from_proceso(proceso["data"]) == 10
    assert election_from_proceso({"idEleccionPrincipal": None}) is None
    assert election_from_proceso({"idEleccionPrincipal": "diez"}) is None


def test_parse_2021_actas(fx: Path):
    cfg = cfg_2021_runoff()
    det = fx / "2021/mesas-detalle"
    normal = parse_acta_2021(json.loads((det / "sep2021__000001__normal__20210613T230850Z.json")
                                        .read_text()), Scope.from_key("mesa:000001"), cfg)
    assert (normal.status, normal.area3_code, normal.resolved) == ("counted", "010101", False)
    assert dict(normal.votes) == {"castillo": 118, "fujimori": 81}
    assert dict(normal.figures) == {"electors": 300, "cast": 214, "blank": 1, "null": 14,
                                    "challenged": 0}
    assert check_acta(None, normal) == []
    annulled = parse_acta_2021(json.loads(
        (det / "sep2021__002336__anulada-resuelta__20210613T232856Z.json").read_text()),
        Scope.from_key("mesa:002336"), cfg)
    assert annulled.status == "annulled" and annulled.figures["null"] == 170
    assert annulled.resolved and dict(annulled.votes) == {"castillo": 0, "fujimori": 0}
    jee = parse_acta_2021(json.loads(
        (det / "sep2021__000043__resuelta-jee__20210613T230917Z.json").read_text()),
        Scope.from_key("mesa:000043"), cfg)
    assert jee.status == "counted" and jee.resolved
    # a counted acta whose figures change is an alarm
    changed = replace(normal, votes={"castillo": 117, "fujimori": 81})
    assert {p.rule for p in check_acta(normal, changed)} == {"counted_acta_changed",
                                                              "acta_sum"}
    moved = replace(normal, status="jee")
    assert [p.rule for p in check_acta(normal, moved)] == ["counted_acta_moved"]


def test_parse_2026_acta_n_and_ad_keys():
    cfg = load_config(EXAMPLES_DIR / "onpe2026-runoff.toml")
    cfg = replace(cfg, election_id=10)
    n_keys = {"id": 550704010210, "codigoMesa": "005507", "idEleccion": 10,
              "ubigeoDistrito": "040102", "codigoEstadoActa": "C", "estadoActa": "C",
              "totalElectoresHabiles": 300, "totalVotosEmitidos": 220, "totalVotosValidos": 200,
              "detalle": [{"ccodigo": "00000008", "descripcion": "FUERZA POPULAR", "nvotos": 120},
                          {"ccodigo": "00000010", "descripcion": "JUNTOS POR EL PERU",
                           "nvotos": 80},
                          {"ccodigo": "80", "descripcion": "VOTOS EN BLANCO", "nvotos": 5},
                          {"ccodigo": "81", "descripcion": "VOTOS NULOS", "nvotos": 15}],
              "lineaTiempo": [{"codigoEstadoActa": "C", "fechaRegistro": 1776488709960}]}
    a = parse_acta_2026(n_keys, Scope.from_key("acta:550704010210"), cfg)
    assert (a.acta_id, a.status, a.area3_code) == ("005507", "counted", "040102")
    assert dict(a.votes) == {"fujimori": 120, "sanchez": 80} and a.figures["null"] == 15
    ad = [dict(n_keys, detalle=[{"adCodigo": d["ccodigo"], "adDescripcion": d["descripcion"],
                                 "adVotos": d["nvotos"]} for d in n_keys["detalle"]])]
    b = parse_acta_2026(ad, Scope.from_key("mesa:005507"), cfg)
    assert dict(b.votes) == dict(a.votes) and dict(b.figures) == dict(a.figures)
    # an acta bound for the JEE: detail present, header totals null -> cast from detail
    e = parse_acta_2026(dict(n_keys, codigoEstadoActa="E", totalVotosEmitidos=None),
                        Scope.from_key("acta:550704010210"), cfg)
    assert e.status == "jee" and e.figures["cast"] == 220
    p = parse_acta_2026(dict(n_keys, codigoEstadoActa="P", detalle=None,
                             totalVotosEmitidos=None), Scope.from_key("acta:550704010210"), cfg)
    assert p.status == "pending" and p.votes["fujimori"] is None
    ni = parse_acta_2026(dict(n_keys, estadoActa="N", detalle=[]),
                         Scope.from_key("acta:550704010210"), cfg)
    assert ni.status == "not_installed"
    with pytest.raises(ParseDrift):
        parse_acta_2026(dict(n_keys, codigoEstadoActa="Z"), Scope.from_key("acta:550704010210"),
                        cfg)
    # an answer for another acta (or mesa) than asked is drift, never stored
    with pytest.raises(ParseDrift, match="asked for acta 1"):
        parse_acta_2026(n_keys, Scope.from_key("acta:1"), cfg)
    with pytest.raises(ParseDrift, match="asked for mesa 000001"):
        parse_acta_2026(ad, Scope.from_key("mesa:000001"), cfg)
    # the polling place is kept; an unknown party is reported, not dropped silently
    assert parse_acta_2026(dict(n_keys, nombreLocalVotacion=" IE  18288 "), Scope.from_key(
        "acta:550704010210"), cfg).polling_place == "IE 18288"
    other = dict(n_keys, detalle=[*n_keys["detalle"], {"ccodigo": "00000099",
                                                       "descripcion": "OTRO", "nvotos": 3}])
    odd = parse_acta_2026(other, Scope.from_key("acta:550704010210"), cfg)
    assert odd.extra == {"99": 3}
    assert [p.rule for p in rejects(check_acta(None, odd, cfg.validation))] == [
        "unknown_candidate"]
    half = dict(n_keys, detalle=n_keys["detalle"][1:])
    assert [p.rule for p in rejects(check_acta(None, parse_acta_2026(
        half, Scope.from_key("acta:550704010210"), cfg)))] == ["missing_candidate"]


# --- validation -----------------------------------------------------------------------------

def good(**kw) -> UnitReading:
    counts = {"actas_total": 100, "actas_counted": 60, "actas_processed": 70, "actas_jee": 10,
              "actas_pending": 30, "actas_annulled": None, "actas_not_installed": None,
              "electors": 20_000, "electors_total": None, "cast": 15_000, "blank": 500,
              "null": 500, "challenged": None}
    base = {"scope": "national", "level": "national", "unit_code": "", "abroad": None,
            "as_of": datetime(2026, 6, 7, 20, 0, tzinfo=LIMA), "counts": counts,
            "votes": {"fujimori": 7_000, "sanchez": 7_000}, "valid": 14_000,
            "percents": {"actas_counted": 60.0}}
    counts_kw = kw.pop("counts", {})
    base.update(kw)
    base["counts"] = counts | counts_kw
    return UnitReading(**base)


@pytest.mark.parametrize(("change", "rule", "severity"), [
    ({"votes": {"fujimori": 7_000, "sanchez": None}}, "missing_candidate", "reject"),
    ({"extra": {"900": 3}}, "unknown_candidate", "reject"),
    ({"counts": {"actas_jee": -1, "actas_pending": 41}}, "negative_count", "reject"),
    ({"counts": {"actas_pending": 29}}, "acta_invariant", "reject"),
    ({"votes": {"fujimori": 7_001, "sanchez": 7_000}}, "votes_above_valid", "reject"),
    ({"votes": {"fujimori": 6_999, "sanchez": 7_000}}, "valid_total_mismatch", "reject"),
    ({"counts": {"cast": 13_000, "blank": 0, "null": 0}}, "valid_above_cast", "reject"),
    ({"counts": {"actas_counted": 120, "actas_pending": -30}}, "counted_above_total", "reject"),
    ({"percents": {"actas_counted": 61.0}}, "percent_mismatch", "flag"),
    ({"counts": {"electors": 10_000}}, "cast_above_electors", "flag"),
    ({"counts": {"blank": 400}}, "cast_identity", "flag"),
    ({"counts": {"actas_processed": 71}}, "processed_identity", "flag"),
])
def test_reading_rules(change, rule, severity):
    assert check_reading(good(), ValidationConfig()) == []
    probs = check_reading(good(**change), ValidationConfig())
    assert (rule, severity) in {(p.rule, p.severity) for p in probs}
    assert all(p.message_es and p.message_en for p in probs)


def test_extra_candidates_allowed_when_configured():
    r = good(extra={"900": 10}, valid=14_010, counts={"cast": 15_010})
    assert rejects(check_reading(r, ValidationConfig(allow_extra_candidates=True))) == []


def test_progress_rules():
    prev = good()
    assert check_progress(None, prev).decreases == ()
    assert check_progress(prev, prev).duplicate
    later = prev.as_of + timedelta(minutes=5)
    up = good(as_of=later, counts={"actas_counted": 61, "actas_pending": 29, "cast": 15_200,
                                   "blank": 550, "null": 550},
              votes={"fujimori": 7_050, "sanchez": 7_050}, valid=14_100)
    p = check_progress(prev, up)
    assert not p.stale and not p.duplicate and p.decreases == () and p.alarms == ()
    old = good(as_of=prev.as_of - timedelta(minutes=5), counts={"actas_counted": 59,
                                                               "actas_pending": 31})
    assert check_progress(prev, old).stale
    down = good(as_of=later, counts={"actas_counted": 59, "actas_jee": 11},
                votes={"fujimori": 6_900, "sanchez": 7_000}, valid=13_900)
    p = check_progress(prev, down)
    assert ("actas_counted", 60, 59) in p.decreases and ("v_fujimori", 7_000, 6_900) in p.decreases
    moved = good(as_of=later, votes={"fujimori": 7_100, "sanchez": 6_900})
    assert [a.rule for a in check_progress(prev, moved).alarms] == ["votes_without_new_actas"]


def test_aggregate_drift_is_reported_not_reconciled():
    nat = good()
    a = good(scope="area1:010000", counts={"actas_counted": 20, "cast": 5_000},
             votes={"fujimori": 2_000, "sanchez": 2_500})
    b = good(scope="area1:020000", counts={"actas_counted": 40, "cast": 10_000},
             votes={"fujimori": 5_000, "sanchez": 4_500})
    assert aggregate_drift(nat, [a, b]) == {"actas_total": -100}
    b2 = good(scope="area1:020000", counts={"actas_counted": 39, "cast": 9_990,
                                            "actas_total": 0},
              votes={"fujimori": 4_999, "sanchez": 4_500})
    assert aggregate_drift(nat, [a, b2]) == {"actas_counted": 1, "cast": 10, "v_fujimori": 1}


# --- the cold path: geography, acta lists, configuration ---------------------------------

def test_parse_geography_flat_and_tree():
    from escrutinio.live.parse import parse_geography_flat, parse_geography_level

    flat = [{"ubigeo": "000000", "nombre": "TOTAL"},
            {"ubigeo": 10101, "nombre": "AMAZONAS \\ CHACHAPOYAS \\ CHACHAPOYAS"},
            {"ubigeo": "920201", "nombre": "AMERICA\\ARGENTINA\\ BUENOS AIRES "},
            {"ubigeo": "010102", "departamento": "AMAZONAS", "provincia": "CHACHAPOYAS",
             "distrito": "ASUNCION"}]
    nodes = {(g.level, g.code): (g.name, g.parent, g.abroad)
             for g in parse_geography_flat(flat)}
    assert nodes == {
        ("area1", "010000"): ("AMAZONAS", None, False),
        ("area2", "010100"): ("CHACHAPOYAS", "010000", False),
        ("area3", "010101"): ("CHACHAPOYAS", "010100", False),
        ("area3", "010102"): ("ASUNCION", "010100", False),
        ("area1", "920000"): ("AMERICA", None, True),
        ("area2", "920200"): ("ARGENTINA", "920000", True),
        ("area3", "920201"): ("BUENOS AIRES", "920200", True)}
    for bad in ([{"ubigeo": "010100", "nombre": "A \\ B \\ C"}],  # not a district
                [{"ubigeo": "010101", "nombre": "AMAZONAS"}],  # no path
                [{"ubigeo": "LIMA", "nombre": "A \\ B \\ C"}]):
        with pytest.raises(ParseDrift):
            parse_geography_flat(bad)
    provs = parse_geography_level([{"ubigeo": 10100, "nombre": "CHACHAPOYAS"}], "area2",
                                  parent="010000")
    assert [(g.code, g.parent) for g in provs] == [("010100", "010000")]
    with pytest.raises(ParseDrift, match="not an area2 of 020000"):
        parse_geography_level([{"ubigeo": 10100, "nombre": "X"}], "area2", parent="020000")


def test_parse_acta_list_and_what_moved():
    from escrutinio.live.crawl import moved
    from escrutinio.live.parse import parse_acta_list_2026, parse_mesas_2021

    row = {"id": 6311810, "codigoMesa": 63118, "idEleccion": 10, "codigoEstadoActa": "P",
           "ubigeoNivel03": 160101, "totalElectoresHabiles": "300",
           "nombreLocalVotacion": "269 JARDIN DE DIOS"}
    page = parse_acta_list_2026({"content": [row], "totalPaginas": 3, "totalRegistros": 245,
                                 "paginaActual": 0}, district="160101", election_id=10)
    assert (page.total_pages, page.total_records, page.page) == (3, 245, 0)
    it = page.items[0]
    assert (it.key, it.mesa, it.state, it.district, it.electors, it.polling_place) == (
        "acta:6311810", "063118", "P", "160101", 300, "269 JARDIN DE DIOS")
    for change in ({"idEleccion": 11}, {"ubigeoNivel03": 160102}, {"codigoEstadoActa": "X"},
                   {"id": None}):
        with pytest.raises(ParseDrift):
            parse_acta_list_2026({"content": [row | change]}, district="160101",
                                 election_id=10)
    mesas = parse_mesas_2021({"mesasVotacion": [{"NUMMESA": "000001", "PROCESADO": 1},
                                                {"NUMMESA": "2", "PROCESADO": 0}]})
    assert [(i.key, i.state) for i in mesas.items] == [("mesa:000001", "C"),
                                                        ("mesa:000002", "P")]
    # an acta is fetched again only when its list entry says it moved
    assert moved("C", "pending", Stack.ONPE2026) and moved("E", "pending", Stack.ONPE2026)
    assert moved("C", "jee", Stack.ONPE2026) and moved("P", "counted", Stack.ONPE2026)
    assert not moved("C", "counted", Stack.ONPE2026) and not moved("C", "annulled",
                                                                   Stack.ONPE2026)
    assert not moved("E", "jee", Stack.ONPE2026) and not moved(None, "jee", Stack.ONPE2026)
    assert moved("C", "pending", Stack.ONPE2021) and not moved("C", "jee", Stack.ONPE2021)


def test_cold_configuration():
    import tomllib

    base = tomllib.loads((EXAMPLES_DIR / "onpe2026-runoff.toml").read_text())
    cfg = config_from_dict(base | {"cold": {"areas": ["160000", 950000, "abroad"],
                                            "first_page": 1}})
    assert cfg.cold.areas == ("160000", "950000", "abroad") and cfg.cold.first_page == "1"
    assert cfg.cold.wants("160301") and cfg.cold.wants("940101")
    assert not cfg.cold.wants("150101") and cfg.fetch_geography
    assert cfg.with_crawl(["10101"]).cold.areas == ("010101",)
    with pytest.raises(IngestError) as exc:
        config_from_dict(base | {"cold": {"areas": ["lima"]}})
    assert "not a ubigeo" in exc.value.message_en and "no es un ubigeo" in exc.value.message_es
    with pytest.raises(IngestError, match="unknown key"):
        config_from_dict(base | {"cold": {"areaz": []}})
    b21 = tomllib.loads((EXAMPLES_DIR / "onpe2021-runoff.toml").read_text())
    assert not config_from_dict(b21).fetch_geography
    with pytest.raises(IngestError) as exc:
        config_from_dict(b21 | {"cold": {"areas": ["010000"]}})  # no 2021 geography
    assert "districts" in exc.value.message_en
