"""Entry point of the ``careflow`` command; the commands live in engine.cli."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    """Run the careflow CLI with ``argv`` (default: the process arguments)."""
    from engine.cli import build_app

    args = argv if argv is not None else sys.argv[1:]
    app = build_app(args)
    app(args=args, prog_name="careflow")


if __name__ == "__main__":
    main()
