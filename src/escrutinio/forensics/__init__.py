"""Forensic screening that does not cry wolf (docs/methods.md §5; docs/forensics.md).

Calibrated anomaly tests on per-acta results — integer percentages, last digit and 2BL
against size-aware nulls, the turnout × share fingerprint, outliers within a polling
place, runoff against first round — with Benjamini-Hochberg control across regions ×
tests × candidates, the stakes bound and a bilingual report. First-digit Benford is
refused with an explanation (:mod:`escrutinio.forensics.benford`).

Modules: ``integers`` (with Kobak's combined count), ``digits`` (+ ``nulls``,
``engine``), ``fingerprint``, ``klimek`` (the fingerprint fit), ``outliers``, ``panel``,
``stakes`` (the stakes bound), ``stats``, ``report``, ``simulate`` (clean redraws,
small synthetic elections and manipulation injection), ``png``.
"""

from escrutinio.forensics.benford import BenfordRefused, first_digit_benford
from escrutinio.forensics.report import (
    TESTS,
    ForensicsReport,
    fingerprint_image,
    run_forensics,
)

__all__ = ["TESTS", "BenfordRefused", "ForensicsReport", "fingerprint_image",
           "first_digit_benford", "run_forensics"]
