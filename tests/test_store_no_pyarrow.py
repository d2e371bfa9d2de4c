"""The DuckDB store moves frames through the Arrow C stream interface, without pyarrow.

Importing pyarrow (and the numpy it pulls in) was a tenth of a second of every command
that touches the store (issue #15.6); this checks, in a fresh interpreter, that a full
ingest (rows, row reports, geography, ledger) and the reads of ``status`` leave it
unloaded, and that the rows come back as they went in.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CODE = """
import dataclasses, sys
from pathlib import Path
import polars as pl
from escrutinio import service
from escrutinio.sources.onpe_files import parse_ronderos
from escrutinio.store.duckdb_store import DuckDBStore

snap = parse_ronderos(Path(sys.argv[1]), as_of="2021-06-17T00:00:00Z")
rows = snap.frame.sort("acta_id").gather_every(43)
flags = pl.DataFrame({"line": [2, None], "acta_id": ["000001", None],
                      "field": ["cast", None], "rule": ["test", "test"],
                      "message_es": ["ñandú", "b"], "message_en": ["x", "y"],
                      "raw": ["1,2", None]}, schema=snap.findings.schema)
snap = dataclasses.replace(snap, frame=rows, findings=flags)
store = DuckDBStore(sys.argv[2])
service.ingest(store, [snap])
store.close()
store = DuckDBStore(sys.argv[2], read_only=True)
back = store.load_actas(snap.snapshot_id)
assert back.equals(rows.select(back.columns)), "rows changed on the way"
reports = store.load_row_reports(snap.snapshot_id)
assert reports["message_es"].to_list() == ["ñandú", "b"], reports
assert store.geography(snap.contest.id).height > 0
hist = store.acta_history(snap.contest.id, rows["acta_id"].head(3).to_list())
assert hist.height == 3, hist
print("PYARROW", "pyarrow" in sys.modules, file=sys.stderr)
"""


def test_store_round_trip_without_pyarrow(data_dir: Path, tmp_path: Path) -> None:
    final = data_dir / "peru-2021-runoff/actas/actas_electorales_ronderos.pe.csv.gz"
    res = subprocess.run([sys.executable, "-c", CODE, str(final),
                          str(tmp_path / "s.duckdb")], capture_output=True, text=True,
                         timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    assert "PYARROW False" in res.stderr, res.stderr
