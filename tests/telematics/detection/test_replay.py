"""`tripguard monitor replay`'s pipeline: a forked parser hands batches over in order, and fails loudly."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tripguard.cli import app as cli
from tripguard.sim.porto import build_stream, load_trips
from tripguard.telematics.detection import replay
from tripguard.telematics.detection.replay import cut_batches, parsed_ahead
from tripguard.telematics.ingest.columns import parse_ndjson_columns

pytestmark = pytest.mark.no_database

TRIPGUARD = str(Path(sys.executable).with_name("tripguard"))


@pytest.fixture(scope="module")
def stream() -> bytes:
    events, _ = build_stream(load_trips()[:30], inject={"route_deviation": 2, "early_end": 2})
    return "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in events).encode()


@pytest.mark.parametrize("size", [1, 7, 1000, 10**6])
def test_batches_are_cut_every_n_lines_and_nothing_is_lost(size: int) -> None:
    data = b"a\n\nbb\r\nccc\nd"  # the last line has no newline
    batches = list(cut_batches(io.BytesIO(data), size))
    assert b"".join(chunk for chunk, _ in batches) == data
    assert sum(lines for _, lines in batches) == 5
    assert all(lines == size for _, lines in batches[:-1])


def test_a_line_longer_than_a_read_is_kept_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replay, "READ_SIZE", 5)
    data = b"0123456789abcdef\nxy\n"
    assert list(cut_batches(io.BytesIO(data), 1)) == [(b"0123456789abcdef\n", 1), (b"xy\n", 1)]


def test_the_forked_parser_gives_what_the_line_parser_gives(stream: bytes, tmp_path: Path) -> None:
    path = tmp_path / "events.ndjson"
    broken = stream.replace(b"\n", b"\n{broken\n", 1)
    path.write_bytes(broken)
    parsed = list(parsed_ahead(str(path), 500))
    expected, expected_errors = parse_ndjson_columns(broken.split(b"\n"))
    assert [e for _, errors in parsed for e in errors] == expected_errors == [expected_errors[0]]
    assert [t for columns, _ in parsed for t in columns.trip_ids] == expected.trip_ids
    assert np.array_equal(np.concatenate([columns.lon for columns, _ in parsed]), expected.lon, equal_nan=True)


def test_an_error_in_the_parser_process_is_raised_here(stream: bytes, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "events.ndjson"
    path.write_bytes(stream)

    def broken(*_: object, **__: object) -> None:
        raise MemoryError("no room")

    monkeypatch.setattr(replay, "read_ndjson", broken)  # the fork inherits it
    with pytest.raises(MemoryError, match="no room"):
        list(parsed_ahead(str(path), 500))


def test_stopping_early_stops_the_parser(stream: bytes, tmp_path: Path) -> None:
    path = tmp_path / "events.ndjson"
    path.write_bytes(stream * 20)
    batches = parsed_ahead(str(path), 100)
    next(batches)
    batches.close()  # the consumer gives up: the child is stopped, nothing hangs


def test_replay_reads_standard_input(stream: bytes) -> None:
    from_file = CliRunner().invoke(cli, ["monitor", "replay", "-"], input=stream)  # no descriptor: parsed here
    piped = subprocess.run([TRIPGUARD, "monitor", "replay", "-", "--batch", "300"], input=stream,
                           capture_output=True, check=False, timeout=120)  # a real pipe: the forked parser
    assert from_file.exit_code == 0 and piped.returncode == 0
    assert piped.stdout.decode() == from_file.stdout
    kinds = [json.loads(line)["kind"] for line in from_file.stdout.splitlines()]
    assert kinds.count("route_deviation") >= 2 and kinds.count("early_end") >= 2  # the injected ones at least


def test_replay_of_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["monitor", "replay", str(tmp_path / "nope.ndjson")])
    assert result.exit_code == 2 and "no such file" in result.stderr
