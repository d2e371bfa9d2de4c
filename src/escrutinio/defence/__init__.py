"""Defence of the vote: observers' copies of actas (parallel tabulation), quick counts
and contested actas (docs/methods.md §3-4; docs/defence.md).

* :mod:`~escrutinio.defence.observers` — the documented observer-copy format
  (CSV / Parquet / JSON records for an API) and its strict parser;
* :mod:`~escrutinio.defence.pvt` — match copies to official actas, compare field by
  field, classify discrepancies and rank them by materiality;
* :mod:`~escrutinio.defence.generator` — seeded synthetic copies with known defects;
* :mod:`~escrutinio.defence.quickcount` — stratified design, SHA-256 sample, ratio and
  model-based estimators, technical-tie rule, fusion with the official partial count;
* :mod:`~escrutinio.defence.contested` — bounds, resolution-rate distribution and the
  smallest flipping set for actas at the JEE and for nullity requests;
* :mod:`~escrutinio.defence.verify` — acta arithmetic of a stored snapshot, ranked by
  materiality.

Analyses are pure functions (frames in, frozen results with provenance out); only
``observers`` and ``strata`` read files.
"""
