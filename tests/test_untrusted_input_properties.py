"""Property-based tests (hypothesis) of the parsers that read what anyone may have written:
model files (the ONNX wire reader, the TFLite flatbuffer and metadata readers, the zip
other exporters append, the card inside), exporter metadata values, and URIs (the
redaction, publish URIs, the source option grammar). Random or mutated input must either
parse or raise the project's one-line UserError: never another exception, never a hang.
The parsers are torch-free; these need hypothesis (the `test` extra), which the
device's runtime venv lacks, so they are not marked runtime."""
import pytest
import io
import json
import zipfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgecnn.assets import RUNTIME_INT8
from edgecnn.core.card import ModelCard
from edgecnn.core.errors import UserError
from edgecnn.core.redact import MASK, has_credentials, redact, redact_uri
from edgecnn.runtime import exporter_metadata, onnx_wire, tflite_wire
from edgecnn.runtime.integrity import weights_digest
from edgecnn.runtime.model_file import read_tflite_card
from edgecnn.runtime.publishers import parse_uri
from edgecnn.runtime.sources import source_types, split_query
from runtime_fixtures import MODELS

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SMALL_TFLITE = (MODELS / "float16_conv.tflite").read_bytes()
SMALL_ONNX = (MODELS / "int8_io.onnx").read_bytes()
# the card region of a real file, so mutations reach the card parser too
BUNDLED = RUNTIME_INT8.read_bytes()


def accepted(call, *args):
    """Run a parser: it returns, or raises UserError with a one-line message."""
    try:
        return call(*args)
    except UserError as exc:
        assert "\n" not in str(exc) and str(exc)
        return None


@st.composite
def mutated(draw, original: bytes):
    """`original` with a few bytes overwritten, a slice cut out, or cut short."""
    data = bytearray(original)
    for _ in range(draw(st.integers(0, 8))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    kind = draw(st.sampled_from(["flip", "cut", "truncate"]))
    if kind == "cut":
        start = draw(st.integers(0, len(data) - 1))
        del data[start:start + draw(st.integers(1, 64))]
    elif kind == "truncate":
        data = data[:draw(st.integers(0, len(data)))]
    return bytes(data)


# ------------------------------------------------------------ ONNX wire format

ONNX_READERS = [onnx_wire.onnx_op_counts, onnx_wire.metadata_props, onnx_wire.element_types,
                onnx_wire.io_quantization, lambda data: weights_digest(data, "onnx")]


@FAST
@given(st.binary(max_size=512))
def test_onnx_readers_on_random_bytes(data):
    for reader in ONNX_READERS:
        accepted(reader, data)


@FAST
@given(mutated(SMALL_ONNX))
def test_onnx_readers_on_mutated_files(data):
    for reader in ONNX_READERS:
        accepted(reader, data)


@FAST
@given(st.lists(st.tuples(st.integers(1, 20), st.binary(max_size=40)), max_size=12))
def test_onnx_fields_of_well_formed_messages_read_back(entries):
    """Length-delimited fields written by the rules come back as written."""
    def varint(value):
        out = bytearray()
        while True:
            out.append((value & 0x7F) | (0x80 if value > 0x7F else 0))
            value >>= 7
            if not value:
                return bytes(out)

    message = b"".join(varint(number << 3 | 2) + varint(len(value)) + value for number, value in entries)
    assert [(n, bytes(v)) for n, w, v in onnx_wire.fields(message)] == entries


# ------------------------------------------------------------ TFLite flatbuffer and card

def read_tflite(data):
    graph = accepted(tflite_wire.read_graph, data)
    if graph is not None:
        graph.outputs_in_model_order(), graph.dequantized_types()
    accepted(tflite_wire.metadata_indices, data)
    accepted(tflite_wire.buffer_spans, data)
    accepted(tflite_wire.metadata_buffer, data, "edgecnn_card")
    accepted(read_tflite_card, data)
    accepted(weights_digest, data, "tflite")


@FAST
@given(st.binary(max_size=512))
def test_tflite_readers_on_random_bytes(data):
    read_tflite(data)
    read_tflite(data[:4] + b"TFL3" + data[8:])  # past the identifier check


@FAST
@given(mutated(SMALL_TFLITE))
def test_tflite_readers_on_mutated_files(data):
    read_tflite(data)


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_a_mutated_card_inside_a_real_file_is_read_or_refused_in_one_line(data):
    start, end = tflite_wire.buffer_spans(BUNDLED)[tflite_wire.metadata_indices(BUNDLED)["edgecnn_card"]]
    card = bytearray(BUNDLED[start:end])
    for _ in range(data.draw(st.integers(1, 6))):
        card[data.draw(st.integers(0, len(card) - 1))] = data.draw(st.integers(0, 255))
    read_tflite(BUNDLED[:start] + bytes(card) + BUNDLED[end:])


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=20)
CARD_FIELDS = ["task", "labels", "input_size", "layout", "color", "mean", "std", "precision", "head", "quantization",
               "metrics", "schema", "weights_digest"]


