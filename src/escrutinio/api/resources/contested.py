"""Contested actas: the actas sent to the JEE, what they weigh, whether they can change
the result."""

from __future__ import annotations

from escrutinio.api.resources.base import analysis

CONTESTED = analysis(
    "contested", "Actas en disputa / contested actas",
    title=("Actas en disputa", "Contested actas"), template="contested.html",
    load=lambda c: c.b.contested(c.snap),
    result=lambda c, v: v.result.to_jsonable(c.args["limit"]))
