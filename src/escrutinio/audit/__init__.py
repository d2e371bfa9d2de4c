"""Risk-limiting audits over actas (see docs/audit.md).

Modules: ``ids`` (canonical acta IDs), ``sampling`` (Rivest 2011, PPEB, Rivest 2018
consistent sampler; SHA-256 only), ``model`` (population, assertions, conservative
policies, error bounds), ``macro`` (Kaplan-Markov / MACRO), ``alpha`` (ALPHA / SHANGRLA,
ONEAudit reference), ``bravo`` (BRAVO, Minerva), ``supersimple``, ``plan``, ``measure``,
``workflow`` (steps kept in the store), ``simulate`` (risk-limit validation).
"""
