"""Auditor views of an SOP: a diagram model, then renderers (Graphviz, BPMN 2.0, Mermaid),
a semantic diff and a plain-language document. Only ``dot.py`` imports graphviz."""

from __future__ import annotations

from engine.render.extract import diagram_of
from engine.render.model import Diagram, DiagramEdge, DiagramNode, Lane

__all__ = ["Diagram", "DiagramEdge", "DiagramNode", "Lane", "diagram_of"]
