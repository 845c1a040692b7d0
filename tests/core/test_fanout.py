"""The fan-out behind every live stream: each viewer gets the kinds it takes, in order; a process shutting
down ends every stream, those opened afterwards included."""

from __future__ import annotations

import asyncio

import pytest

from tripguard.core.fanout import CLOSING, Fanout, Item

pytestmark = pytest.mark.no_database


def test_each_viewer_gets_the_kinds_it_takes_in_order() -> None:
    async def scenario() -> tuple[list[Item], list[Item]]:
        fanout = Fanout()
        everything, cases = fanout.open_viewer(), fanout.open_viewer(frozenset({"incident"}))
        fanout.apply([{"type": "position", "trip_id": "T"}, {"type": "incident", "id": "inc_1"}])
        fanout.apply([{"type": "incident", "id": "inc_2"}])
        await asyncio.sleep(0)
        return ([everything.get_nowait() for _ in range(everything.qsize())],
                [cases.get_nowait() for _ in range(cases.qsize())])

    everything, cases = asyncio.run(scenario())
    assert [item["type"] for item in everything] == ["position", "incident", "incident"]
    assert [item["id"] for item in cases] == ["inc_1", "inc_2"]


def test_closing_ends_every_stream_and_a_closed_viewer_hears_nothing() -> None:
    async def scenario() -> tuple[list[Item], list[Item], list[Item]]:
        fanout = Fanout()
        open_one, gone = fanout.open_viewer(), fanout.open_viewer()
        fanout.close_viewer(gone)
        fanout.apply([{"type": "incident", "id": "inc_1"}])
        fanout.close_viewers()
        late = fanout.open_viewer()
        fanout.apply([{"type": "incident", "id": "inc_2"}])  # nobody is listening any more
        await asyncio.sleep(0)
        return ([open_one.get_nowait() for _ in range(open_one.qsize())],
                [gone.get_nowait() for _ in range(gone.qsize())],
                [late.get_nowait() for _ in range(late.qsize())])

    open_one, gone, late = asyncio.run(scenario())
    assert open_one[0]["id"] == "inc_1" and open_one[1] is CLOSING and len(open_one) == 2
    assert gone == []
    assert late == [CLOSING] and late[0] is CLOSING
