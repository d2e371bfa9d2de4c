"""The risk-limiting audit: the plan for a snapshot and the audits recorded against it."""

from __future__ import annotations

from escrutinio.api.resources.base import analysis

AUDIT = analysis(
    "audit", "Plan de auditoría y auditorías registradas / audit plan and recorded audits",
    title=("Auditoría que limita el riesgo", "Risk-limiting audit"), template="audit.html",
    load=lambda c: c.b.audit(c.snap),
    result=lambda c, v: {"plan": v.plan, "audits": v.audits})
