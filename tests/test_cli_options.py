"""Every command refuses a bad value of every option: exit 2, a message, never a traceback.

The commands and their options are read from the typer app itself (new commands and new
options are covered without editing this file): a number outside its declared range, a
control character, and for text options a value that is not valid for what the option
names (a snapshot or contest the store does not hold, a choice that does not exist, a file
that does not exist, a file that cannot be written). A new text option whose value is free
text must be listed in ``FREE_TEXT``; otherwise it must refuse ``zz-no-valido``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from escrutinio.cli import LAZY_COMMANDS, app

runner = CliRunner()

ROOT = typer.main.get_command(app)
ROOT.load_all()  # type: ignore[attr-defined]


def walk(cmd: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    if hasattr(cmd, "commands"):
        for name in sorted(cmd.commands):
            yield from walk(cmd.commands[name], (*path, name))
    else:
        yield path, cmd


COMMANDS = list(walk(ROOT))

#: text options whose value is free text (only control characters are refused in them)
FREE_TEXT = {
    ("accounts", "add", "name"),  # an observer's name
    # an observer's scope: acta ids, polling places, area prefixes of any election
    ("accounts", "add", "--acta"), ("accounts", "add", "--place"), ("accounts", "add", "--area"),
    ("quickcount", "--seed"), ("audit", "sample", "--seed"),  # public seeds: any text
    ("audit", "sample", "--audit-id"),  # sample names a new audit: any name
    ("serve", "--host"),  # a host name or address, checked when the server binds
}
#: options naming something the command reads
INPUT_PATHS = {"sources", "copies", "--copy-codes", "--roll", "--request", "--urban-file",
               "--manifest", "--scope-file", "proof_file", "counts", "--reports", "config",
               "--replay", "--data-dir", "--status-file"}
OUTPUT_PATHS = {"--svg", "--csv", "--image", "--generate", "--manifest-out", "directory",
                "--log-file", "folder"}
URLS = {"--base-url", "--site-url", "--url", "--mirror"}
#: commands that write their output path (--status-file is read by watch-status)
OUTPUT_IN = {("watch", "--status-file")}


def opt_name(param: Any) -> str:
    return param.opts[0] if param.opts and param.opts[0].startswith("-") else param.name


def numeric(param: Any) -> bool:
    ann = param.type_descriptor.annotation
    return ann in (int, float) or (getattr(ann, "__args__", None) is not None
                                   and any(a in (int, float) for a in ann.__args__))


def bad_values(path: tuple[str, ...], param: Any, blocker: Path) -> list[str]:
    name = opt_name(param)
    if numeric(param):
        info = param.type_descriptor.parameter_info
        if info.min is not None:
            return [str(info.min - 1)]
        if info.max is not None:
            return [str(info.max + 1)]
        return []  # checked by test_every_number_declares_its_range
    control = "zz\u202eoculto"
    key = (*path, name)
    if key in FREE_TEXT:
        return [control]
    if key in OUTPUT_IN or (name in OUTPUT_PATHS and key not in OUTPUT_IN):
        return [control, str(blocker / "sub" / "zz-salida")]
    if name in INPUT_PATHS:
        return [control, "/no/existe/zz-entrada"]
    if name in URLS:
        return [control, "zz no es url"]
    return [control, "zz-no-valido"]


_names = iter(range(10**6))


def required_values(path: tuple[str, ...], ctx: dict[str, Any]) -> dict[str, str]:
    """Valid values for required parameters (so that the bad option is what fails)."""
    return {
        "sources": ctx["source"], "older": "first", "config": ctx["config"],
        "folder": str(ctx["tmp"] / "export"), "directory": str(ctx["tmp"] / "site"),
        "proof_file": ctx["source"], "--audit-id": ctx["audit"], "counts": ctx["source"],
        "name": f"obs{next(_names)}", "account": "ana", "token_id": "zz",
    }


def base_args(path: tuple[str, ...], ctx: dict[str, Any]) -> dict[str, list[str]]:
    """Options (and arguments, key "") a command needs to get as far as using the
    option under test; dropped when that option is the one under test."""
    contest = "pe-2021-presidencial-2v"
    return {
        ("pvt",): {"": [ctx["copies"]]},
        ("quickcount",): {"--seed": ["--seed", "dados-2021"]},
        ("audit", "sample"): {"--seed": ["--seed", "123"],
                              "--audit-id": ["--audit-id", f"new{next(_names)}"]},
        ("prove",): {"acta": [ctx["acta"]]},
        ("project",): {"--baseline-contest": ["--baseline-contest", contest]},
        ("replay",): {"--baseline-contest": ["--baseline-contest", contest]},
    }.get(path, {})


#: base arguments that cannot go with the option under test
EXCLUSIVE = {("prove", "--submission"): {"acta"}}


def invocation(path: tuple[str, ...], cmd: Any, target: Any, value: str,
               ctx: dict[str, Any]) -> list[str]:
    fill = required_values(path, ctx)
    args: list[str] = ["--db", ctx["db"], *path]
    positional: list[str] = []
    base = {k: v for k, v in base_args(path, ctx).items()
            if k not in EXCLUSIVE.get((*path, opt_name(target)), set())}
    for key, extra in base.items():
        if key.startswith("-") and key != opt_name(target):
            args.extend(extra)
    for p in cmd.params:
        if p.name == "help":
            continue
        is_arg = p.param_type_name == "argument"
        if p is target:
            (positional if is_arg else args).extend([value] if is_arg else [p.opts[0], value])
        elif not is_arg and opt_name(p) in base:
            continue  # given by the base arguments above
        elif p.required or (is_arg and opt_name(p) in base):
            v = (base.get(opt_name(p)) or [None])[0] or fill.get(opt_name(p)) \
                or fill.get(p.name) or "x"
            (positional if is_arg else args).extend([v] if is_arg else [p.opts[0], v])
        elif is_arg and "" in base and p.name == "copies":
            positional.extend(base[""])
    return [*args, *positional]


CASES = [
    pytest.param(path, opt_name(p), id=f"{' '.join(path)} {opt_name(p)}")
    for path, cmd in COMMANDS for p in cmd.params
    if p.name != "help" and not getattr(p, "is_flag", False)
]


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("options")
    source = data_dir / "peru-2021-runoff" / "actas" / "actas_electorales_ronderos.pe.csv.gz"
    db = tmp / "s.duckdb"
    res = runner.invoke(app, ["--db", str(db), "ingest", str(source), "--as-of",
                              "2021-06-15T12:00:00-05:00", "--json"])
    assert res.exit_code == 0, res.output
    blocker = tmp / "a-file"
    blocker.write_text("not a folder")
    config = Path(__file__).parents[1] / "src/escrutinio/live/examples/onpe2021-runoff.toml"
    copies = tmp / "copies.csv"
    res = runner.invoke(app, ["--db", str(db), "pvt", "--generate", str(copies), "--coverage",
                              "0.01", "--json"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["--db", str(db), "audit", "sample", "--audit-id", "a1", "--seed",
                              "1", "--size", "5", "--json"])
    assert res.exit_code == 0, res.output
    from escrutinio.store.duckdb_store import DuckDBStore

    with DuckDBStore(db, read_only=True) as store:
        acta = str(store.load_actas(store.snapshot("latest").snapshot_id)["acta_id"][0])
    return {"tmp": tmp, "db": str(db), "source": str(source), "blocker": blocker,
            "config": str(config), "copies": str(copies), "audit": "a1",
            "acta": acta}


class _Timeout(Exception):
    pass


@pytest.fixture(autouse=True)
def _restore_environ() -> Iterator[None]:
    """Commands such as ``serve`` set environment variables for their workers before a
    later check refuses a value: later tests in this process must not see them."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def _alarm(signum: int, frame: Any) -> None:
    raise _Timeout


