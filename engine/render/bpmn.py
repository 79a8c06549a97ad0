"""BPMN 2.0 export: process, lanes per competence level, and diagram interchange (DI).

Positions come from the Graphviz layout of the same Diagram, so the exported file opens as a
diagram in bpmn.io or Camunda Modeler. The mapping (docs/auditors.md has the table):

- start -> startEvent; end -> endEvent (terminateEventDefinition when ``terminate``)
- action -> serviceTask (+ error boundaryEvent for ``on_error``); set -> scriptTask-free task
- human_task -> userTask (+ timer boundaryEvent for ``timeout``; an exclusiveGateway routes
  on the outcome when there are several)
- decision, loop, sla_check -> exclusiveGateway (conditions as formal expressions)
- parallel -> parallelGateway, or inclusiveGateway when branches have conditions; join likewise
- wait -> eventBasedGateway followed by one message catch event per awaited event (+ a timer)
- escalate, hand_back -> intermediateThrowEvent with an escalationEventDefinition
- sla_start/pause/resume/stop -> intermediateThrowEvent annotated as an SLA clock operation
  (BPMN has no SLA clock: the annotation carries the clock name and operation)
- call -> callActivity (calledElement = the sub-SOP id)
- case-wide handlers -> not exported as flow (BPMN event subprocesses would need their own
  start events); they are listed in a text annotation
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from engine.render.dot import layout_json
from engine.render.extract import diagram_of
from engine.render.model import NEUTRAL_LANE, Diagram
from engine.sop.model import NodeSpec, NodeType, SopSpec

__all__ = ["to_bpmn"]

NS = {
    "": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
    "dc": "http://www.omg.org/spec/DD/20100524/DC",
    "di": "http://www.omg.org/spec/DD/20100524/DI",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
}
_EVENT = (36.0, 36.0)
_GATEWAY = (50.0, 50.0)
_TASK = (120.0, 80.0)
_SCALE = 1.35
_ACTIVITIES = frozenset({"serviceTask", "userTask", "task", "callActivity"})


def _xid(raw: str) -> str:
    """A valid xsd:ID from a node id."""
    out = "".join(c if c.isalnum() or c in "_-." else "_" for c in raw)
    return out if out[:1].isalpha() or out[:1] == "_" else f"_{out}"


@dataclass(slots=True)
class _Element:
    tag: str
    id: str
    name: str
    size: tuple[float, float]
    lane: str
    body: list[str] = field(default_factory=list)
    attrs: dict[str, str] = field(default_factory=dict)
    attached_to: str | None = None
    incoming: list[str] = field(default_factory=list)
    outgoing: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Flow:
    id: str
    source: str
    target: str
    name: str = ""
    condition: str | None = None


class _Builder:
    """Collects BPMN elements and flows for one SOP."""

    def __init__(self, spec: SopSpec, diagram: Diagram) -> None:
        self.spec = spec
        self.lane_of = {n.id: n.lane for n in diagram.nodes}
        self.elements: dict[str, _Element] = {}
        self.flows: list[_Flow] = []
        self.entry: dict[str, str] = {}  # node id -> element id flows into it target
        self.annotations: list[tuple[str, str, str]] = []  # (id, text, element)

    def add(self, el: _Element) -> _Element:
        self.elements[el.id] = el
        return el

    def flow(self, source: str, target: str, name: str = "", condition: str | None = None) -> None:
        fid = _xid(f"Flow_{len(self.flows) + 1}_{source}_{target}")
        self.flows.append(_Flow(fid, source, target, name, condition))
        self.elements[source].outgoing.append(fid)
        self.elements[target].incoming.append(fid)

    # -- nodes -------------------------------------------------------------------------

    def node(self, n: NodeSpec) -> None:
        nid, lane, name = _xid(n.id), self.lane_of.get(n.id, NEUTRAL_LANE), n.title or n.id
        t = n.type
        self.entry[n.id] = nid
        if t is NodeType.START:
            self.add(_Element("startEvent", nid, name, _EVENT, lane))
        elif t is NodeType.END:
            body = ["<terminateEventDefinition/>"] if n.terminate else []
            self.add(_Element("endEvent", nid, f"{n.outcome or n.id} ({n.status})", _EVENT, lane,
                              body))
        elif t is NodeType.ACTION:
            self.add(_Element("serviceTask", nid, name, _TASK, lane))
        elif t is NodeType.SET:
            self.add(_Element("task", nid, name, _TASK, lane))
        elif t is NodeType.HUMAN_TASK:
            self.add(_Element("userTask", nid, name, _TASK, lane))
            if len(n.outcomes) > 1:  # BPMN routes on an outcome through a gateway
                self.add(_Element("exclusiveGateway", f"{nid}__outcome", "outcome?", _GATEWAY, lane))
        elif t is NodeType.CALL:
            self.add(_Element("callActivity", nid, name, _TASK, lane, [],
                              {"calledElement": _xid(f"Process_{n.sop}")}))
        elif t in (NodeType.DECISION, NodeType.LOOP, NodeType.SLA_CHECK):
            self.add(_Element("exclusiveGateway", nid, name, _GATEWAY, lane))
        elif t in (NodeType.PARALLEL, NodeType.JOIN):
            inclusive = self._inclusive(n)
            self.add(_Element("inclusiveGateway" if inclusive else "parallelGateway", nid, name,
                              _GATEWAY, lane))
        elif t is NodeType.WAIT:
            self.add(_Element("eventBasedGateway", nid, name, _GATEWAY, lane))
            for i, w in enumerate(n.on):
                self.add(_Element("intermediateCatchEvent", f"{nid}__on{i}", w.event, _EVENT,
                                  lane, ["<messageEventDefinition/>"]))
        elif t in (NodeType.ESCALATE, NodeType.HAND_BACK):
            self.add(_Element("intermediateThrowEvent", nid, name, _EVENT, lane,
                              ["<escalationEventDefinition/>"]))
        else:  # SLA clock operations
            self.add(_Element("intermediateThrowEvent", nid, name, _EVENT, lane))
            self.annotations.append((f"{nid}__note", f"SLA clock '{n.clock}': "
                                     f"{t.value.removeprefix('sla_')}", nid))
        if n.on_error and self.elements[nid].tag in _ACTIVITIES:
            self.add(_Element("boundaryEvent", f"{nid}__error", "error", _EVENT, lane,
                              ["<errorEventDefinition/>"], {"cancelActivity": "true"},
                              attached_to=nid))
        if n.timeout is not None and self.elements[nid].tag in _ACTIVITIES:
            self.add(_Element("boundaryEvent", f"{nid}__timeout", f"after {n.timeout.after.text}",
                              _EVENT, lane, [self._timer(n.timeout.after.text)],
                              {"cancelActivity": "true"}, attached_to=nid))
        elif n.timeout is not None and t is NodeType.WAIT:
            self.add(_Element("intermediateCatchEvent", f"{nid}__timeout",
                              f"after {n.timeout.after.text}", _EVENT, lane,
                              [self._timer(n.timeout.after.text)]))

    def _inclusive(self, n: NodeSpec) -> bool:
        if n.type is NodeType.PARALLEL:
            return any(b.when for b in n.branches)
        return any(p.type is NodeType.PARALLEL and p.join == n.id and any(b.when for b in p.branches)
                   for p in self.spec.nodes.values())

    @staticmethod
    def _timer(text: str) -> str:
        return ("<timerEventDefinition><timeDuration xsi:type=\"tFormalExpression\">"
                f"{escape(text)}</timeDuration></timerEventDefinition>")

    # -- flows -------------------------------------------------------------------------

    def edges(self, n: NodeSpec) -> None:
        nid, t = _xid(n.id), n.type
        go = self.entry
        if t is NodeType.DECISION:
            for b in n.branches:
                self.flow(nid, go[b.next], b.label, b.when.source if b.when else None)
            if n.otherwise:
                self.flow(nid, go[n.otherwise], "otherwise")
                self.elements[nid].attrs["default"] = self.flows[-1].id
        elif t is NodeType.PARALLEL:
            inclusive = self._inclusive(n)
            for b in n.branches:  # an unconditional branch of a multi-choice is always taken
                cond = b.when.source if b.when else ("true" if inclusive else None)
                self.flow(nid, go[b.next], b.label, cond)
        elif t is NodeType.HUMAN_TASK:
            source = nid
            if len(n.outcomes) > 1:
                self.flow(nid, f"{nid}__outcome")
                source = f"{nid}__outcome"
            for o in n.outcomes:
                self.flow(source, go[o.next], o.label or o.name,
                          f'outcome == "{o.name}"' if len(n.outcomes) > 1 else None)
        elif t is NodeType.WAIT:
            for i, w in enumerate(n.on):
                self.flow(nid, f"{nid}__on{i}")
                self.flow(f"{nid}__on{i}", go[w.next], w.event)
        elif t is NodeType.LOOP:
            if n.body:
                self.flow(nid, go[n.body], f"repeat (at most {n.max})", f"count <= {n.max}")
            if n.exit:
                self.flow(nid, go[n.exit], "done")
                self.elements[nid].attrs["default"] = self.flows[-1].id
        elif t is NodeType.SLA_CHECK:
            for target, label in ((n.ok, "ok"), (n.warning, "warning"), (n.breached, "breached")):
                if target:
                    self.flow(nid, go[target], label, f'status == "{label}"')
        elif n.next and t is not NodeType.END:
            self.flow(nid, go[n.next])
        if n.on_error:
            source = f"{nid}__error" if f"{nid}__error" in self.elements else nid
            self.flow(source, go[n.on_error], "error")
        if n.timeout is not None:
            if f"{nid}__timeout" not in self.elements:
                self.flow(nid, go[n.timeout.next], "timeout")
                return
            if t is NodeType.WAIT:
                self.flow(nid, f"{nid}__timeout")
            self.flow(f"{nid}__timeout", go[n.timeout.next], "timeout")


def _positions(diagram: Diagram) -> tuple[dict[str, tuple[float, float]], dict[str, tuple[float, ...]]]:
    """Node centres and lane boxes from Graphviz, in BPMN coordinates (y down)."""
    layout = layout_json(diagram)
    height = float(str(layout.get("bb", "0,0,0,0")).split(",")[3])
    centres: dict[str, tuple[float, float]] = {}
    lanes: dict[str, tuple[float, ...]] = {}
    for obj in layout.get("objects", []):  # type: ignore[union-attr]
        name = str(obj.get("name", ""))
        if "pos" in obj:
            x, y = (float(v) for v in str(obj["pos"]).split(","))
            centres[name] = (x * _SCALE + 40, (height - y) * _SCALE + 40)
        elif name.startswith("cluster_lane_") and "bb" in obj:
            x0, y0, x1, y1 = (float(v) for v in str(obj["bb"]).split(","))
            lanes[name.removeprefix("cluster_lane_")] = (
                x0 * _SCALE + 40, (height - y1) * _SCALE + 40, (x1 - x0) * _SCALE, (y1 - y0) * _SCALE)
    return centres, lanes


def _bounds(el: _Element, centres: dict[str, tuple[float, float]],
            elements: dict[str, _Element]) -> tuple[float, float, float, float]:
    base = el.id.split("__")[0]
    cx, cy = centres.get(el.name if False else base, (0.0, 0.0))
    w, h = el.size
    if el.attached_to is not None:
        parent = elements[el.attached_to]
        pcx, pcy = centres.get(el.attached_to, (cx, cy))
        offset = -25.0 if el.id.endswith("__error") else 25.0
        return pcx + offset - w / 2, pcy + parent.size[1] / 2 - h / 2, w, h
    if el.id.endswith("__outcome"):
        return cx + 85.0, cy - h / 2, w, h
    if "__on" in el.id or el.id.endswith("__timeout"):
        index = int(el.id.rsplit("__on", 1)[1]) if "__on" in el.id else 9
        return cx + 60.0, cy - 60.0 + index * 45.0, w, h
    return cx - w / 2, cy - h / 2, w, h


def _ids_by_source(diagram: Diagram, spec: SopSpec) -> dict[str, str]:
    return {_xid(n): n for n in spec.nodes}


def to_bpmn(compiled: Any, levels: Any = None) -> str:
    """BPMN 2.0 XML (process, lanes, DI) of a compiled SOP."""
    spec: SopSpec = compiled.spec
    diagram = diagram_of(compiled, levels)
    b = _Builder(spec, diagram)
    for n in spec.nodes.values():
        b.node(n)
    for n in spec.nodes.values():
        b.edges(n)
    raw_centres, lane_boxes = _positions(diagram)
    centres = {_xid(k): v for k, v in raw_centres.items()}
    proc_id = _xid(f"Process_{spec.id}")
    lanes_used: dict[str, list[str]] = {}
    for el in b.elements.values():
        lanes_used.setdefault(el.lane, []).append(el.id)
    lane_names = {lane.id: lane.label for lane in diagram.lanes}
    return "\n".join(_document(spec, proc_id, b, lanes_used, lane_names, centres, lane_boxes))


def _document(spec: SopSpec, proc_id: str, b: _Builder, lanes_used: dict[str, list[str]],
              lane_names: dict[str, str], centres: dict[str, tuple[float, float]],
              lane_boxes: dict[str, tuple[float, ...]]) -> Iterator[str]:
    ns = " ".join(f'xmlns{":" + k if k else ""}="{v}"' for k, v in NS.items())
    yield '<?xml version="1.0" encoding="UTF-8"?>'
    yield (f'<definitions {ns} id="Definitions_{_xid(spec.id)}" '
           'targetNamespace="https://careflow.dev/bpmn" exporter="careflow" exporterVersion="1">')
    yield '  <collaboration id="Collaboration_1">'
    yield (f'    <participant id="Participant_1" name={quoteattr(spec.title)} '
           f'processRef="{proc_id}"/>')
    yield "  </collaboration>"
    yield f'  <process id="{proc_id}" name={quoteattr(spec.title)} isExecutable="true">'
    if spec.purpose:
        yield f"    <documentation>{escape(spec.purpose)}</documentation>"
    yield '    <laneSet id="LaneSet_1">'
    for lane, members in lanes_used.items():
        yield f'      <lane id="{_xid("Lane_" + lane)}" name={quoteattr(lane_names.get(lane, lane))}>'
        yield from (f"        <flowNodeRef>{m}</flowNodeRef>" for m in members)
        yield "      </lane>"
    yield "    </laneSet>"
    for el in b.elements.values():
        attrs = "".join(f" {k}={quoteattr(v)}" for k, v in el.attrs.items())
        if el.attached_to:
            attrs += f' attachedToRef="{el.attached_to}"'
        yield f'    <{el.tag} id="{el.id}" name={quoteattr(el.name)}{attrs}>'
        yield from (f"      <incoming>{f}</incoming>" for f in el.incoming)
        yield from (f"      <outgoing>{f}</outgoing>" for f in el.outgoing)
        yield from (f"      {line}" for line in el.body)
        yield f"    </{el.tag}>"
    for f in b.flows:
        name = f" name={quoteattr(f.name)}" if f.name else ""
        if f.condition:
            yield (f'    <sequenceFlow id="{f.id}" sourceRef="{f.source}" targetRef="{f.target}"{name}>'
                   f'<conditionExpression xsi:type="tFormalExpression" language="cel">'
                   f"{escape(f.condition)}</conditionExpression></sequenceFlow>")
        else:
            yield f'    <sequenceFlow id="{f.id}" sourceRef="{f.source}" targetRef="{f.target}"{name}/>'
    notes = list(b.annotations)
    if spec.on_event:
        notes.append(("Handlers_note", "Case-wide handlers: " + "; ".join(
            f"{h.event} -> {h.next or 'update'}{' (interrupts)' if h.interrupt else ''}"
            for h in spec.on_event), ""))
    for nid, text, _ in notes:
        yield f'    <textAnnotation id="{nid}"><text>{escape(text)}</text></textAnnotation>'
    for nid, _, target in notes:
        if target:
            yield (f'    <association id="{nid}_assoc" sourceRef="{target}" targetRef="{nid}"/>')
    yield "  </process>"
    yield from _di(proc_id, b, centres, lane_boxes, notes)
    yield "</definitions>"


def _di(proc_id: str, b: _Builder, centres: dict[str, tuple[float, float]],
        lane_boxes: dict[str, tuple[float, ...]], notes: list[tuple[str, str, str]]) -> Iterator[str]:
    yield '  <bpmndi:BPMNDiagram id="BPMNDiagram_1">'
    yield '    <bpmndi:BPMNPlane id="BPMNPlane_1" bpmnElement="Collaboration_1">'
    boxes = {el.id: _bounds(el, centres, b.elements) for el in b.elements.values()}
    xs = [x for x, _, w, _ in boxes.values()] + [x + w for x, _, w, _ in boxes.values()]
    ys = [y for _, y, _, h in boxes.values()] + [y + h for _, y, _, h in boxes.values()]
    x0, y0, x1, y1 = min(xs) - 60, min(ys) - 40, max(xs) + 40, max(ys) + 40
    yield _shape("Participant_1", (x0, y0, x1 - x0, y1 - y0), horizontal=True)
    for lane, box in lane_boxes.items():
        yield _shape(_xid("Lane_" + lane), (x0 + 30, box[1], x1 - x0 - 30, box[3]), horizontal=True)
    lanes_with_box = set(lane_boxes)
    for lane in {el.lane for el in b.elements.values()} - lanes_with_box:
        members = [boxes[el.id] for el in b.elements.values() if el.lane == lane]
        ly0 = min(y for _, y, _, _ in members) - 20
        ly1 = max(y + h for _, y, _, h in members) + 20
        yield _shape(_xid("Lane_" + lane), (x0 + 30, ly0, x1 - x0 - 30, ly1 - ly0), horizontal=True)
    for el in b.elements.values():
        yield _shape(el.id, boxes[el.id], marker=el.tag == "exclusiveGateway")
    for f in b.flows:
        sx, sy, sw, sh = boxes[f.source]
        tx, ty, tw, th = boxes[f.target]
        yield f'      <bpmndi:BPMNEdge id="{f.id}_di" bpmnElement="{f.id}">'
        yield f'        <di:waypoint x="{sx + sw:.0f}" y="{sy + sh / 2:.0f}"/>'
        yield f'        <di:waypoint x="{tx:.0f}" y="{ty + th / 2:.0f}"/>'
        yield "      </bpmndi:BPMNEdge>"
    for i, (nid, _, target) in enumerate(notes):
        tx, ty = (boxes[target][0], boxes[target][1] - 70) if target else (x0 + 40, y1 - 60 - i)
        yield _shape(nid, (tx, ty, 160, 40))
        if target:
            yield f'      <bpmndi:BPMNEdge id="{nid}_assoc_di" bpmnElement="{nid}_assoc">'
            yield f'        <di:waypoint x="{boxes[target][0] + 18:.0f}" y="{boxes[target][1]:.0f}"/>'
            yield f'        <di:waypoint x="{tx + 20:.0f}" y="{ty + 40:.0f}"/>'
            yield "      </bpmndi:BPMNEdge>"
    yield "    </bpmndi:BPMNPlane>"
    yield "  </bpmndi:BPMNDiagram>"


def _shape(element: str, box: tuple[float, ...], *, horizontal: bool = False,
           marker: bool = False) -> str:
    x, y, w, h = box
    extra = ' isHorizontal="true"' if horizontal else ""
    extra += ' isMarkerVisible="true"' if marker else ""
    return (f'      <bpmndi:BPMNShape id="{element}_di" bpmnElement="{element}"{extra}>'
            f'<dc:Bounds x="{x:.0f}" y="{y:.0f}" width="{w:.0f}" height="{h:.0f}"/>'
            "</bpmndi:BPMNShape>")
