"""OpenAPI response schemas, generated from the analyses' own dataclasses.

The JSON twins are ``escrutinio.provenance.to_jsonable`` of frozen results; pydantic's
``TypeAdapter`` turns the same dataclasses into JSON Schema, so the documented schema
cannot drift from the code. Two adjustments match ``to_jsonable`` and the server's JSON
writer: exact fractions are written as numbers, and a number that is not finite (a
p-value of a test that could not run, say) is written as ``null``.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import TypeAdapter

REF = "#/components/schemas/{model}"


def _relax(node: Any) -> Any:
    if isinstance(node, dict):
        node = {k: _relax(v) for k, v in node.items()}
        if node.get("type") == "string" and node.get("format") == "fraction":
            return {"type": ["number", "null"]}
        if node.get("type") == "number":
            node = {**node, "type": ["number", "null"]}
        return node
    if isinstance(node, list):
        return [_relax(v) for v in node]
    return node


def _typed() -> dict[str, Any]:
    from escrutinio.api.backend import ProjectionHistory
    from escrutinio.count import CountState, LeadHistory
    from escrutinio.diff import SnapshotDiff
    from escrutinio.projection.result import Projection
    from escrutinio.store.base import SnapshotInfo

    return {"SnapshotInfo": SnapshotInfo, "CountState": CountState,
            "LeadHistory": LeadHistory, "SnapshotDiff": SnapshotDiff,
            "Projection": Projection, "ProjectionHistory": ProjectionHistory}


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": props,
            "required": list(props) if required is None else required}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(model=name)}


ANY_OBJECT: dict[str, Any] = {"type": "object", "additionalProperties": True}
LINKS = {"type": "object", "additionalProperties": {"type": "string"}}


@cache
def components() -> dict[str, Any]:
    """Every schema the API refers to, for ``components.schemas``."""
    out: dict[str, Any] = {}
    for name, tp in _typed().items():
        schema = TypeAdapter(tp).json_schema(mode="serialization", ref_template=REF)
        defs = schema.pop("$defs", {})
        out.update({k: _relax(v) for k, v in defs.items()})
        out[name] = _relax(schema)
    snap = _ref("SnapshotInfo")
    out.update({
        "Error": _obj({
            "error": {"type": "string"}, "status": {"type": "integer"},
            "message_es": {"type": "string"}, "message_en": {"type": "string"},
            "detail": {"type": "array", "items": ANY_OBJECT}},
            required=["error", "status", "message_es", "message_en"]),
        "Contest": ANY_OBJECT,
        "SnapshotList": _obj({"contest": {"type": ["string", "null"]},
                              "snapshots": {"type": "array", "items": snap},
                              "links": LINKS}),
        "SnapshotDetail": _obj({"snapshot": snap, "contest": _ref("Contest"),
                                "levels": {"type": "array", "items": {"type": "string"}},
                                "ledger": {"oneOf": [_ref("LedgerSummary"),
                                                     {"type": "null"}]},
                                "links": LINKS}),
        "LedgerSummary": _obj({"seq": {"type": "integer"}, "entry_hash": {"type": "string"},
                               "merkle_root": {"type": "string"},
                               "tree_size": {"type": "integer"},
                               "recorded_at": {"type": "string"},
                               "proof": {"type": "string"}}),
        "InclusionProof": _obj({"proof": ANY_OBJECT, "snapshot_id": {"type": "string"},
                                "verify": {"type": "string"}}),
        "LedgerResponse": _obj({
            "head": _obj({"n_entries": {"type": "integer"}, "head_hash": {"type": "string"}}),
            "snapshots": {"type": "array", "items": ANY_OBJECT},
            "check": {"type": "string"}}),
        "ContestList": _obj({"contests": {"type": "array", "items": _ref("Contest")},
                             "current": {"type": ["string", "null"]}}),
        "LevelLabel": _obj({"es": {"type": "string"}, "en": {"type": "string"}}),
        "StateResponse": _obj({"snapshot": snap, "contest": _ref("Contest"),
                               "level": {"type": "string"},
                               "level_label": _ref("LevelLabel"), "state": _ref("CountState"),
                               "links": LINKS}),
        "MapResponse": _obj({"snapshot": snap, "contest": _ref("Contest"),
                             "level": {"type": "string"}, "level_label": _ref("LevelLabel"),
                             "state": _ref("CountState"), "map": ANY_OBJECT, "links": LINKS}),
        "ProjectionResponse": _obj({
            "snapshot": snap, "contest": _ref("Contest"), "reconstructed": {"type": "boolean"},
            "note_es": {"type": "string"}, "note_en": {"type": "string"},
            "projection": _ref("Projection"), "links": LINKS}),
        "HistoryResponse": _obj({"contest": _ref("Contest"), "history": _ref("LeadHistory"),
                                 "snapshots": {"type": "array", "items": snap},
                                 "links": LINKS}),
        "ProjectionHistoryResponse": _obj({"contest": _ref("Contest"),
                                           "projection_history": _ref("ProjectionHistory"),
                                           "links": LINKS}),
        "DiffResponse": _obj({"contest": _ref("Contest"), "older": snap, "newer": snap,
                              "diff": _ref("SnapshotDiff"), "links": LINKS}),
        "AnalysisResponse": _obj({"snapshot": snap, "contest": _ref("Contest"),
                                  "result": ANY_OBJECT, "links": LINKS},
                                 required=["snapshot", "contest", "result", "links"]),
        "MesaResponse": _obj({"contest": _ref("Contest"), "mesa": ANY_OBJECT,
                              "coordinator": {"type": "boolean"},
                              "copies": {"type": ["object", "null"]}, "links": LINKS},
                             required=["contest", "mesa", "coordinator", "copies", "links"]),
        "ReplayState": _obj({
            "replay": {"type": "boolean"}, "step": {"type": ["integer", "null"]},
            "n_steps": {"type": ["integer", "null"]},
            "as_of": {"type": ["string", "null"]},
            "as_of_label": {"type": ["object", "null"]},
            "snapshot_id": {"type": ["string", "null"]},
            "seconds_to_next": {"type": ["number", "null"]},
            "step_seconds": {"type": ["number", "null"]}}),
    })
    return out


def ok(name: str, description: str) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a JSON route: 200 with the schema, plus the documented errors."""
    err = {"content": {"application/json": {"schema": _ref("Error")}}}
    return {
        200: {"description": description,
              "content": {"application/json": {"schema": _ref(name)}}},
        304: {"description": "Not modified (If-None-Match matched the ETag)"},
        400: {"description": "Bad request", **err},
        404: {"description": "Unknown snapshot, contest or resource", **err},
        422: {"description": "Invalid parameters, or the analysis does not apply to this "
                             "snapshot", **err},
    }