@pytest.mark.parametrize(("path", "option"), CASES)
def test_bad_option_value_exits_2(path: tuple[str, ...], option: str,
                                  ctx: dict[str, Any]) -> None:
    cmd = dict(COMMANDS)[path]
    target = next(p for p in cmd.params if opt_name(p) == option)
    values = bad_values(path, target, ctx["blocker"])
    if not values:
        pytest.skip("numbers: see test_every_number_declares_its_range")
    for value in values:
        args = invocation(path, cmd, target, value, ctx)
        old = signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(20)  # a command that accepts the value may start serving: stop it
        try:
            res = runner.invoke(app, args)
        except _Timeout:
            pytest.fail(f"{args}: accepted the value and kept running")
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)
        output = res.output
        assert "Traceback" not in output, output
        assert res.exception is None or isinstance(res.exception, SystemExit), \
            f"{args}: {res.exception!r}"
        assert res.exit_code == 2, f"{args}: exit {res.exit_code}\n{output}"
        # the message names the option or shows the value (escaped if it holds a control)
        shown = value.encode("unicode_escape").decode()
        assert option.lstrip("-") in output or value in output or shown in output \
            or option.upper() in output, f"{args}\n{output}"
    shutil.rmtree(ctx["tmp"] / "site", ignore_errors=True)


