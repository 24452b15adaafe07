"""Make the runtime's bundled models: the bundled shapes detector checkpoint converted
to an fp32 .tflite file and to a full-int8 .tflite file, each with its model card.

The device runtime imports no torch, so it cannot run the .pt checkpoint; this script
(which needs the `convert` extra) writes edgecnn/assets/shapes_detector.tflite and
checks that LiteRT reproduces the PyTorch outputs on a real scene, then converts the
int8 file through `edgecnn convert`'s gate (box convolutions kept float, as in
RESULTS "Shapes detector: int8 and conversion"): the int8 file is bundled only when it
stays within the budget, and its card carries the measured drop. `edgecnn run` with no
model picks whichever bundled file that passed is fastest on the device
(edgecnn/runtime/bundled.py).

    python benchmarks/assets/runtime_bundle.py [--out PATH] [--int8-out PATH]
    python benchmarks/assets/runtime_bundle.py --cards-only

--cards-only writes the cards of the bundled files again (today's card format, with
the digest of their weights) without converting: every buffer but the card's keeps
its bytes, checked here, so the files compute exactly what they did.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def convert_detector(out: Path) -> float:
    """Convert and embed the card; returns the largest absolute output difference
    between PyTorch and LiteRT on one synthetic scene."""
    import litert_torch
    import numpy as np
    import torch

    from converters.card_embed import embed_tflite
    from edgecnn.assets import SHAPES_DETECTOR
    from edgecnn.core.atomic import write_bytes_atomic
    from edgecnn.core.files import file_hash
    from edgecnn.training.checkpoint import load_model
    from edgecnn.data.detection import shapes_scene
    from edgecnn.runtime.backends import open_backend
    from edgecnn.core.preprocess import preprocess

    model, card, _ = load_model(SHAPES_DETECTOR)
    height, width = card.input_size
    sample = (torch.zeros(1, card.channels, height, width),)
    with torch.no_grad():
        edge = litert_torch.convert(model.eval(), sample)
    tmp = out.with_suffix(".raw.tflite")
    edge.export(str(tmp))
    card = card.replace(precision="fp32", source_hash=card.source_hash or file_hash(SHAPES_DETECTOR))
    write_bytes_atomic(out, embed_tflite(tmp.read_bytes(), card))
    tmp.unlink()

    image = shapes_scene(0, "val", 0, width)[0]
    blob = preprocess(image, card)
    with torch.no_grad():
        expected = [t.numpy() for t in model(torch.from_numpy(blob))]
    got = open_backend(str(out)).infer(blob)
    return max(float(np.abs(e - g).max()) for e, g in zip(expected, got))


def convert_int8(out: Path) -> dict:
    """The gated int8 conversion; returns its report (GateRefused leaves nothing)."""
    import shutil
    import tempfile

    from edgecnn.assets import SHAPES_DETECTOR
    from converters.convert import ConvertOptions, convert

    with tempfile.TemporaryDirectory() as staging:
        options = ConvertOptions(to="tflite", precision="int8", out=staging,
                                 float_layers=["heads.0.box", "heads.1.box", "heads.2.box"])
        summary, = convert(str(SHAPES_DETECTOR), options)
        shutil.move(summary["file"], out)
    return summary


def rewrite_cards(paths) -> None:
    """Embed each file's card again (with its weights digest); refuse to write a file
    whose buffers other than the card's would change."""
    from converters.card_embed import embed_tflite
    from edgecnn.core.atomic import write_bytes_atomic
    from edgecnn.runtime.model_file import CARD_KEY, read_tflite_card
    from edgecnn.runtime.tflite_wire import buffer_spans, metadata_indices

    def weights(data: bytes) -> list:
        card = metadata_indices(data).get(CARD_KEY)
        return [data[start:end] for index, (start, end) in enumerate(buffer_spans(data)) if index != card]

    for path in paths:
        data = Path(path).read_bytes()
        written = embed_tflite(data, read_tflite_card(data))
        if weights(written) != weights(data):
            sys.exit(f"{path}: rewriting the card would change other buffers: not written")
        write_bytes_atomic(path, written)
        print(f"{path}: card rewritten, weights digest {read_tflite_card(written).weights_digest}")


def main() -> None:
    from edgecnn.assets import RUNTIME_FP32, RUNTIME_INT8

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(RUNTIME_FP32))
    parser.add_argument("--int8-out", default=str(RUNTIME_INT8))
    parser.add_argument("--cards-only", action="store_true", help="rewrite the cards of --out and --int8-out, "
                        "keeping their weights")
    args = parser.parse_args()
    if args.cards_only:
        rewrite_cards([args.out, args.int8_out])
        return
    out = Path(args.out)
    difference = convert_detector(out)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB); max |torch - litert| = {difference:.2e}")
    if difference > 1e-3:
        sys.exit("LiteRT output differs from PyTorch: not bundling")
    int8_out = Path(args.int8_out)
    gate = convert_int8(int8_out)["gate"]
    print(f"wrote {int8_out} ({int8_out.stat().st_size / 1e6:.2f} MB); {gate['metric']} drop "
          f"{gate['drop']:.2f} points (budget {gate['max_drop']:.2f})")


if __name__ == "__main__":
    main()