@pytest.mark.slow  # about 4-10 s: in CI, left out of the inner loop
@FAST
@given(st.dictionaries(st.sampled_from(CARD_FIELDS), JSON, max_size=len(CARD_FIELDS)))
def test_card_json_of_any_shape_is_a_card_or_one_line(fields):
    accepted(ModelCard.from_json, json.dumps({"task": "detect", "labels": ["a"], "input_size": [8, 8], **fields}))


@FAST
@given(st.text(max_size=200))
def test_card_text_that_is_not_json_is_one_line(text):
    accepted(ModelCard.from_json, text)


# ------------------------------------------------------------ metadata other exporters write

@FAST
@given(st.dictionaries(st.sampled_from(["names", "imgsz", "stride", "task", "end2end", "other"]),
                       JSON | st.text(max_size=40), max_size=6))
def test_exporter_metadata_of_any_shape_reads_as_fields_or_nothing(raw):
    fields = exporter_metadata.parse_fields(raw)
    assert set(fields) <= {"names", "imgsz", "stride", "task", "end2end", "exporter"}
    exporter_metadata.onnx_metadata({k: json.dumps(v) for k, v in raw.items()}, "edgecnn_card")


def zipped(members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return buffer.getvalue()


@FAST
@given(st.dictionaries(st.sampled_from(["metadata.json", "labels.txt", "x.bin"]), st.text(max_size=200), max_size=3),
       st.data())
def test_appended_zips_whole_mutated_or_cut_read_as_metadata_or_nothing(members, data):
    archive = zipped(members)
    assert isinstance(exporter_metadata.appended_zip(SMALL_TFLITE + archive), dict)
    damaged = data.draw(mutated(archive)) if archive else archive
    assert isinstance(exporter_metadata.appended_zip(SMALL_TFLITE + damaged), dict)


def test_an_appended_zip_that_would_inflate_beyond_its_bound_is_not_read():
    bomb = zipped({"metadata.json": json.dumps({"names": ["a"], "pad": " " * (exporter_metadata.MAX_MEMBER + 1)})})
    assert len(bomb) < exporter_metadata.MAX_MEMBER // 100  # compresses well; would inflate past the bound
    assert exporter_metadata.appended_zip(SMALL_TFLITE + bomb) == {}
    small = zipped({"metadata.json": json.dumps({"names": ["a"], "imgsz": [64, 64], "task": "detect"})})
    assert exporter_metadata.appended_zip(SMALL_TFLITE + small)["names"] == ["a"]


# ------------------------------------------------------------ URIs

@FAST
@given(st.text(max_size=200))
def test_redaction_and_credential_checks_take_any_text(text):
    assert isinstance(redact(text), str) and isinstance(redact_uri(text), str)
    assert isinstance(has_credentials(text), bool)
    assert redact(redact(text)) == redact(text)


SECRET = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="%"), min_size=1, max_size=30)
USER = st.text(st.characters(whitelist_categories=["Ll", "Lu", "Nd"]), min_size=1, max_size=12)


@FAST
@given(USER, SECRET, st.sampled_from(["mqtt", "mqtts", "udp", "zmq+tcp"]), st.integers(1, 65535))
def test_a_publish_password_of_any_characters_is_read_whole_and_never_shown(user, password, scheme, port):
    uri = f"{scheme}://{user}:{password}@broker.lan:{port}/robot"
    address = parse_uri(uri)
    assert (address.username, address.password, address.host, address.port) == (user, password, "broker.lan", port)
    shown = f"{scheme}://{user}:{MASK}@broker.lan:{port}/robot"  # all of the password replaced, whatever it holds
    assert address.text == redact_uri(uri) == shown


@FAST
@given(st.text(max_size=120))
def test_publish_uris_of_any_text_parse_or_are_one_line(text):
    for uri in (text, "mqtt://" + text, "udp://user:" + text + "@host:9"):
        address = accepted(parse_uri, uri)
        if address is not None:
            assert MASK in address.text or not has_credentials(uri) or address.password is None


@FAST
@given(st.text(max_size=120), st.lists(st.tuples(st.text(max_size=12), st.text(max_size=12)), max_size=5))
def test_the_source_option_grammar_takes_any_text(base, pairs):
    query = "&".join(f"{key}={value}" for key, value in pairs)
    for text in (base, f"{base}?{query}"):
        target, options = split_query(text)
        assert isinstance(target, str) and isinstance(options, list)
        for kind in source_types():
            accepted(kind.split, text)
