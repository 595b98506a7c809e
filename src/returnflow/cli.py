"""The ``returnflow`` command.

``returnflow demo`` runs every seed flow against in-process fakes and prints each return's
timeline; ``returnflow diagram --format mermaid`` prints the statechart from the code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO

from returnflow.lifecycle.chart import ReturnChart
from returnflow.lifecycle.table import TABLE

__all__ = ["main"]


def _demo(args: argparse.Namespace, out: TextIO) -> int:
    from returnflow._scenarios import SCENARIOS

    chosen = [s for s in SCENARIOS if not args.scenario or s.name in args.scenario]
    if not chosen:
        names = ", ".join(s.name for s in SCENARIOS)
        print(f"no such scenario: {', '.join(args.scenario)} (choose from {names})", file=out)
        return 2
    for scenario in chosen:
        harness, return_ids = scenario.run()
        print(f"\n=== {scenario.title} [{scenario.name}]", file=out)
        for return_id in return_ids:
            print(harness.service.render_timeline("demo-shop", return_id), file=out)
        calls = [
            f"{port}.{call.operation}"
            for port, fake in (
                ("commerce", harness.ports.commerce),
                ("warehouse", harness.ports.warehouse),
                ("carrier", harness.ports.carrier),
                ("payments", harness.ports.payments),
            )
            for call in fake.calls
            if call.operation not in ("get_order",)
        ]
        print(f"    port calls: {', '.join(calls) or 'none'}", file=out)
        print(f"    published: {', '.join(harness.ports.events.topics())}", file=out)
    print(f"\n{len(chosen)} scenario(s) ran.", file=out)
    return 0


def _diagram(args: argparse.Namespace, out: TextIO) -> int:
    if args.format == "mermaid":
        print(f"{ReturnChart:mermaid}", file=out)
    else:
        for state in TABLE.lifecycle_states:
            for event, target in sorted(TABLE.lifecycle[state].items()):
                print(f"lifecycle {state} --{event}--> {target}", file=out)
        for state in TABLE.exchange_states:
            for event, target in sorted(TABLE.exchange[state].items()):
                print(f"exchange  {state} --{event}--> {target}", file=out)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="returnflow", description="Returns and exchanges as an explicit state machine."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run every seed flow against fakes")
    demo.add_argument("scenario", nargs="*", help="run only these scenarios")
    demo.set_defaults(run=_demo)
    diagram = commands.add_parser("diagram", help="print the statechart")
    diagram.add_argument("--format", choices=["mermaid", "table"], default="mermaid")
    diagram.set_defaults(run=_diagram)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    args = _parser().parse_args(argv)
    stream = out if out is not None else sys.stdout
    code: int = args.run(args, stream)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
