"""The three transports: HTTP (gzipped, signed, taken only on the platform's answer), file-drop (a batch and
its manifest, written atomically) and recording (which production refuses unless allowed)."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import make_settings
from tests.regulator.receiver import SIGNING_KEY, PlatformReceiver
from tripguard.core.settings import SettingsError
from tripguard.regulator.setup import build_transport
from tripguard.regulator.transports import (
    Batch,
    FileDropTransport,
    HttpTransport,
    RecordingTransport,
    TransportError,
)

pytestmark = pytest.mark.no_database
PAYLOAD = json.dumps([{"kind": "positionVehicle", "key": "k1", "at": "x", "body": "00"}]).encode()
BATCH = Batch("positionVehicle", 7, 7, 1, PAYLOAD)


@pytest.fixture
def receiver() -> Iterator[PlatformReceiver]:
    platform = PlatformReceiver()
    platform.up()
    yield platform
    platform.down()


def http(receiver: PlatformReceiver, **kwargs: object) -> HttpTransport:
    return HttpTransport(url=receiver.url, company_id="3301TESTCO", signing_key=SIGNING_KEY, **kwargs)  # type: ignore[arg-type]


def test_http_posts_gzipped_signed_batches(receiver: PlatformReceiver) -> None:
    http(receiver).send(BATCH)
    [got] = receiver.batches
    assert (got.kind, got.first, got.last) == ("positionVehicle", 7, 7)
    assert got.items[0]["key"] == "k1"
    assert got.headers["x-company-id"] == "3301TESTCO" and got.headers["content-encoding"] == "gzip"


def test_http_header_names_are_configurable_and_the_signature_covers_the_body(receiver: PlatformReceiver) -> None:
    transport = http(receiver, company_header="X-Ipc-Company", signature_header="X-Other")
    with pytest.raises(TransportError, match="401"):  # the receiver looks for X-Signature: not there
        transport.send(BATCH)
    assert receiver.refused_signatures == 1
    body = gzip.compress(PAYLOAD)
    assert HttpTransport(url="", company_id="", signing_key=b"other").signature(body) != transport.signature(body)


@pytest.mark.parametrize("status", [500, 503, 429, 400, 302])
def test_http_anything_but_2xx_is_not_taken(receiver: PlatformReceiver, status: int) -> None:
    receiver.answer = status
    with pytest.raises(TransportError, match=f"HTTP {status}"):
        http(receiver).send(BATCH)


def test_http_ack_field_must_say_so(receiver: PlatformReceiver) -> None:
    http(receiver, ack_field="code", ack_value="0").send(BATCH)
    receiver.body = b'{"code": 7, "msg": "refused"}'
    with pytest.raises(TransportError, match="not acknowledged"):
        http(receiver, ack_field="code", ack_value="0").send(BATCH)
    receiver.body = b"OK"
    with pytest.raises(TransportError, match="not JSON"):
        http(receiver, ack_field="code").send(BATCH)
    http(receiver).send(BATCH)  # without an ack field, any 2xx is taken


def test_http_receiver_down_is_a_transport_error(receiver: PlatformReceiver) -> None:
    receiver.down()
    with pytest.raises(TransportError, match="ConnectError"):
        http(receiver).send(BATCH)


def test_file_drop_writes_the_batch_then_its_manifest(tmp_path: Path) -> None:
    FileDropTransport(tmp_path / "out").send(Batch("orderMatch", 1, 3, 3, PAYLOAD))
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["orderMatch-000000000001-000000000003.json", "orderMatch-000000000001-000000000003.pb"]
    manifest = json.loads((tmp_path / "out" / names[0]).read_text())
    assert manifest == {"type": "orderMatch", "first_sequence": 1, "last_sequence": 3, "count": 3,
                        "sha256": hashlib.sha256(PAYLOAD).hexdigest(), "file": names[1]}
    assert (tmp_path / "out" / names[1]).read_bytes() == PAYLOAD


def test_file_drop_unwritable_folder_is_a_transport_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(TransportError):
        FileDropTransport(tmp_path / "file").send(BATCH)


def test_recording_keeps_what_it_would_send() -> None:
    transport = RecordingTransport()
    transport.send(BATCH)
    assert list(transport.batches) == [BATCH] and transport.name == "recording"


def test_settings_pick_the_transport_and_production_refuses_recording(tmp_path: Path) -> None:
    base = {"regulator_company_id": "3301TESTCO", "regulator_start": "2026-03-02T00:00+08:00"}
    assert isinstance(build_transport(make_settings("sqlite://", tmp_path, **base)), RecordingTransport)
    assert isinstance(build_transport(make_settings("sqlite://", tmp_path, regulator_transport="file", **base)),
                      FileDropTransport)
    built = build_transport(make_settings("sqlite://", tmp_path, regulator_transport="http",
                                          regulator_url="https://platform.example.com/ipc",
                                          regulator_signing_key="k" * 32, regulator_signature_header="X-Sign", **base))
    assert isinstance(built, HttpTransport) and built.signature_header == "X-Sign"
    with pytest.raises(SettingsError, match="REGULATOR_URL"):
        build_transport(make_settings("sqlite://", tmp_path, regulator_transport="http", **base))
    production = make_settings("sqlite://", tmp_path, env="production", **base)
    with pytest.raises(SettingsError, match="ALLOW_RECORDING"):
        build_transport(production)
    assert any("only be recorded" in p for p in production.regulator_problems())
    allowed = make_settings("sqlite://", tmp_path, env="production", regulator_allow_recording=True, **base)
    assert isinstance(build_transport(allowed), RecordingTransport) and allowed.regulator_problems() == []
    assert make_settings("sqlite://", tmp_path, env="production").regulator_problems() == []  # the feed is off
