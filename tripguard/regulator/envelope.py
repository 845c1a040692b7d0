"""The platform's envelope: an `OTIpcList` of `OTIpc` entries (reference §2, [P]).

`pack` puts each upload in an entry of its own, in the repeated field of its type (the field numbered by
the type's code), the entry naming the company, the source and the type; the upload's body is parsed into
the type's generated message class, so a body that is not that message is refused here, never sent.
`unpack` is the receiver's side (tests, the outage drill's receiver).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from google.protobuf.message import DecodeError, Message

from tripguard.regulator.contract import Upload
from tripguard.regulator.proto import otipc_pb2

KINDS: tuple[str, ...] = tuple(otipc_pb2.IpcType.keys())  # the 32 upload types, by name


class BadUpload(ValueError):
    """An upload whose kind is not a type, or whose body is not a complete message of its type."""


@cache
def message_class(kind: str) -> type[Message]:
    """The generated class of upload type `kind` (the message type of OTIpc's field of that name)."""
    if kind not in KINDS:
        raise BadUpload(f"no upload type {kind!r}")
    described = otipc_pb2.OTIpc.DESCRIPTOR.fields_by_name[kind].message_type
    assert described is not None  # every OTIpc field past the third is a message list
    cls: type[Message] = getattr(otipc_pb2, described.name)
    return cls


def code(kind: str) -> int:
    """The type's IpcType code (0x1001…), also its field number in OTIpc."""
    message_class(kind)
    return otipc_pb2.IpcType.Value(kind)


def parse(kind: str, body: bytes, *, partial: bool = False) -> Message:
    """The message in `body`; with `partial`, one that may lack required fields (`missing` names them)."""
    message = message_class(kind)()
    try:
        if partial:
            message.MergeFromString(body)
        else:
            message.ParseFromString(body)
    except DecodeError as error:
        raise BadUpload(f"{kind}: {error}") from error
    if not partial and not message.IsInitialized():
        raise BadUpload(f"{kind}: missing required fields {', '.join(_unset(message))}")
    return message


def _unset(message: Message) -> list[str]:
    return [f.name for f in message.DESCRIPTOR.fields if f.is_required and not message.HasField(f.name)]


def missing(kind: str, body: bytes) -> list[str]:
    """The required fields `body` leaves unset: the upload cannot be sent until its source fills them."""
    return _unset(parse(kind, body, partial=True))


def pack(uploads: Iterable[Upload], *, company_id: str, source: str) -> bytes:
    """The serialized `OTIpcList` of `uploads`, one `OTIpc` entry each, in order. Raises `BadUpload` for an
    unknown type, a body that is not its type's message, or one missing a required field."""
    batch = otipc_pb2.OTIpcList()
    for upload in uploads:
        entry = batch.otpic.add()
        entry.CompanyId, entry.Source = company_id, source
        entry.IPCType = code(upload.kind)  # type: ignore[assignment]
        getattr(entry, upload.kind).append(parse(upload.kind, upload.body))
    return batch.SerializeToString()


def unpack(data: bytes) -> list[tuple[str, Message]]:
    """The (type, message) pairs of a serialized `OTIpcList`, in order; each entry's messages of its type."""
    batch = otipc_pb2.OTIpcList()
    try:
        batch.ParseFromString(data)
    except DecodeError as error:
        raise BadUpload(str(error)) from error
    pairs: list[tuple[str, Message]] = []
    for entry in batch.otpic:
        kind = otipc_pb2.IpcType.Name(entry.IPCType)
        pairs.extend((kind, message) for message in getattr(entry, kind))
    return pairs
