"""Classify a raw response BEFORE parsing it (the failure table of ONPE_API.md).

Every answer from the backend falls in exactly one class, and the class alone decides
what the watcher does next:

==============  ==============================================  ============================
class           when                                            what the watcher does
==============  ==============================================  ============================
ok              JSON of the expected shape with data             parse, validate, maybe accept
no_data         204, empty body, ``data`` null / [] / all-null   nothing; not an error; no
                                                                 hot retry
blocked         HTTP 200 (or other) with the web app's HTML      re-prime cookies, back off,
                (WAF, datacenter IP, missing browser headers)    keep the last good snapshot
hard_blocked    401 / 403                                        stop the cycle, alert, pause
transient       429, 5xx, timeouts, connection errors, Lambda    exponential backoff with
                timeout text, ``{'statusCode': '[400]'}``,       jitter, bounded attempts
                truncated or garbled JSON
api_error       ``success: false``, a Spring error body          skip the scope this cycle
                ``{status, error, message}``, missing ``data``,
                other 4xx
==============  ==============================================  ============================

The classifier never raises: whatever bytes arrive, it answers with a class and a reason.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from escrutinio.live.config import Stack


class Outcome(StrEnum):
    OK = "ok"
    NO_DATA = "no_data"
    BLOCKED = "blocked"
    HARD_BLOCKED = "hard_blocked"
    TRANSIENT = "transient"
    API_ERROR = "api_error"


#: classes worth another attempt within the same request (bounded, with backoff)
RETRYABLE: Final = frozenset({Outcome.TRANSIENT, Outcome.BLOCKED})

OUTCOME_LABELS: Final[dict[Outcome, tuple[str, str]]] = {
    Outcome.OK: ("correcto", "ok"),
    Outcome.NO_DATA: ("sin datos", "no data"),
    Outcome.BLOCKED: ("bloqueado (HTML en lugar de JSON)", "blocked (HTML instead of JSON)"),
    Outcome.HARD_BLOCKED: ("bloqueo duro (401/403)", "hard-blocked (401/403)"),
    Outcome.TRANSIENT: ("falla transitoria", "transient failure"),
    Outcome.API_ERROR: ("error de la API", "API error"),
}


@dataclass(frozen=True, slots=True)
class RawResponse:
    """One HTTP exchange, exactly as it happened (the unit of the raw log)."""

    url: str
    status: int | None  # None: no HTTP answer (timeout, refused, DNS, reset)
    headers: tuple[tuple[str, str], ...]
    body: bytes
    fetched_at: datetime  # when the answer (or the failure) arrived, UTC
    elapsed_s: float
    error: str | None = None  # network-level failure, when status is None
    scope: str = ""
    endpoint: str = ""
    attempt: int = 1
    sha256: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.sha256:
            object.__setattr__(self, "sha256", hashlib.sha256(self.body).hexdigest())

    def header(self, name: str) -> str | None:
        low = name.lower()
        for k, v in self.headers:
            if k.lower() == low:
                return v
        return None


@dataclass(frozen=True, slots=True)
class Classification:
    outcome: Outcome
    reason: str  # short rule id: html_shell, lambda_timeout, success_false ...
    detail: str = ""
    payload: Any = None  # the parsed JSON data (``data`` for 2026) when outcome is ok
    retry_after_s: float | None = None  # from a 429's Retry-After header


def _retry_after(resp: RawResponse) -> float | None:
    v = resp.header("Retry-After")
    if v is None:
        return None
    try:
        return max(0.0, float(v.strip()))
    except ValueError:
        return None


def _looks_html(text: str, content_type: str) -> bool:
    head = text.lstrip()[:512].lower()
    return (head.startswith("<") and ("<html" in head or "<!doctype" in head
                                      or "<head" in head or "<body" in head
                                      or "<script" in head)) or (
        "text/html" in content_type and head.startswith("<"))


def _all_null(obj: Any) -> bool:
    if obj is None:
        return True
    if isinstance(obj, dict):
        return all(_all_null(v) for v in obj.values())
    if isinstance(obj, list):
        return len(obj) == 0 or all(_all_null(v) for v in obj)
    return False


def classify(resp: RawResponse, stack: Stack | str) -> Classification:
    """The class of one raw response, decided before any parsing into the domain."""
    stack = Stack(stack)
    if resp.status is None:
        err = (resp.error or "").lower()
        reason = "timeout" if "timed out" in err or "timeout" in err else "network_error"
        return Classification(Outcome.TRANSIENT, reason, resp.error or "")
    status = resp.status
    if status in (401, 403):
        return Classification(Outcome.HARD_BLOCKED, f"http_{status}",
                              f"HTTP {status} (WAF block)")
    if status == 429:
        return Classification(Outcome.TRANSIENT, "http_429", "too many requests",
                              retry_after_s=_retry_after(resp))
    if status >= 500:
        return Classification(Outcome.TRANSIENT, f"http_{status}", f"HTTP {status}")
    if status == 204:
        return Classification(Outcome.NO_DATA, "no_content", "HTTP 204")
    text = resp.body.decode("utf-8", errors="replace")
    stripped = text.strip()
    if not stripped:
        return Classification(Outcome.NO_DATA, "empty_body", f"HTTP {status}, empty body")
    content_type = (resp.header("Content-Type") or "").lower()
    if _looks_html(stripped, content_type):
        return Classification(Outcome.BLOCKED, "html_shell",
                              f"HTTP {status} with HTML ({len(resp.body)} bytes)")
    if "errorMessage=" in stripped or "Task timed out" in stripped:
        return Classification(Outcome.TRANSIENT, "lambda_timeout", stripped[:200])
    if stripped.startswith("{'") and "statusCode" in stripped:
        return Classification(Outcome.TRANSIENT, "gateway_repr", stripped[:200])
    try:
        doc = json.loads(stripped)
    except json.JSONDecodeError as exc:
        # a body cut in transit, or some other non-JSON text
        reason = "truncated_json" if stripped[:1] in "{[" else "not_json"
        return Classification(Outcome.TRANSIENT, reason, f"{exc.msg} at {exc.pos}")
    if status >= 400:
        if isinstance(doc, dict) and "error" in doc and "status" in doc:
            return Classification(Outcome.API_ERROR, "spring_error",
                                  f"{doc.get('status')} {doc.get('error')}: {doc.get('message')}")
        return Classification(Outcome.API_ERROR, f"http_{status}", stripped[:200])
    if not isinstance(doc, (dict, list)):
        return Classification(Outcome.API_ERROR, "unexpected_json",
                              f"JSON {type(doc).__name__}, expected an object")
    if stack is Stack.ONPE2026:
        if not isinstance(doc, dict):
            return Classification(Outcome.API_ERROR, "no_envelope",
                                  "expected {success, message, data}")
        if "success" not in doc and "error" in doc and "status" in doc:
            return Classification(Outcome.API_ERROR, "spring_error",
                                  f"{doc.get('status')} {doc.get('error')}: {doc.get('message')}")
        success = doc.get("success")
        if success is False or (isinstance(success, str) and success.lower() == "false"):
            return Classification(Outcome.API_ERROR, "success_false",
                                  str(doc.get("message", ""))[:200])
        if "data" not in doc:
            return Classification(Outcome.API_ERROR, "missing_data",
                                  "envelope without 'data'")
        data = doc["data"]
        if _all_null(data):
            return Classification(Outcome.NO_DATA, "null_data", "data is null, [] or all-null")
        return Classification(Outcome.OK, "ok", payload=data)
    # 2021 stack: no envelope
    if isinstance(doc, dict):
        if "errorMessage" in doc:
            return Classification(Outcome.TRANSIENT, "lambda_error",
                                  str(doc["errorMessage"])[:200])
        if set(doc) <= {"message"} and doc:
            # API Gateway's own {"message": "Internal server error"} / "Endpoint request
            # timed out"
            return Classification(Outcome.TRANSIENT, "gateway_message", str(doc["message"]))
    if _all_null(doc):
        return Classification(Outcome.NO_DATA, "null_data", "empty or all-null object")
    return Classification(Outcome.OK, "ok", payload=doc)
