"""Ingest and load of the 2021 runoff final file (86,488 actas) into PostgreSQL and DuckDB.

    eval "$(scripts/ci-postgres.sh start)"
    .venv/bin/python benchmarks/bench_postgres.py [--dsn postgresql://...] [--repeat 3]
    scripts/ci-postgres.sh stop

Each repetition ingests into a fresh schema (PostgreSQL) or file (DuckDB); the parse is
done once and not timed. Also times the ledger (Merkle root of the snapshot).
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from escrutinio.sources.onpe_files import parse_ronderos
from escrutinio.store import open_store
from escrutinio.store.ledger import append_new, verify_log

REPO = Path(__file__).resolve().parents[1]
FINAL = "peru-2021-runoff/actas/actas_electorales_ronderos.pe.csv.gz"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsn", default=os.environ.get("ESCRUTINIO_TEST_PG"))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if not args.dsn:
        sys.exit("set ESCRUTINIO_TEST_PG or pass --dsn (scripts/ci-postgres.sh start)")
    data = Path(os.environ.get("ESCRUTINIO_DATA_DIR", REPO.parent / "shared" / "data"))
    snap = parse_ronderos(data / FINAL, as_of="2021-06-17T00:00:00Z")
    print(f"rows: {snap.frame.height}")
    for backend in ("postgres", "duckdb"):
        for i in range(args.repeat):
            with tempfile.TemporaryDirectory() as tmp:
                if backend == "postgres":
                    schema = f"bench_{secrets.token_hex(4)}"
                    with psycopg.connect(args.dsn, autocommit=True) as c:
                        c.execute(f"CREATE SCHEMA {schema}")
                    url = f"{args.dsn}?options=-csearch_path%3D{schema}"
                else:
                    url = str(Path(tmp) / "b.duckdb")
                t0 = time.perf_counter()
                store = open_store(url)
                t1 = time.perf_counter()
                store.put_snapshots([snap])
                t2 = time.perf_counter()
                store.close()
                store = open_store(url)
                t3 = time.perf_counter()
                store.load_actas(snap.snapshot_id)
                t4 = time.perf_counter()
                append_new(store)
                t5 = time.perf_counter()
                report = verify_log(store)
                t6 = time.perf_counter()
                assert report.ok, report
                store.close()
                if backend == "postgres":
                    with psycopg.connect(args.dsn, autocommit=True) as c:
                        c.execute(f"DROP SCHEMA {schema} CASCADE")
                print(f"{backend} run {i + 1}: open+migrate {t1 - t0:.3f}s  "
                      f"ingest {t2 - t1:.3f}s  load_actas {t4 - t3:.3f}s  "
                      f"ledger append {t5 - t4:.3f}s  verify-log {t6 - t5:.3f}s")


if __name__ == "__main__":
    main()
