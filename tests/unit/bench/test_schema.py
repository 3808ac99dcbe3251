"""The result document: typed structs that read files written before them and write the same
shape back, and typed errors naming what is wrong in a file that is not a run."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gptoss_modal import ConfigError
from gptoss_modal.bench.schema import (
    READABLE,
    SCHEMA,
    ChunksDoc,
    RequestDoc,
    RunDoc,
    decode_run,
    encode_run,
    read_run,
)
from tests.unit.bench.scripted import ScriptedClient, run

# Written by the benchmark before the document was typed (two levels, budgets, a failure,
# spec-decode and server-side numbers, every record).
V1_FILE = Path(__file__).parent / "data" / "run-v1.json"


def test_a_file_written_before_the_structs_reads_and_writes_back_the_same() -> None:
    """The old writer's file decodes, and encoding it again gives the same JSON, key order
    included: the structs are the shape on disk (schema 2 only added fields with defaults, so a
    schema-1 file still reads, and keeps its schema)."""
    text = V1_FILE.read_text()
    doc = read_run(V1_FILE)
    assert doc.schema == "gptoss-modal-bench/1"
    assert doc.schema in READABLE
    assert doc.levels[0].summary.spec_decode is not None
    assert doc.levels[0].summary.errors == {"http_503": 1}
    again = encode_run(doc).decode()
    assert json.loads(again) == json.loads(text)
    assert list(json.loads(again)) == list(json.loads(text))
    level = json.loads(again)["levels"][0]
    assert list(level["summary"]) == list(json.loads(text)["levels"][0]["summary"])


async def test_the_writer_uses_the_one_schema_version(tmp_path: Path) -> None:
    """A run's file carries SCHEMA and reads back into an equal document."""
    result = await run(ScriptedClient())
    path = tmp_path / "run.json"
    result.write_json(path)
    doc = read_run(path)
    assert doc.schema == SCHEMA
    assert doc == result.to_doc()


async def test_records_can_be_left_out() -> None:
    """Without records a level has no "requests" key at all (not an empty list)."""
    result = await run(ScriptedClient())
    (level,) = json.loads(encode_run(result.to_doc(records=False)))["levels"]
    assert list(level) == ["summary"]
    (full,) = json.loads(encode_run(result.to_doc()))["levels"]
    assert len(full["requests"]) == 6


@pytest.mark.parametrize(
    ("content", "message"),
    [("not json", "not JSON"), ('{"schema": "other"}', "schema"), ("[1]", "schema")],
)
def test_reading_something_that_is_not_a_run_is_a_config_error(
    tmp_path: Path, content: str, message: str
) -> None:
    """Only a gptoss-modal bench JSON file is read; anything else says what it expected."""
    path = tmp_path / "x.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        read_run(path)


def test_a_wrong_field_is_named_by_its_path() -> None:
    """A run file with a field of the wrong type names that field's path in the error."""
    doc = json.loads(V1_FILE.read_text())
    doc["levels"][1]["summary"]["completed"] = "three"
    with pytest.raises(ConfigError) as info:
        decode_run(json.dumps(doc), "run.json")
    assert info.value.field == "run.json: levels[1].summary.completed"


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    """A path that cannot be read is a ConfigError naming it."""
    with pytest.raises(ConfigError, match="bench --json"):
        read_run(tmp_path / "missing.json")


TIMES = st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), max_size=20)


@given(TIMES, st.lists(st.one_of(st.none(), st.integers(0, 10**6)), max_size=20))
def test_a_record_round_trips(times: list[float], tokens: list[int | None]) -> None:
    """Any request record encodes and decodes to an equal record."""
    record = RequestDoc(
        level="c=1",
        index=0,
        ok=True,
        error_kind=None,
        error=None,
        response_id="r",
        finish_reason="length",
        prompt_tokens=3,
        output_tokens=len(tokens),
        tokens_from_usage=True,
        queue_ms=None,
        response_ms=1.0,
        ttft_chunk_ms=2.0,
        ttft_ms=3.0,
        ttft_content_ms=None,
        tpot_ms=1.5,
        e2e_ms=9.0,
        failed_after_ms=None,
        itl_per_token=True,
        chunks=ChunksDoc(t_ms=times, tokens=tokens, flags=[1] * len(tokens)),
    )
    assert msgspec.json.decode(msgspec.json.encode(record), type=RequestDoc) == record


def test_run_doc_fields_start_with_the_schema() -> None:
    """The schema version is the document's first key, as before."""
    assert RunDoc.__struct_fields__[0] == "schema"


async def test_an_agentic_run_round_trips_with_its_new_fields(tmp_path: Path) -> None:
    """Schema 2's fields (scenario, turns, cache share, tool calls, per-request turn and
    verdicts) are written and read back into an equal document."""
    client = ScriptedClient()
    client.report_cached = True
    client.tool_faults = {1: "not_json"}
    result = await run(client, scenario="agentic", turns=3, requests=None, api="responses")
    result.vllm_version = "0.33.0"
    path = tmp_path / "run.json"
    result.write_json(path)
    doc = read_run(path)
    assert doc == result.to_doc()
    assert (doc.settings.scenario, doc.settings.api, doc.settings.turns) == (
        "agentic",
        "responses",
        3,
    )
    assert doc.vllm_version == "0.33.0"
    assert doc.settings.session_ids
    summary = doc.levels[0].summary
    assert [t.turn for t in summary.turns] == [0, 1, 2]
    assert summary.cache is not None
    assert summary.tool_calls is not None
    assert summary.tool_calls.problems == {"not_json": 1}
    requests = doc.levels[0].requests
    assert isinstance(requests, list)
    assert {r.turn for r in requests} == {0, 1, 2}
    assert any(c.problems == ["not_json"] for r in requests for c in r.tool_calls)
