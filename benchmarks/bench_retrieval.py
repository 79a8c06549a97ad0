"""Retrieval benchmark: recall@1/3 and MRR per language on SQLite (FTS5) and PostgreSQL.

Loads the starter knowledge base (sop_definitions/knowledge) into a fresh SQLite file and a
fresh PostgreSQL schema, runs the labelled questions of tests/knowledge/eval_questions.yaml
and prints the figures plus the mean query latency. PostgreSQL is skipped (with the reason)
when 127.0.0.1:5432 is unreachable. Run: ``.venv/bin/python benchmarks/bench_retrieval.py``
(``--misses`` also lists the questions not answered in the top 3; ``--scale N`` adds a
latency run on N synthetic articles -- variants of the starter articles for N product
models -- on both databases).
"""

from __future__ import annotations

import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, create_engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.knowledge import repo  # noqa: E402
from engine.knowledge.evaluate import (  # noqa: E402
    evaluate,
    load_eval_set,
    load_off_topic,
    threshold_table,
)
from engine.knowledge.files import load_article_folder  # noqa: E402
from engine.store.all_models import load_all  # noqa: E402
from engine.store.db import make_engine, sessions  # noqa: E402

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
EVAL = ROOT / "tests" / "knowledge" / "eval_questions.yaml"


def load(engine: Engine) -> float:
    meta = load_all().metadata
    meta.create_all(engine, tables=[t for t in meta.sorted_tables if t.name.startswith("kb_")])
    specs = load_article_folder(ROOT / "sop_definitions" / "knowledge")
    start = time.perf_counter()
    with sessions(engine)() as s, s.begin():
        repo.ensure_search_schema(s)
        repo.import_specs(s, specs, actor="bench", at=datetime.now(UTC))
    return time.perf_counter() - start


def run(name: str, engine: Engine, show_misses: bool) -> None:
    load_s = load(engine)
    questions = load_eval_set(EVAL)
    with sessions(engine)() as s:
        start = time.perf_counter()
        metrics = evaluate(s, questions)
        elapsed = time.perf_counter() - start
    print(f"\n{name}: {len(questions)} questions, import {load_s:.2f} s, "
          f"{1000 * elapsed / len(questions):.1f} ms/query")
    print(f"  {'slice':<5} {'n':>4} {'recall@1':>9} {'recall@3':>9} {'MRR':>7}")
    for lang, m in metrics.items():
        print(f"  {lang:<5} {m.questions:>4} {m.recall_at_1:>9.3f} {m.recall_at_3:>9.3f} "
              f"{m.mrr:>7.3f}")
    with sessions(engine)() as s:
        table = threshold_table(s, questions, load_off_topic(EVAL))
    print("  e-level (public articles) per confidence threshold:")
    print(f"  {'threshold':>9} {'answered right':>15} {'answered wrong':>15} {'off-topic answered':>19}")
    for row in table:
        print(f"  {row.threshold:>9.2f} {row.answered_correctly:>15.1%} {row.answered_wrongly:>15} "
              f"{row.off_topic_answered:>12} of {len(load_off_topic(EVAL))}")
    if show_misses:
        for lang, m in metrics.items():
            if lang != "all":
                for q, top in m.misses:
                    print(f"  miss [{lang}] {q!r} -> {list(top)}")


def synthetic(n: int) -> list:
    """``n`` article variants: each starter article for another product model."""
    import random
    from dataclasses import replace

    specs = load_article_folder(ROOT / "sop_definitions" / "knowledge")
    rng = random.Random(7)
    words = {s.language: " ".join(s.body for s in specs if s.language == s.language).split()
             for s in specs}
    out = []
    for i in range(n):
        base = specs[i % len(specs)]
        model = f"model X{i:05d}"
        extra = " ".join(rng.choice(words[base.language]) for _ in range(40))
        out.append(replace(base, id=f"{base.translation_of}-{i}.{base.language}",
                           translation_of=f"{base.translation_of}-{i}",
                           title=f"{base.title} ({model})",
                           body=f"{base.body}\n\nApplies to {model}. {extra}"))
    return out


def run_scale(name: str, engine: Engine, n: int) -> None:
    meta = load_all().metadata
    meta.create_all(engine, tables=[t for t in meta.sorted_tables if t.name.startswith("kb_")])
    specs = synthetic(n)
    start = time.perf_counter()
    with sessions(engine)() as s, s.begin():
        repo.ensure_search_schema(s)
        repo.import_specs(s, specs, actor="bench", at=datetime.now(UTC))
    load_s = time.perf_counter() - start
    questions = load_eval_set(EVAL)
    from engine.knowledge.search import StatsCache, search

    cache = StatsCache()
    with sessions(engine)() as s:
        start = time.perf_counter()
        search(s, "warm up", cache=cache)
        first = time.perf_counter() - start
        times = []
        for q in questions:
            t0 = time.perf_counter()
            search(s, q.question, limit=5, cache=cache)
            times.append(time.perf_counter() - t0)
    times.sort()
    print(f"\n{name}, {n} articles: import {load_s:.1f} s ({1000 * load_s / n:.2f} ms/article), "
          f"first query (loads corpus stats) {1000 * first:.0f} ms, then mean "
          f"{1000 * sum(times) / len(times):.1f} ms, p95 {1000 * times[int(0.95 * len(times))]:.1f} ms")


def main() -> None:
    show = "--misses" in sys.argv
    scale = int(sys.argv[sys.argv.index("--scale") + 1]) if "--scale" in sys.argv else 0
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/bench_kb.db")
        run("SQLite FTS5 (bm25, Snowball stems)", engine, show)
        engine.dispose()
        if scale:
            engine = make_engine(f"sqlite:///{tmp}/bench_scale.db")
            run_scale("SQLite FTS5", engine, scale)
            engine.dispose()
    schema = f"kb_bench_{uuid.uuid4().hex[:8]}"
    try:
        admin = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # noqa: BLE001 - report and skip
        print(f"\nPostgreSQL skipped: {type(exc).__name__}: {exc}")
        return
    try:
        engine = make_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
        run("PostgreSQL full text (tsvector per language, ts_rank)", engine, show)
        engine.dispose()
        if scale:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            engine = make_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
            run_scale("PostgreSQL", engine, scale)
            engine.dispose()
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main()
