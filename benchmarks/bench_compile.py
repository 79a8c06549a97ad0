"""Benchmark of the SOP pipeline: validate + compile a generated SOP, hostile inputs, cold CLI.

Prints figures (best of several runs, wall time) -- never asserts. Targets (DESIGN.md):
validate + compile a 2,000-node SOP < 1 s; ``careflow validate`` on one SOP < 0.5 s cold;
hostile YAML rejected in < 100 ms.

Usage: ``.venv/bin/python benchmarks/bench_compile.py [NODES]``
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.errors import SopErrors  # noqa: E402
from engine.sop import compile_sop, compile_text  # noqa: E402
from engine.sop.build import build_document  # noqa: E402
from engine.sop.compiler import compile_spec  # noqa: E402
from engine.sop.generate import generate_sop  # noqa: E402
from engine.sop.loader import load_yaml_text  # noqa: E402
from engine.sop.pipeline import iter_semantic_errors  # noqa: E402
from engine.sop.schema import iter_schema_errors  # noqa: E402

ALIAS_BOMB = (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
    "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\ni: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n"
)
HOSTILE = {
    "alias bomb (%d bytes)" % len(ALIAS_BOMB): ALIAS_BOMB,
    "30,000 nested [": "[" * 30_000,
    "10 MB file": "a: b\n" * 2_000_000,
    "duplicate keys x1000": "".join(f"k{i % 10}: v\n" for i in range(1000)),
    "400,000 nested '- '": "- " * 400_000 + "x",
}


def best(fn: Callable[[], Any], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def stages(text: str, clock: Callable[[], float] = time.perf_counter) -> dict[str, float]:
    out: dict[str, float] = {}
    t0 = clock()
    doc = load_yaml_text(text, "generated.yaml")
    t1 = clock()
    errors = list(iter_schema_errors(doc))
    assert not errors, errors[:3]
    t2 = clock()
    spec = build_document(doc)
    t3 = clock()
    compiled = compile_spec(spec)
    t4 = clock()
    semantic = [e for e in iter_semantic_errors(compiled) if e.severity == "error"]
    assert not semantic, semantic[:3]
    t5 = clock()
    out.update(load=t1 - t0, schema=t2 - t1, build=t3 - t2, compile=t4 - t3, checks=t5 - t4,
               total=t5 - t0)
    return out


def main() -> None:
    nodes = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    text = generate_sop(nodes)
    compile_text(generate_sop(20))  # warm imports and schema caches
    spec_nodes = len(compile_text(text).spec.nodes)
    print(f"generated SOP: {spec_nodes} nodes, {len(text):,} bytes, {text.count(chr(10)):,} lines")
    for label, clock in (("wall", time.perf_counter), ("CPU", time.process_time)):
        runs = [stages(text, clock) for _ in range(5)]
        bests = {k: min(r[k] for r in runs) for k in runs[0]}
        print(f"validate + compile, best of 5, {label} (s): "
              + ", ".join(f"{k} {v:.3f}" for k, v in bests.items()))
    print(f"  -> {spec_nodes}-node SOP validate + compile: {bests['total']:.3f} s CPU (target < 1 s)")
    spec = compile_text(text).spec
    print(f"  compile_sop(spec) alone (graph + CEL + hash + checks): {best(lambda: compile_sop(spec), 3):.3f} s")
    for name, hostile in HOSTILE.items():
        def reject(h: str = hostile) -> None:
            try:
                load_yaml_text(h)
            except SopErrors:
                return
            raise AssertionError("accepted")

        print(f"hostile: {name}: rejected in {best(reject, 3) * 1000:.2f} ms (target < 100 ms)")
    cli = [str(ROOT / ".venv" / "bin" / "careflow"), "validate",
           str(ROOT / "sop_definitions" / "password_reset.yaml")]
    walls, cpus = [], []
    for _ in range(5):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(cli, capture_output=True, check=False, cwd=ROOT)
        walls.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    print(f"cold `careflow validate sop_definitions/password_reset.yaml`: wall best {min(walls):.3f} s, "
          f"median {sorted(walls)[2]:.3f} s; CPU best {min(cpus):.3f} s (target < 0.5 s wall)")
    print("  import cost of the cold run by package (cumulative, s): " + import_breakdown())
    print(f"machine load average: {' '.join(f'{x:.1f}' for x in __import__('os').getloadavg())}")


def import_breakdown() -> str:
    """Cumulative import time of the packages that dominate a cold `careflow validate`."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", str(ROOT / "cli.py"), "validate",
         str(ROOT / "sop_definitions" / "password_reset.yaml")],
        capture_output=True, text=True, check=False, cwd=ROOT)
    watch = ("typer", "pydantic", "networkx", "yaml", "jsonschema", "cel_expr_python", "engine.sla",
             "engine.sop", "engine.sop.checks", "engine.actions.registry", "sqlalchemy", "rich",
             "prefect")
    found: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        _, cumulative, name = (part.strip() for part in line[len("import time:"):].split("|"))
        if name in watch and cumulative.isdigit():
            found[name] = max(found.get(name, 0.0), int(cumulative) / 1e6)
    return ", ".join(f"{k} {v:.3f}" for k, v in sorted(found.items(), key=lambda kv: -kv[1]))


if __name__ == "__main__":
    main()
