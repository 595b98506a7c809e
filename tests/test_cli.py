"""The ``returnflow`` command: ``demo`` runs the seed flows, ``diagram`` draws the chart."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from returnflow import TABLE
from returnflow.cli import main
from returnflow.demo.scenarios import SCENARIOS

ALL_STATES = (*TABLE.lifecycle_states, *TABLE.exchange_states)


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out, err=out)  # results and messages, in order
    return code, out.getvalue()


def test_demo_runs_every_scenario_and_prints_their_timelines() -> None:
    code, output = run("demo")

    assert code == 0
    for scenario in SCENARIOS:
        assert f"=== {scenario.title} [{scenario.name}]" in output
    for shown in ("closed", "released", "exchange_cancelled", "needs_review", "reset"):
        assert re.search(rf"\b{shown}\b", output), shown
    assert "Shopify CLOSED" in output
    imported = [s for s in SCENARIOS if s.name == "loop-xoro-import"]  # ids loop-<Loop's id>
    assert output.count("\nreturn R0001 (order 1001): ") == len(SCENARIOS) - len(imported)
    assert "\nreturn loop-52393555 (order 1001): closed / released" in output
    assert output.splitlines()[-2] == f"{len(SCENARIOS)} scenario(s) ran; inspect one with:"
    assert output.splitlines()[-1].startswith("  returnflow inspect --db ")


def test_demo_runs_only_the_scenarios_named() -> None:
    code, output = run("demo", "helpdesk-auto", "clickpost-rto")

    assert code == 0
    assert re.findall(r"^=== .* \[(.+)\]$", output, re.MULTILINE) == [
        "helpdesk-auto",
        "clickpost-rto",
    ]
    assert output.splitlines()[-2] == "2 scenario(s) ran; inspect one with:"
    assert output.splitlines()[-1].startswith("  returnflow inspect --db ")


def test_demo_shows_an_instant_exchange_released_on_its_authorization_then_voided(
    tmp_path: Path,
) -> None:
    code, output = run("demo", "--db", str(tmp_path / "returns.db"), "instant-exchange")

    assert code == 0
    assert "\nreturn R0001 (order 1001): closed / released, Shopify CLOSED" in output
    steps = [
        "hand_in ",
        "payments.authorize 25.00 EUR: done",
        "release_exchange ",
        "why=instant exchange: payment authorized",
        "receive ",
        "payments.void the authorization: done",
        "authorization_voided ",
    ]
    at = {step: output.find(step) for step in steps}
    assert -1 not in at.values(), at
    assert list(at.values()) == sorted(at.values()), at
    assert "payments.capture" not in output
    assert "payments.authorize, payments.void\n" in output  # the port calls, in order


def test_demo_of_an_unknown_scenario_fails_and_names_the_choices() -> None:
    code, output = run("demo", "no-such")

    assert code == 2
    assert "no such scenario: no-such" in output
    for scenario in SCENARIOS:
        assert scenario.name in output
    assert "===" not in output


def test_mermaid_diagram_draws_every_state_of_both_regions() -> None:
    code, output = run("diagram", "--format", "mermaid")

    assert code == 0
    assert output.startswith("stateDiagram-v2")
    for state in ALL_STATES:
        assert re.search(rf"\bas {state}$", output, re.MULTILINE), state
    assert run("diagram") == (0, output)  # mermaid is the default


needs_graphviz = pytest.mark.skipif(
    shutil.which("dot") is None and not os.environ.get("CI"),
    reason="Graphviz (dot) is not installed",
)


@needs_graphviz
def test_svg_diagram_draws_every_state_and_transition_with_graphviz() -> None:
    code, output = run("diagram", "--format", "svg")

    assert code == 0
    assert output.startswith("<?xml")
    assert output.rstrip().endswith("</svg>")
    titles = set(re.findall(r"<title>([^<]*)</title>", output.replace("&#45;&gt;", "->")))
    for state in ALL_STATES:
        assert state in titles, state
    for rows in (TABLE.lifecycle, TABLE.exchange):
        for state, row in rows.items():
            for target in row.values():
                assert f"{state}->{target}" in titles, (state, target)


@needs_graphviz
def test_png_diagram_is_written_to_a_file_or_to_a_binary_stdout(tmp_path: Path) -> None:
    target = tmp_path / "chart.png"
    assert run("diagram", "--format", "png", "--output", str(target)) == (0, "")
    assert target.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert run("diagram", "--format", "png") == (
        2,
        "returnflow diagram: --format png is binary: pass --output FILE\n",
    )
    done = subprocess.run(
        [sys.executable, "-m", "returnflow.cli", "diagram", "--format", "png"],
        capture_output=True,
        check=True,
    )
    assert done.stdout == target.read_bytes()


def test_dot_diagram_is_graphviz_source_and_needs_no_graphviz(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", "")  # no dot program to find
    code, output = run("diagram", "--format", "dot")

    assert code == 0
    assert output.startswith("digraph ReturnChart {")
    for state in ALL_STATES:
        assert re.search(rf"^{state} \[", output, re.MULTILINE), state


def test_a_picture_without_graphviz_is_a_clear_error_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", "")
    target = tmp_path / "chart.svg"
    code, output = run("diagram", "--format", "svg", "--output", str(target))

    assert code == 2
    assert output == (
        "returnflow diagram: format='svg': needs Graphviz's dot program on PATH "
        "(apt-get install graphviz, or brew install graphviz)\n"
    )
    assert not target.exists()


def test_dot_without_pydot_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pydot", None)  # as if not installed
    code, output = run("diagram", "--format", "dot")

    assert code == 2
    assert output.startswith("returnflow diagram: format='dot': needs pydot")
    assert "pip install 'returnflow[diagram]'" in output


def test_diagram_writes_text_formats_to_a_file(tmp_path: Path) -> None:
    target = tmp_path / "chart.mmd"
    assert run("diagram", "--format", "mermaid", "-o", str(target)) == (0, "")
    assert target.read_text(encoding="utf-8").startswith("stateDiagram-v2")


def test_a_file_that_cannot_be_written_is_a_clear_error(tmp_path: Path) -> None:
    target = tmp_path / "no-such-folder" / "chart.mmd"
    code, output = run("diagram", "--format", "mermaid", "--output", str(target))

    assert code == 2
    assert output.startswith(f"returnflow diagram: cannot write {target}: ")
    assert "No such file or directory" in output


def test_table_diagram_prints_one_line_per_transition(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diagram", "--format", "table"]) == 0  # to stdout without ``out``

    lines = capsys.readouterr().out.splitlines()
    expected = {
        (region, state, event, target)
        for region, rows in (("lifecycle", TABLE.lifecycle), ("exchange", TABLE.exchange))
        for state, row in rows.items()
        for event, target in row.items()
    }
    parsed = [re.fullmatch(r"(\w+) +(\w+) --(\w+)--> (\w+)", text) for text in lines]
    assert all(parsed), lines
    assert len(lines) == len(expected)
    assert {match.groups() for match in parsed if match} == expected


def test_a_missing_or_unknown_command_is_a_usage_error_of_one_line() -> None:
    for argv in ([], ["dance"], ["diagram", "--format", "jpeg"]):
        out, err = io.StringIO(), io.StringIO()
        assert main(argv, out=out, err=err) == 2
        assert out.getvalue() == ""
        assert err.getvalue().startswith("returnflow")
        assert err.getvalue().endswith("--help)\n")
        assert len(err.getvalue().splitlines()) == 1, err.getvalue()


def test_the_module_runs_as_a_program() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "returnflow.cli", "demo", "helpdesk-auto"],
        capture_output=True,
        text=True,
        check=True,
    )

    assert "[helpdesk-auto]" in done.stdout
    assert "Shopify CLOSED" in done.stdout
    assert done.stdout.splitlines()[-2] == "1 scenario(s) ran; inspect one with:"
    assert done.stdout.splitlines()[-1].startswith("  returnflow inspect --db ")
    assert done.stderr == ""


def test_the_console_script_runs() -> None:
    script = shutil.which("returnflow")
    if script is None:
        pytest.skip("the returnflow console script is not on PATH")

    done = subprocess.run(
        [script, "demo", "helpdesk-auto"], capture_output=True, text=True, check=True
    )

    assert "[helpdesk-auto]" in done.stdout
    assert done.stdout.splitlines()[-2] == "1 scenario(s) ran; inspect one with:"
    assert done.stdout.splitlines()[-1].startswith("  returnflow inspect --db ")