def test_every_number_declares_its_range() -> None:
    """A number without a declared range is a number nobody checked (--sims -5)."""
    loose = [f"{' '.join(path)} {opt_name(p)}" for path, cmd in COMMANDS for p in cmd.params
             if numeric(p) and p.type_descriptor.parameter_info.min is None
             and p.type_descriptor.parameter_info.max is None]
    assert not loose, f"declare min= or max= on: {loose}"


def test_help_lists_every_command_without_importing_it() -> None:
    """``--help`` reads LAZY_COMMANDS; this table and the modules must agree."""
    real = {path[0] for path, _ in COMMANDS}
    core = {"ingest", "snapshots", "status", "history", "datasets"}
    assert real - core == set(LAZY_COMMANDS), "update LAZY_COMMANDS in escrutinio/cli.py"
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0
    for name in real:
        assert name in res.output


def test_help_is_light() -> None:
    """Importing the CLI and printing --help loads no analysis, polars or numpy."""
    import subprocess
    import sys

    code = ("import sys\nfrom escrutinio.cli import app\n"
            "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = sorted(m for m in ('polars', 'numpy', 'duckdb', 'escrutinio.service', "
            "'escrutinio.projection', 'escrutinio.forensics') if m in sys.modules)\n"
            "print('HEAVY', heavy, file=sys.stderr)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=False)
    assert "HEAVY []" in res.stderr, res.stderr


def test_json_commands_do_not_load_rich(tmp_path: Path) -> None:
    """The consoles are made on first use (commands.common.LazyConsole): ``ingest --json``
    and ``status --json`` print JSON only and never import rich (~17 ms); a command that
    prints through the console still prints (and an error without --json too)."""
    import subprocess
    import sys

    code = ("import sys\nfrom escrutinio.cli import app\n"
            "try:\n    app(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print('RICH', 'rich' in sys.modules, file=sys.stderr)\n")
    csv = tmp_path / "actas.csv"
    csv.write_text("acta_id,area1_code,status,electors,cast,blank,null,challenged,v_a,v_b\n"
                   "000001,01,counted,300,200,5,5,0,100,90\n", encoding="utf-8")
    (tmp_path / "actas.csv.contest.json").write_text(json.dumps({
        "contest": {"id": "t-2026", "name": "t", "kind": "runoff", "country": "AR",
                    "date": "2026-01-01", "candidates": [{"code": "a", "name": "A"},
                                                         {"code": "b", "name": "B"}]},
        "as_of": "2026-01-02T00:00:00Z"}), encoding="utf-8")
    db = str(tmp_path / "s.duckdb")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", code, "--db", db, *args],
                              capture_output=True, text=True, timeout=120, check=False)

    res = run("ingest", str(csv), "--json")
    assert json.loads(res.stdout)["snapshots"][0]["n_rows"] == 1, res.stdout
    assert "RICH False" in res.stderr, res.stderr
    res = run("status", "--json")
    assert json.loads(res.stdout)["contest_id"] == "t-2026"
    assert "RICH False" in res.stderr, res.stderr
    res = run("status")
    assert "RICH True" in res.stderr and "t-2026" in res.stdout, res.stdout
    res = run("--lang", "en", "history", "--contest", "no-such-contest")
    assert "RICH True" in res.stderr and "Error" in res.stderr, res.stderr


def test_no_traceback_for_an_unexpected_error(tmp_path: Path) -> None:
    """The last line of defence: a store that is not a database gives one line, exit 1
    or 2, and no traceback (the console script runs App.__call__)."""
    import subprocess
    import sys

    bogus = tmp_path / "not-a-db.duckdb"
    bogus.write_bytes(b"\x00garbage" * 100)
    res = subprocess.run([sys.executable, "-c", "from escrutinio.cli import app; app()",
                          "--db", str(bogus), "status", "--json"], capture_output=True,
                         text=True, timeout=120, check=False)
    assert "Traceback" not in res.stderr + res.stdout, res.stderr
    assert res.returncode in (1, 2)
    if res.stdout.strip():
        json.loads(res.stdout)


@pytest.mark.parametrize(("args", "option"), [
    (["--lang", "fr", "snapshots"], "--lang"),
    (["--db", "/", "snapshots"], "--db"),
    (["--db", "zz\u202e.duckdb", "snapshots"], "argument"),
])
def test_bad_global_option_exits_2(args: list[str], option: str) -> None:
    res = runner.invoke(app, args)
    assert res.exit_code == 2 and option in res.output, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
