"""Executable spec of the agents document (``kind: agents``): its shape, its references to
the levels, and the roles the library's human tasks need -- every problem at file:line:col."""

from __future__ import annotations

from pathlib import Path

import pytest
from sop_pipeline_helpers import ROOT

from engine.errors import SopErrors
from engine.sop import iter_library_errors, load_library, load_text
from engine.sop.model import AgentsDoc, AgentSpec
from engine.sop.schema import load_schema

AGENTS = """\
kind: agents
agents:
  - id: ann
    name: Ann
    levels: [L1]
    roles: [service_desk_agent]
    skills: [nl, en]
  - id: bob
    name: Bob
    levels: [L2, specialist]
    roles: [identity_specialist]
"""


def lines_of(text: str, file: str = "agents.yaml") -> list[str]:
    with pytest.raises(SopErrors) as info:
        load_text(text, file)
    return [e.format() for e in info.value]


def library_lines(folder: Path, severity: str = "error") -> list[str]:
    return [e.format().replace(f"{folder}/", "") for e in iter_library_errors(folder)
            if e.severity == severity]


def test_an_agents_document_loads_into_frozen_agents() -> None:
    doc = load_text(AGENTS, "agents.yaml")
    assert isinstance(doc, AgentsDoc) and doc.source == "agents.yaml"
    ann, bob = doc.agents
    assert ann == AgentSpec(id="ann", name="Ann", levels=("L1",), span=ann.span,
                            roles=("service_desk_agent",), skills=("nl", "en"),
                            level_spans=ann.level_spans)
    assert (ann.span.line, ann.span.column) == (3, 5)
    assert [(s.line, s.column) for s in bob.level_spans] == [(10, 14), (10, 18)]
    assert bob.skills == () and doc.get("bob") is bob and doc.get("nobody") is None


def test_shape_errors_are_reported_at_their_yaml_position() -> None:
    text = """\
kind: agents
agents:
  - id: ann
    name: Ann
    roles: [service_desk_agent]
  - id: bad id
    name: Bob
    levels: []
    role: [identity_specialist]
  - id: cid
    name: Cid
    levels: L1
"""
    assert lines_of(text) == [
        "agents.yaml:3:5: E-SCHEMA-REQUIRED: $.agents[0] is missing required key 'levels'",
        "agents.yaml:6:9: E-SCHEMA-PATTERN: 'bad id' does not have the expected form "
        "(pattern ^[A-Za-z_][A-Za-z0-9_.@-]*$)",
        "agents.yaml:8:13: E-SCHEMA-MINITEMS: needs at least 1 entry",
        "agents.yaml:9:5: E-SCHEMA-ADDITIONAL: unknown key 'role' in here (did you mean 'roles'?)",
        "agents.yaml:12:13: E-SCHEMA-TYPE: expected array, got string (\"L1\")",
    ]


def test_an_agent_given_twice_is_an_error_citing_the_first() -> None:
    text = AGENTS + "  - {id: ann, name: Ann again, levels: [L2]}\n"
    assert lines_of(text) == [
        "agents.yaml:12:10: E-AGENT-DUPLICATE: agent 'ann' is defined twice (also at line 3) "
        "(keep one entry per agent; list all its levels and roles there)",
    ]


def test_empty_directory_and_unknown_kind_spelling() -> None:
    assert lines_of("kind: agents\nagents: []\n") == [
        "agents.yaml:2:9: E-SCHEMA-MINITEMS: needs at least 1 entry"]
    assert lines_of("kind: agent\nagents: []\n") == [
        "agents.yaml:1:7: E-SCHEMA-ENUM: unknown document kind 'agent' (did you mean 'agents'?)"]


# ---- in a library: levels and roles ---------------------------------------------------------


def test_unknown_levels_of_agents_are_errors_with_did_you_mean(org_library: Path) -> None:
    (org_library / "org" / "agents.yaml").write_text(
        AGENTS.replace("levels: [L1]", "levels: [l1]").replace("[L2, specialist]",
                                                               "[L2, specialists, boss]"))
    assert library_lines(org_library) == [
        "org/agents.yaml:5:14: E-LEVEL-UNKNOWN: agent 'ann': unknown competence level 'l1' "
        "(did you mean 'L1'?)",
        "org/agents.yaml:10:18: E-LEVEL-UNKNOWN: agent 'bob': unknown competence level "
        "'specialists' (did you mean 'specialist'?)",
        "org/agents.yaml:10:31: E-LEVEL-UNKNOWN: agent 'bob': unknown competence level 'boss' "
        "(known levels: L1, L2, e, specialist)",
    ]
    with pytest.raises(SopErrors):
        load_library(org_library)


def test_a_second_agents_document_is_a_duplicate(org_library: Path) -> None:
    (org_library / "org" / "agents.yaml").write_text(AGENTS)
    (org_library / "org" / "more_agents.yaml").write_text(
        "kind: agents\nagents: [{id: cid, name: Cid, levels: [L1]}]\n")
    assert library_lines(org_library) == [
        "org/more_agents.yaml:1:1: E-LIB-DUPLICATE: a second AgentsDoc in the library "
        "(keep one levels, one routing and one agents document)",
    ]


def test_a_library_with_agents_holds_them_and_without_has_none(org_library: Path) -> None:
    assert load_library(org_library).agents is None
    (org_library / "org" / "agents.yaml").write_text(AGENTS)
    lib = load_library(org_library)
    assert lib.agents is not None and [a.id for a in lib.agents.agents] == ["ann", "bob"]


def test_a_role_nobody_at_the_level_holds_is_a_warning(org_library: Path) -> None:
    (org_library / "org" / "agents.yaml").write_text(
        AGENTS.replace("[service_desk_agent]", "[service_desk_agnet]")
        .replace("[identity_specialist]", "[]"))
    sop = org_library / "password_reset.yaml"
    sop.write_text(sop.read_text().replace(
        "      escalate: {next: stop_first_response_escalate}\n",
        "      escalate: {next: stop_first_response_escalate, roles: [supervisor]}\n", 1))
    assert library_lines(org_library, "warning") == [
        "password_reset.yaml:84:3: W-ROLE-UNSTAFFED: human_task 'verify_identity' of "
        "password_reset: no agent at level 'L1' has role 'service_desk_agent' "
        "(did you mean 'service_desk_agnet'?)",
        "password_reset.yaml:92:7: W-ROLE-UNSTAFFED: human_task 'verify_identity' of "
        "password_reset: outcome 'escalate': no agent at level 'L1' has any of the roles "
        "supervisor (add the role to an agent of that level in the agents document)",
        "password_reset.yaml:118:3: W-ROLE-UNSTAFFED: human_task 'specialist_fix' of "
        "password_reset: no agent at level 'L2' has role 'identity_specialist' "
        "(add the role to an agent of that level in the agents document)",
    ]
    load_library(org_library)  # warnings do not fail the library


def test_the_shipped_directory_staffs_every_human_task_of_the_library() -> None:
    assert load_library(ROOT / "sop_definitions").agents is not None
    assert [e.format() for e in iter_library_errors(ROOT / "sop_definitions")
            if e.code == "W-ROLE-UNSTAFFED"] == []


# ---- drift: schema <-> builder <-> model -----------------------------------------------------


def test_agent_schema_keys_equal_model_fields() -> None:
    item = load_schema("agents")["properties"]["agents"]["items"]
    assert set(item["properties"]) == set(AgentSpec.__dataclass_fields__) - {"span", "level_spans"}
    assert set(item["required"]) == {"id", "name", "levels"}
