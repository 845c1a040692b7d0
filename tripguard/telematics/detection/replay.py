"""`tripguard monitor replay`'s pipeline: a process reads and parses the stream while this one detects.

Parsing (Arrow's reader, then the checks on whole columns) and detection (the batched monitor) each
take about one core; threads would share one interpreter lock, so the parser is a forked process
that sends each batch's columns through a pipe, in order, as raw buffers (`handover`: no event is
pickled). The pipe's buffer holds it to about one batch ahead, and it stops when this process goes away.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import BinaryIO

import numpy as np

from tripguard.telematics.detection.handover import Parsed, receive_batch, send_batch, send_end, send_error
from tripguard.telematics.ingest.reader import read_ndjson

READ_SIZE = 8 << 20
_PR_SET_PDEATHSIG = 1


def cut_batches(handle: BinaryIO, lines_per_batch: int) -> Iterator[tuple[bytes, int]]:
    """A byte stream in batches of `lines_per_batch` lines (the last may be shorter): (bytes, lines)."""
    pending = b""
    while True:
        chunk = handle.read(READ_SIZE)
        data = pending + chunk if pending else chunk
        if not chunk:
            if data:
                yield data, data.count(b"\n") + (not data.endswith(b"\n"))
            return
        newlines = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == ord("\n"))
        start = 0
        for cut in newlines[lines_per_batch - 1::lines_per_batch].tolist():
            yield data[start:cut + 1], lines_per_batch
            start = cut + 1
        pending = data[start:]


def parsed_batches(handle: BinaryIO, lines_per_batch: int) -> Iterator[Parsed]:
    """`read_ndjson` of each batch in turn, line numbers running on across batches."""
    gcj: dict[str, None] = {}
    line = 1
    for data, lines in cut_batches(handle, lines_per_batch):
        yield read_ndjson(data, gcj, first_line=line, starts_as_columns=True)
        line += lines


def parsed_ahead(source: str, lines_per_batch: int) -> Iterator[Parsed]:
    """`parsed_batches` of a file (or "-", standard input), parsed by a child process; in this process
    where the platform cannot fork."""
    stdin = _stdin_descriptor() if source == "-" else None
    if "fork" not in multiprocessing.get_all_start_methods() or (source == "-" and stdin is None):
        if stdin is not None:
            os.close(stdin)
        with sys.stdin.buffer if source == "-" else open(source, "rb") as handle:
            yield from parsed_batches(handle, lines_per_batch)
        return
    receiver, sender = multiprocessing.get_context("fork").Pipe(duplex=False)
    child = multiprocessing.get_context("fork").Process(
        target=_parse_into, args=(source, stdin, lines_per_batch, sender, receiver, os.getpid()), name="replay-parser",
        daemon=True)
    child.start()
    sender.close()
    if stdin is not None:
        os.close(stdin)
    try:
        while True:
            try:
                item = receive_batch(receiver)
            except EOFError:
                child.join(timeout=1)
                raise RuntimeError(f"the parser process stopped (exit code {child.exitcode})") from None
            if item is None:
                break
            yield item
    finally:
        receiver.close()
        if child.is_alive():
            child.terminate()
        child.join()


def _stop_with(parent: int) -> None:
    """On Linux, a signal to this process when its parent goes away, even killed, even while it waits for
    standard input; elsewhere the next batch it sends finds the pipe broken."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return
    prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # gone already, before the signal was asked for
        os._exit(0)


def _stdin_descriptor() -> int | None:
    """A descriptor of standard input for the child (whose own sys.stdin is closed); None when standard
    input is no file (a test harness's)."""
    try:
        return os.dup(sys.stdin.fileno())
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both OSError and ValueError
        return None


def _open(source: str, stdin: int | None) -> BinaryIO:
    return os.fdopen(stdin, "rb") if stdin is not None else open(source, "rb")


def _parse_into(source: str, stdin: int | None, lines_per_batch: int, sender: Connection, receiver: Connection,
                parent: int) -> None:
    receiver.close()  # the reader's end: once the reader is gone, a send fails
    _stop_with(parent)
    try:
        with _open(source, stdin) as handle:
            for parsed in parsed_batches(handle, lines_per_batch):
                send_batch(sender, parsed)
        send_end(sender)
    except (BrokenPipeError, KeyboardInterrupt):
        return  # the reader went away
    except Exception as exc:  # noqa: BLE001 - handed to the reader, raised there
        send_error(sender, exc)
    finally:
        sender.close()
