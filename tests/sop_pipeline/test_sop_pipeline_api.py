"""Contract test: the public API of engine.sop is exported and complete."""

from __future__ import annotations

import importlib

import engine.sop

REQUIRED = {"load_document", "load_text", "compile_sop", "compile_text", "compile_file",
            "CompiledSop", "load_library", "iter_library_errors", "Library", "HANDLERS_NODE"}


def test_all_names_exist_and_the_required_api_is_exported() -> None:
    for name in engine.sop.__all__:
        assert hasattr(engine.sop, name), name
    assert set(engine.sop.__all__) >= REQUIRED


def test_every_pipeline_module_declares_all() -> None:
    for name in ("loader", "prescan", "schema", "schema_fast", "build", "compiler", "hashing",
                 "library", "pipeline", "generate"):
        module = importlib.import_module(f"engine.sop.{name}")
        assert module.__doc__ and module.__doc__.strip(), name
        for exported in module.__all__:
            assert hasattr(module, exported), f"{name}.{exported}"


def test_only_the_loader_imports_yaml() -> None:
    import ast
    from pathlib import Path

    root = Path(engine.sop.__file__).parent
    for path in root.glob("*.py"):
        tree = ast.parse(path.read_text())
        imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                    if isinstance(node, ast.Import) for alias in node.names}
        imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom)}
        if path.name not in ("loader.py",):
            assert "yaml" not in imported, path.name
        assert not imported & {"prefect", "sqlalchemy"}, path.name
