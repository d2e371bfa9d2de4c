"""An unseen count with a late block, end to end through the generic format.

The newcomer's trial of the seventh session (``docs/trials/newcomer-chile-2021.md``):
``docs/examples/chile_2021_cuts.py`` turns the Chile 2021 first round per mesa into 15
per-unit cuts and a national series, with the rural places where Kast led most counted
last (~10% of the mesas, ~50 points more to Kast than everything before, nothing in the
earlier batches announcing it). Boric leads every cut up to 88%; Kast wins by 157,516.

What the projection must do on it, per unit and per series: never call the loser, and
never give the eventual winner P ≤ 0.01 (issue 13 item 3: "never report P ≤ 0.01 for a
candidate the data cannot rule out"). Reduced simulations; the full figures are in
``validation/RESULTS-projection.md``."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from escrutinio.cli import app

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


def _converter():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "chile_2021_cuts", REPO / "docs/examples/chile_2021_cuts.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("chile-cuts")
    _converter().convert(data_dir, out)
    return out


def _replay(db: Path, mode: str) -> dict[str, object]:
    res = runner.invoke(app, ["--db", str(db), "replay", "--mode", mode, "--sims", "1000",
                              "--json"])
    assert res.exit_code == 0, res.stdout
    return json.loads(res.stdout)  # type: ignore[no-any-return]


@pytest.mark.slow  # builds 15 cuts from 46,606 mesas and replays them twice
@pytest.mark.parametrize("mode", ["units", "series"])
def test_a_late_block_nothing_announces_is_never_ruled_out(built: Path, tmp_path: Path,
                                                          mode: str) -> None:
    db = tmp_path / "c.duckdb"
    src = built / ("units" if mode == "units" else "series")
    res = runner.invoke(app, ["--db", str(db), "ingest", str(src), "--json"])
    assert res.exit_code == 0, res.stdout
    r = _replay(db, mode)
    assert r["final_margin"] == 157_516 and r["candidate_a"] == "kast"
    assert r["wrong_calls"] == []
    cuts = r["cuts"]
    assert isinstance(cuts, list) and len(cuts) == 15
    # Boric leads the count until the late block: the raw margin is negative up to 93%
    assert all(c["raw_margin"] < 0 for c in cuts if c["pct_counted"] < 93.5)
    # the eventual winner is never ruled out
    assert min(c["p_a"] for c in cuts) > 0.01, [round(c["p_a"], 3) for c in cuts]
