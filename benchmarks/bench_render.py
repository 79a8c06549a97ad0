"""Render time of the generated 2,000-node SOP (overview + every section page), and of the
library's SOPs, with the real Graphviz ``dot``. Prints the figures."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from engine.render import diagram_of
from engine.render.bpmn import to_bpmn
from engine.render.dot import render
from engine.render.paging import paginate
from engine.sop import compile_text, load_library
from engine.sop.generate import generate_sop


def main() -> None:
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        compiled = compile_text(generate_sop(2000), file="generated.yaml")
        t = time.perf_counter()
        overview, pages = paginate(diagram_of(compiled))
        render(overview, out / "overview.svg")
        t_overview = time.perf_counter() - t
        for i, page in enumerate(pages):
            render(page, out / f"p{i}.svg")
        t_all = time.perf_counter() - t
        print(f"2,000-node SOP ({len(compiled.spec.nodes)} nodes): overview {t_overview:.2f} s; "
              f"overview + {len(pages)} section pages {t_all:.2f} s")
        lib = load_library(root / "sop_definitions")
        for sop_id, c in sorted(lib.sops.items()):
            t = time.perf_counter()
            render(diagram_of(c, lib.levels), out / f"{sop_id}.svg")
            svg = time.perf_counter() - t
            t = time.perf_counter()
            to_bpmn(c, lib.levels)
            print(f"{sop_id:<24} {len(c.spec.nodes):>3} nodes: svg {svg * 1000:6.0f} ms, "
                  f"bpmn {(time.perf_counter() - t) * 1000:6.0f} ms")


if __name__ == "__main__":
    main()
