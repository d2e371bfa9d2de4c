"""Schemathesis against the OpenAPI schema: generated requests (valid and invalid) to every
documented operation must never get a 5xx, and every response must match its documented
status codes, content type and JSON schema.

Bounded: ``MAX_EXAMPLES`` per operation and mode, on the shared session app whose
analyses are cached, so the file runs in well under a minute. (Schemathesis' own pytest
integration does not run on pytest 9 yet, so the operations are driven here with
hypothesis directly.)
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks

from api_support import live_app

MAX_EXAMPLES = 5
CHECKS = [checks.not_a_server_error, checks.status_code_conformance,
          checks.content_type_conformance, checks.response_schema_conformance,
          checks.negative_data_rejection]


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    app = live_app(tmp_path_factory.getbasetemp())
    return schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)


def _operations(schema):
    ops = [r.ok() for r in schema.get_all_operations()]
    assert len(ops) >= 15, [o.label for o in ops]
    return ops


def _runner(op, mode, path_parameters=None):
    @given(case=op.as_strategy(generation_mode=mode, path_parameters=path_parameters))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case):
        case.call_and_validate(checks=CHECKS)

    return run


@pytest.mark.parametrize(("mode", "real_refs"), [
    (GenerationMode.POSITIVE, False),  # anything the schema allows (mostly unknown refs)
    (GenerationMode.POSITIVE, True),  # real snapshots, generated query parameters and bodies
    (GenerationMode.NEGATIVE, False),  # what the schema forbids: must be a 4xx
])
def test_api_conforms_to_its_schema(api_schema, mode, real_refs):
    b = api_schema.app.state.backend
    actas = [s.snapshot_id for s in b.store.all_snapshots() if s.kind.value == "actas"]
    real = {"ref": actas[-1], "older": actas[-2], "newer": actas[-1]}
    failures = []
    for op in _operations(api_schema):
        names = {p.name for p in op.iter_parameters() if p.location == "path"}
        fixed = {k: v for k, v in real.items() if k in names} if real_refs else None
        try:
            _runner(op, mode, fixed or None)()
        except Unsatisfiable:
            # no parameter and no body: nothing can be made invalid
            assert mode is GenerationMode.NEGATIVE and not list(op.iter_parameters())
        except Exception as exc:  # collect every operation's failure, then report
            failures.append(f"{op.label}: {exc}")
    assert not failures, "\n\n".join(failures)
