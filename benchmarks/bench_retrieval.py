"""Retrieval benchmark: recall@1/3 and MRR per language on SQLite (FTS5) and PostgreSQL.

Loads the starter knowledge base (sop_definitions/knowledge) into a fresh SQLite file and a
fresh PostgreSQL schema, runs the labelled questions of tests/knowledge/eval_questions.yaml
and prints the figures plus the mean query latency. PostgreSQL is skipped (with the reason)
when 127.0.0.1:5432 is unreachable. Run: ``.venv/bin/python benchmarks/bench_retrieval.py``
(``--misses`` also lists the questions not answered in the top 3).
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


def main() -> None:
    show = "--misses" in sys.argv
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/bench_kb.db")
        run("SQLite FTS5 (bm25, Snowball stems)", engine, show)
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
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main()
