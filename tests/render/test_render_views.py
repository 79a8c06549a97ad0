"""Auditor views: diagrams with swimlanes, BPMN 2.0 that validates and parses, Mermaid, the
semantic diff and the plain-language document -- on the real SOP library and real Graphviz."""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import SpiffWorkflow
from lxml import etree
from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnParser
from typer.testing import CliRunner

from engine.cli import build_app
from engine.render import diagram_of
from engine.render.bpmn import to_bpmn
from engine.render.diff import diff_sops
from engine.render.document import to_html
from engine.render.dot import render, to_dot
from engine.render.mermaid import to_mermaid
from engine.render.paging import paginate
from engine.sop import compile_text, load_library
from engine.sop.generate import generate_sop

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).parent
LIB = load_library(ROOT / "sop_definitions")
SOPS = sorted(LIB.sops)
XSD = etree.XMLSchema(etree.parse(str(Path(SpiffWorkflow.__file__).parent
                                      / "bpmn/parser/schema/BPMN20.xsd")))
MAGIC = {"svg": b"<?xml", "png": b"\x89PNG", "pdf": b"%PDF"}
BPMN = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
DI = "{http://www.omg.org/spec/BPMN/20100524/DI}"

pytestmark = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' not installed")


@pytest.mark.parametrize("sop_id", SOPS)
@pytest.mark.parametrize("fmt", ["svg", "png", "pdf"])
def test_every_library_sop_renders(tmp_path: Path, sop_id: str, fmt: str) -> None:
    out = render(diagram_of(LIB.sops[sop_id], LIB.levels), tmp_path / f"{sop_id}.{fmt}")
    assert out.read_bytes().startswith(MAGIC[fmt])
    assert out.stat().st_size > 1000


def test_dot_source_is_stable_golden() -> None:
    """The DOT of a fixed SOP is byte-for-byte the reviewed golden file."""
    compiled = compile_text((HERE / "golden_sop.yaml").read_text(), file="golden_sop.yaml")
    dot = to_dot(diagram_of(compiled, LIB.levels))
    golden = HERE / "golden_sop.dot"
    if not golden.exists():  # first run writes it for review; CI always has it
        golden.write_text(dot)
    assert dot == golden.read_text()


def test_diagram_has_a_lane_per_level_and_legend_and_footer() -> None:
    compiled = LIB.sops["password_reset"]
    dot = to_dot(diagram_of(compiled, LIB.levels))
    for level in ("e", "L1", "L2", "specialist"):
        assert f'subgraph "cluster_lane_{level}"' in dot
    assert "cluster_legend" in dot
    assert compiled.hash[:16] in dot
    assert 'label="verified"' in dot  # outcome labels on edges


@pytest.mark.parametrize("sop_id", SOPS)
def test_bpmn_validates_has_di_for_everything_and_parses_in_spiffworkflow(sop_id: str) -> None:
    xml = to_bpmn(LIB.sops[sop_id], LIB.levels)
    doc = etree.fromstring(xml.encode())
    assert XSD.validate(doc), XSD.error_log
    process = doc.find(f"{BPMN}process")
    flow_nodes = [el.get("id") for el in process
                  if el.tag.removeprefix(BPMN) not in ("laneSet", "sequenceFlow", "textAnnotation",
                                                      "association", "documentation")]
    flows = [el.get("id") for el in process.findall(f"{BPMN}sequenceFlow")]
    shapes = {el.get("bpmnElement") for el in doc.iter(f"{DI}BPMNShape")}
    edges = {el.get("bpmnElement") for el in doc.iter(f"{DI}BPMNEdge")}
    assert set(flow_nodes) <= shapes
    assert set(flows) <= edges
    lanes = {lane.get("name") for lane in doc.iter(f"{BPMN}lane")}
    assert any("Level 1" in (n or "") or "level" in (n or "").lower() for n in lanes)
    parser = BpmnParser()
    parser.add_bpmn_xml(etree.ElementTree(doc), filename=f"{sop_id}.bpmn")
    spec = parser.get_spec(f"Process_{sop_id}")
    assert len(spec.task_specs) >= len(LIB.sops[sop_id].spec.nodes)


def test_mermaid_lists_every_node_in_lanes() -> None:
    d = diagram_of(LIB.sops["warranty_claim"], LIB.levels)
    text = to_mermaid(d)
    assert text.startswith("flowchart LR")
    for n in d.nodes:
        assert re.search(rf"\bn_{re.escape(n.id)}\b", text)
    assert "subgraph" in text


def _reordered(text: str) -> str:
    """The same SOP with its nodes in reverse order and comments dropped."""
    import yaml

    class Yaml12Bools(yaml.SafeLoader):
        """SafeLoader without the YAML 1.1 'on/off/yes/no' booleans (as careflow reads it)."""

    Yaml12Bools.yaml_implicit_resolvers = {
        k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
        for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    Yaml12Bools.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile("^(?:true|false)$"),
                                      list("tf"))
    doc = yaml.load(text, Loader=Yaml12Bools)  # noqa: S506 -- a SafeLoader subclass
    doc["nodes"] = dict(reversed(list(doc["nodes"].items())))
    return yaml.safe_dump({k: doc[k] for k in reversed(list(doc))}, sort_keys=False)


