"""Entry point of the ``careflow`` command; the commands live in engine.cli."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    """Run the careflow CLI with ``argv`` (default: the process arguments)."""
    from engine.cli import build_app

    app = build_app()
    app(args=argv if argv is not None else sys.argv[1:], prog_name="careflow")


if __name__ == "__main__":
    main()