def upload_responses(name: str, description: str) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a POST that reads an upload: no 304; 413 and 415 besides."""
    err = {"content": {"application/json": {"schema": _ref("Error")}}}
    out = {k: v for k, v in ok(name, description).items() if k != 304}
    out[413] = {"description": "The upload exceeds a size limit (bytes, decompressed bytes "
                               "or records)", **err}
    out[415] = {"description": "Unsupported content type: send application/json, text/csv "
                               "or multipart/form-data", **err}
    return out


def upload_body(description: str, file_field: str) -> dict[str, Any]:
    """``openapi_extra=`` documenting the three ways to send observer-copy records."""
    from escrutinio.api.uploads import MAX_RECORDS

    return {"requestBody": {"required": True, "description": description, "content": {
        "application/json": {"schema": {
            "type": "array", "minItems": 1, "maxItems": MAX_RECORDS,
            "items": {"type": "object", "additionalProperties": True},
            "description": "registros del formato de copias / records of the copy format "
                           "(observer_copy.schema.json, docs/defence.md)"}},
        "text/csv": {"schema": {
            "type": "string", "description": "CSV del formato de copias, con cabecera / CSV "
                                             "of the copy format, with a header"}},
        "multipart/form-data": {"schema": {
            "type": "object", "required": [file_field],
            "properties": {file_field: {
                "type": "string", "format": "binary",
                "description": "un archivo: CSV, CSV gzip, Parquet o arreglo JSON / one "
                               "file: CSV, gzipped CSV, Parquet or JSON array"}}}},
    }}}
