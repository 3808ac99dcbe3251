"""The paced writer: every event once, in order, coalesced only when due, cut where told."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gptoss_modal.testing._layout import StreamEvents
from gptoss_modal.testing._writer import MAX_WRITE_BYTES, Interruption, SendRecord, StreamWriter


def _stream(count: int, size: int = 8) -> StreamEvents:
    """``count`` events due at once (time 0), each completing one more step."""
    events = [bytes([65 + i % 26]) * size for i in range(count)]
    return StreamEvents(events, [0.0] * count, list(range(1, count + 1)))


async def _run(writer: StreamWriter) -> list[bytes]:
    writes: list[bytes] = []

    async def write(data: bytes) -> None:
        writes.append(data)

    await writer.run(write)
    return writes


@given(st.integers(min_value=1, max_value=40), st.booleans())
async def test_every_event_is_written_once_in_order(count: int, coalesce: bool) -> None:
    """The writes concatenate to the events, whether coalesced or not."""
    stream = _stream(count)
    writes = await _run(StreamWriter(stream, coalesce=coalesce))
    assert b"".join(writes) == b"".join(stream.events)


async def test_events_due_together_share_a_write_unless_told_not_to() -> None:
    """Coalesced, ten due events are one write; one event per write, ten writes."""
    assert len(await _run(StreamWriter(_stream(10), coalesce=True))) == 1
    assert len(await _run(StreamWriter(_stream(10), coalesce=False))) == 10


async def test_a_coalesced_write_is_cut_at_the_byte_limit() -> None:
    """No coalesced write is larger than MAX_WRITE_BYTES (events smaller than the limit)."""
    writes = await _run(StreamWriter(_stream(10, size=MAX_WRITE_BYTES // 3), coalesce=True))
    assert max(len(w) for w in writes) <= MAX_WRITE_BYTES
    assert len(writes) > 1


async def test_a_stopping_interruption_writes_its_payloads_and_ends_there() -> None:
    """At event 3 it writes the payloads, each on its own, and nothing after; served steps say
    how far the stream got."""
    stream = _stream(6)
    cut = Interruption(3, payloads=(b"ERR", b"DONE"), stop=True)
    writer = StreamWriter(stream, coalesce=True, interruption=cut)
    writes = await _run(writer)
    assert writes == [b"".join(stream.events[:3]), b"ERR", b"DONE"]
    assert (writer.served_steps, writer.sent_all) == (3, False)


async def test_a_continuing_interruption_inserts_its_payload() -> None:
    """A payload that does not stop lands between events 2 and 3, and the rest follows."""
    stream = _stream(5)
    writer = StreamWriter(stream, coalesce=True, interruption=Interruption(2, payloads=(b"X",)))
    writes = await _run(writer)
    assert b"".join(writes) == b"".join(stream.events[:2]) + b"X" + b"".join(stream.events[2:])
    assert (writer.served_steps, writer.sent_all) == (5, True)


async def test_the_record_has_one_time_per_event() -> None:
    """With a SendRecord, each event gets the time of the write that carried it."""
    record = SendRecord("r", 0.0)
    await _run(StreamWriter(_stream(7), coalesce=True, record=record))
    assert len(record.event_times) == 7
