"""What ties a model card to the weights beside it: a digest of the file's tensor data,
written into the card by the converters when they embed it and checked when the file
loads. Without it a file whose weights were changed or corrupted after conversion runs
(a flipped byte in a detector's weights scores every box 1.0) and still shows the
card's accuracy.

    TFLite  sha256 over every buffer except the metadata buffer holding the card (the
            table of their indices and lengths, then their bytes): the weights, and
            nothing the card's own rewriting changes (the flatbuffer's tables move when
            it is packed again).
    ONNX    sha256 over the graph (ModelProto field 7, each occurrence as its length
            and bytes): the initializers hold the weights, and the nodes using them
            are covered too; the card lives outside it, in metadata_props. Weights an
            ONNX file keeps in external data files are not covered.

Reading the file again costs a few milliseconds at load (benchmarks/verify_results.md).
A process that loads the same file again (a reload, a second camera's model) does not
hash it again while the file is the one it verified: same device, inode, size,
modification and change times (any write to the file moves its change time, which no
unprivileged program can set back).
"""
from __future__ import annotations

import hashlib
import os
import struct
import threading
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from edgecnn.core.card import ModelCard
from edgecnn.core.errors import UserError
from edgecnn.runtime.model_file import CARD_KEY, model_format

PREFIX = "sha256:"
MATCH, MISMATCH, NOT_RECORDED, NO_CARD = "match", "mismatch", "not recorded", "no card"


def tflite_weights_digest(data: bytes) -> str:
    from edgecnn.runtime.tflite_wire import buffer_spans, metadata_indices

    if len(data) < 8 or data[4:8] != b"TFL3":
        raise UserError("not a TFLite model (no TFL3 identifier): corrupt or not a .tflite file")
    card_buffer = metadata_indices(data).get(CARD_KEY)
    hashed = [(index, start, end) for index, (start, end) in enumerate(buffer_spans(data)) if index != card_buffer]
    # first the table of (index, length), then the bytes: one call per buffer that holds any
    digest = hashlib.sha256(b"".join(struct.pack("<IQ", index, end - start) for index, start, end in hashed))
    view = memoryview(data)
    for _, start, end in hashed:
        if end > start:
            digest.update(view[start:end])
    return PREFIX + digest.hexdigest()


def onnx_weights_digest(data: bytes) -> str:
    from edgecnn.runtime.onnx_wire import GRAPH, fields

    digest = hashlib.sha256()
    graphs = 0
    try:
        for number, wire, value in fields(memoryview(data)):
            if number == GRAPH and wire == 2:
                digest.update(struct.pack("<Q", len(value)))
                digest.update(value)
                graphs += 1
    except ValueError as exc:
        raise UserError(f"corrupt ONNX file: {exc}") from None
    if not graphs:
        raise UserError("corrupt ONNX file: it holds no graph")
    return PREFIX + digest.hexdigest()


def weights_digest(data: bytes, fmt: str) -> str:
    """The digest of a model file's bytes ('tflite' or 'onnx') as a card records it."""
    return tflite_weights_digest(data) if fmt == "tflite" else onnx_weights_digest(data)


@dataclass
class WeightsCheck:
    """How a file's weights compare with its card: status is match, mismatch, not
    recorded (a card from before digests) or no card."""

    status: str
    recorded: Optional[str]
    computed: str


_VERIFIED: Dict[Tuple[int, ...], str] = {}  # the file's identity when hashed -> its digest, in this process
_VERIFIED_LOCK = threading.Lock()


def _identity(handle) -> Tuple[int, ...]:
    st = os.fstat(handle.fileno())
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def check_weights(path: str, card: Optional[ModelCard]) -> WeightsCheck:
    """Compute the digest of `path` and compare it with `card`'s (the card embedded in it)."""
    fmt = model_format(path)
    try:
        with open(path, "rb") as handle:
            identity = _identity(handle)
            with _VERIFIED_LOCK:
                computed = _VERIFIED.get(identity)
            data = handle.read() if computed is None else b""
    except OSError as exc:
        raise UserError(f"{path}: cannot read model: {exc.strerror or exc}") from None
    if computed is None:
        try:
            computed = weights_digest(data, fmt)
        except UserError as exc:
            raise UserError(f"{path}: {exc}") from None
        with _VERIFIED_LOCK:
            _VERIFIED[identity] = computed
    recorded = card.weights_digest if card is not None else None
    if card is None:
        status = NO_CARD
    elif recorded is None:
        status = NOT_RECORDED
    else:
        status = MATCH if recorded == computed else MISMATCH
    return WeightsCheck(status, recorded, computed)


def verify_weights(path: str, card: Optional[ModelCard]) -> WeightsCheck:
    """check_weights, with a mismatch as one line naming the file (exit code 2)."""
    check = check_weights(path, card)
    if check.status == MISMATCH:
        raise UserError(f"{os.fspath(path)}: its weights do not match the digest in its model card (changed or "
                        f"corrupted after conversion); --no-verify (verify=False) runs it anyway")
    return check
