"""The config file reader takes untrusted text: whatever a file holds, it loads or gives
one of edgecnn's one-line errors, never another exception."""
import string

from hypothesis import HealthCheck, given, settings, strategies as st

from edgecnn.core.errors import UserError

KEYS = ["cameras", "model", "models", "source", "track", "json", "save", "max_frames", "records", "masks", "serve",
        "publish", "path", "backend", "conf", "front", "rear", "zones", "clips", "health", "strict"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=True),
                    st.text(string.printable, max_size=20), st.sampled_from(["demo", "camera:0", "x.tflite",
                                                                              "rtsp://u:p@h/x"]))
documents = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)), max_leaves=25)


def load(tmp_path_factory, text: str):
    from edgecnn.runtime.config import check_plan, load_config

    path = tmp_path_factory.mktemp("config") / "c.yaml"
    path.write_text(text)
    try:
        check_plan(load_config(str(path)))
    except UserError as exc:
        assert "\n" not in str(exc).strip()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(documents)
def test_any_document_loads_or_is_one_line(tmp_path_factory, document):
    import yaml

    load(tmp_path_factory, yaml.safe_dump(document))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(string.printable + "{}[]:-'\"\t\n ", max_size=200))
def test_any_text_loads_or_is_one_line(tmp_path_factory, text):
    load(tmp_path_factory, text)