def test_diff_reports_no_change_for_a_pure_reordering() -> None:
    text = (ROOT / "sop_definitions/password_reset.yaml").read_text()
    a = compile_text(text, file="a.yaml").spec
    b = compile_text(_reordered(text), file="b.yaml").spec
    assert diff_sops(a, b) == []


def test_diff_reports_added_removed_retargeted_and_condition_changes() -> None:
    text = (ROOT / "sop_definitions/password_reset.yaml").read_text()
    changed = (text.replace('when: intent == "self_service_reset"',
                            'when: intent == "self_service_reset" && customer_tier != "gold"')
               .replace("after: 4h, calendar: office_nl", "after: 2h, calendar: office_nl"))
    a = compile_text(text, file="a.yaml").spec
    b = compile_text(changed, file="b.yaml").spec
    changes = {(c.kind, c.subject) for c in diff_sops(a, b)}
    assert ("node_changed", "route") in changes
    assert ("node_changed", "verify_identity") in changes
    nodes = dict(b.nodes)
    nodes.pop("vendor_fix")
    c = replace(b, nodes=nodes)
    kinds = {(ch.kind, ch.subject) for ch in diff_sops(b, c)}
    assert ("node_removed", "vendor_fix") in kinds
    assert any(k == "edge_removed" for k, _ in kinds)


def test_diff_cli_exit_codes_and_highlighted_render(tmp_path: Path) -> None:
    src = ROOT / "sop_definitions/password_reset.yaml"
    new = tmp_path / "new.yaml"
    new.write_text(src.read_text().replace("max_attempts: 5", "max_attempts: 7"))
    runner = CliRunner()
    same = runner.invoke(build_app(), ["diff", str(src), str(src)])
    assert same.exit_code == 0 and "no semantic change" in same.output
    out = tmp_path / "d.svg"
    diff = runner.invoke(build_app(), ["diff", str(src), str(new), "--render", str(out),
                                       "--sops", str(ROOT / "sop_definitions")])
    assert diff.exit_code == 1
    assert "send_reset_link" in diff.output
    assert "#ef6c00" in out.read_text()  # the changed node is highlighted


def test_document_describes_every_step_and_escapes_text() -> None:
    compiled = LIB.sops["complaint_handling"]
    page = to_html(compiled, LIB.levels, svg="<svg></svg>")
    for node in compiled.spec.nodes.values():
        assert f"id='n-{node.id}'" in page
    assert compiled.hash in page
    hostile = compile_text((ROOT / "sop_definitions/password_reset.yaml").read_text()
                           .replace("title: Verify the customer's identity",
                                    "title: \"<script>alert(1)</script>\""), file="x.yaml")
    assert "<script>alert" not in to_html(hostile)


def test_render_cli_writes_every_format(tmp_path: Path) -> None:
    runner = CliRunner()
    src = str(ROOT / "sop_definitions/billing_question.yaml")
    for suffix in ("svg", "png", "pdf", "dot", "bpmn", "md"):
        out = tmp_path / f"b.{suffix}"
        result = runner.invoke(build_app(), ["render", src, "-o", str(out)])
        assert result.exit_code == 0, result.output
        assert out.stat().st_size > 200
    bad = runner.invoke(build_app(), ["render", src, "-o", str(tmp_path / "b.gif")])
    assert bad.exit_code == 2 and "unknown format" in bad.output


def test_large_generated_sop_renders_as_overview_and_pages(tmp_path: Path) -> None:
    compiled = compile_text(generate_sop(2000), file="generated.yaml")
    overview, pages = paginate(diagram_of(compiled))
    assert len(pages) > 5 and len(overview.nodes) == len(pages)
    assert sum(len([n for n in p.nodes if not n.id.startswith("__section_")])
               for p in pages) == len(compiled.spec.nodes) + 0
    render(overview, tmp_path / "overview.svg")
    render(pages[1], tmp_path / "page2.svg")
    assert "section 2 of" in (tmp_path / "page2.svg").read_text()


def test_heatmap_overlays_what_really_happened(tmp_path: Path) -> None:
    from engine.demo.simulation import DemoConfig, Simulation
    from engine.render.heatmap import collect, overlay

    sim = Simulation(DemoConfig(db_path=tmp_path / "h.db", sop_dir=ROOT / "sop_definitions",
                                limit=30, follow_days=0, use_prefect=False))
    sim.execute()
    stats = collect(sim.rt.engine, "password_reset")
    assert stats.cases > 0
    assert stats.visits["classify"] == stats.cases  # every case passed classification
    d = overlay(diagram_of(LIB.sops["password_reset"], LIB.levels), stats)
    classify = next(n for n in d.nodes if n.id == "classify")
    assert classify.stats["n"] == str(stats.cases)
    out = render(d, tmp_path / "heat.svg")
    assert "heat map" in out.read_text()
