"""docs/byoc.md, run as written (issue #16.6): Chile 2021 from a spreadsheet export to the
dashboard in five commands, from a clean clone of the repository; totals checked against
sums done here by hand on the original file."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import polars as pl
import pytest

REPO = Path(__file__).resolve().parents[1]
GUIDE = REPO / "docs" / "byoc.md"
RAW = "chile-2021-first-round/chile_election_2021.csv.gz"


def block(marker: str) -> str:
    text = GUIDE.read_text(encoding="utf-8")
    start = text.index("\n", text.index("```", text.index(f"<!-- byoc: {marker} -->"))) + 1
    return text[start:text.index("```", start)]


def spreadsheet_export(raw: Path, out: Path) -> pl.DataFrame:
    """What the guide's section 1 does in the spreadsheet: three columns added, saved as
    Excel does in a Spanish locale (semicolon, Latin-1)."""
    df = pl.read_csv(raw, infer_schema=False)
    votes = ["C1", "C2", "C3", "C4", "C5", "C6", "C7", "BLANK.VOTES", "NULL.VOTES"]
    sheet = df.with_columns(
        pl.int_range(1, pl.len() + 1).cast(pl.String).alias("acta_id"),  # =ROW()-1
        pl.lit("contabilizada").alias("estado"),
        pl.sum_horizontal([pl.col(c).cast(pl.Int64) for c in votes]).alias("emitidos"))
    out.write_bytes(sheet.write_csv(separator=";").encode("latin-1"))
    return df


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean clone of the committed tree (what a newcomer gets)."""
    if shutil.which("git") is None:
        pytest.fail("git is needed to try the guide from a clean clone")
    dest = tmp_path_factory.mktemp("clone") / "escrutinio"
    subprocess.run(["git", "clone", "--quiet", "--depth", "1", f"file://{REPO}", str(dest)],
                   check=True, capture_output=True)
    return dest


@pytest.mark.slow  # five real commands on 46,606 actas, and a server (about 40 s)
def test_the_guide_from_a_clean_clone(clone: Path, data_dir: Path, tmp_path: Path) -> None:
    assert (clone / "docs" / "byoc.md").read_text(encoding="utf-8") == \
        GUIDE.read_text(encoding="utf-8"), "commit docs/byoc.md before running this test"
    work = tmp_path / "pais"
    work.mkdir()
    raw = spreadsheet_export(data_dir / RAW, work / "mesas.csv")
    (work / "mesas.csv.contest.json").write_text(block("sidecar"), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(clone / "src"), "ESCRUTINIO_DB": "pais.duckdb",
           "COLUMNS": "200"}
    launcher = ("import sys; sys.argv[0] = 'escrutinio'; "
                "from escrutinio.cli import app; app()")

    def command(line: str) -> list[str]:
        words = shlex.split(line.split("#")[0])
        assert words[0] == "escrutinio"
        return [sys.executable, "-c", launcher, *words[1:]]

    lines = [ln for ln in block("commands").splitlines() if ln.strip()]
    assert len(lines) == 5
    outputs = []
    for line in lines[:4]:
        p = subprocess.run(command(line), cwd=work, env=env, capture_output=True, text=True,
                           timeout=600)
        assert p.returncode == 0, (line, p.stdout, p.stderr)
        assert "Traceback" not in p.stderr
        outputs.append(p.stdout)
    # the code that ran is the clone's, not this working tree's
    assert str(clone / "src") in subprocess.run(
        [sys.executable, "-c", "import escrutinio; print(escrutinio.__file__)"],
        env=env, capture_output=True, text=True, check=True).stdout

    # hand sums on the original file
    cols = ["C1", "C2", "C3", "C4", "C5", "C6", "C7"]
    want = raw.select(pl.col(cols).cast(pl.Int64).sum()).row(0)
    status = " ".join(outputs[1].split())
    names = json.loads(block("sidecar"))["contest"]["candidates"]
    for cand, votes in zip(names, want, strict=True):
        assert f"{cand['name']} {votes:,}" in status, cand["name"]
    assert f"46,606 de {raw.height:,}" in status and "Por región" in status
    p = subprocess.run([*command("escrutinio status --level national --json")], cwd=work,
                       env=env, capture_output=True, text=True, timeout=300, check=True)
    nat = json.loads(p.stdout)["national"]
    blank = int(raw["BLANK.VOTES"].cast(pl.Int64).sum())
    null = int(raw["NULL.VOTES"].cast(pl.Int64).sum())
    assert (nat["blank"], nat["null"], nat["electors"]) == (blank, null, None)
    assert nat["cast"] == sum(want) + blank + null

    # 5: the dashboard
    port = free_port()
    serve = [*command(lines[4]), "--port", str(port)]
    proc = subprocess.Popen(serve, cwd=work, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        page = None
        for _ in range(120):
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
                break
            except httpx.TransportError:
                if proc.poll() is not None:
                    pytest.fail(f"serve exited: {proc.stdout.read() if proc.stdout else ''}")
                time.sleep(0.5)
        assert page is not None and page.status_code == 200
        assert "Gabriel Boric Font" in page.text and "Kast" in page.text
        kast = f"{want[1]:,}".replace(",", "[.,\u00a0]")  # Kast's hand sum, as shown
        assert re.search(kast, page.text), kast
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_typo_in_the_sheet_names_file_line_and_field(data_dir: Path, tmp_path: Path,
                                                       tmp_store) -> None:
    from escrutinio import service
    from escrutinio.errors import IngestError

    sheet = tmp_path / "mesas.csv"
    spreadsheet_export(data_dir / RAW, sheet)
    lines = sheet.read_bytes().split(b"\n")
    cells = lines[3].split(b";")
    cells[4] = cells[4][:-1] + b"O" if len(cells[4]) > 1 else b"O"
    lines[3] = b";".join(cells)
    sheet.write_bytes(b"\n".join(lines))
    (tmp_path / "mesas.csv.contest.json").write_text(block("sidecar"), encoding="utf-8")
    with pytest.raises(IngestError) as ei:
        service.ingest(tmp_store, service.parse_paths([sheet]))
    assert (ei.value.location.file, ei.value.location.line, ei.value.location.field,
            ei.value.rule) == (str(sheet), 4, "v_kast", "not_an_integer")
    assert tmp_store.list_snapshots() == []
