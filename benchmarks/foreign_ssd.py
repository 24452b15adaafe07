"""SSD files from the real exporters through edgecnn: a small MobileNet-style SSD
(anchors on 12x12, 6x6 and 3x3 grids of a 192 px input), trained on the shapes scenes,
then written the two ways people receive SSDs:
- as jetson-inference's pytorch-ssd writes it: ONNX from torch.onnx, outputs `scores`
  [1, N, C+1] (softmax, background first) and `boxes` [1, N, 4] (normalised corners);
- by TensorFlow's own TFLite converter, ending in the real TFLite_Detection_PostProcess
  op, the way the Object Detection API's TF2 export gets it (a function annotated with
  `experimental_implements`): a float file from a function returning the op's four
  outputs, a float file from one returning them named as the API's signature names them
  (the converter orders the two differently), and a full-integer file with uint8 input
  (the Coral style).

Each file then goes through `edgecnn info`, `eval` (the 300 held-out scenes, labels by
name), `bench` and `run` with no head flags, and edgecnn's detections are compared with
what TensorFlow's own interpreter gives for the same file on the same images.

Three stages, two environments (TensorFlow does not belong in edgecnn's):
    .venv/bin/python benchmarks/foreign_ssd.py train --out runs/ssd [--minutes 6]
    /path/to/tf-venv/bin/python benchmarks/foreign_ssd.py tflite --out runs/ssd
    .venv/bin/python benchmarks/foreign_ssd.py measure --out runs/ssd
    .venv/bin/python benchmarks/foreign_ssd.py fixture --out runs/ssd   # the tests' copy
The TensorFlow venv needs `pip install tensorflow-cpu==2.20.0 opencv-python-headless`.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

IMGSZ = 192
GRIDS = (12, 6, 3)
SIZES = ((0.08, 0.14), (0.22, 0.32), (0.45, 0.62))  # square anchor sides per grid (fraction of the input)
SCALES = (10.0, 10.0, 5.0, 5.0)  # y, x, h, w: the Object Detection API's usual box coder scales
LABELS = ("circle", "rectangle", "triangle")
MAX_DETECTIONS, SCORE_THRESHOLD, IOU_THRESHOLD = 100, 0.001, 0.6
JETSON_MEAN, JETSON_STD = 127.0, 128.0  # what jetson-inference's pytorch-ssd feeds
TF_MEAN = TF_STD = 127.5  # what the Object Detection API's SSDs take


def anchors() -> np.ndarray:
    """(N, 4) ycenter, xcenter, h, w, normalised; per cell: the two square sizes, then
    their geometric mean at aspect 2:1 and 1:2 (the order the heads' channels follow)."""
    rows = []
    for grid, (small, large) in zip(GRIDS, SIZES):
        mid = (small * large) ** 0.5
        shapes = [(small, small), (large, large), (mid / 2 ** 0.5, mid * 2 ** 0.5), (mid * 2 ** 0.5, mid / 2 ** 0.5)]
        for y in range(grid):
            for x in range(grid):
                for h, w in shapes:
                    rows.append(((y + 0.5) / grid, (x + 0.5) / grid, h, w))
    return np.array(rows, np.float32)


ANCHORS_PER_CELL = 4


# ------------------------------------------------------------------ stage 1: train (torch)

def layer_plan():
    """(kind, in, out, stride) of the backbone; features after the layers marked."""
    return [("conv", 3, 16, 2), ("dw", 16, 32, 2), ("dw", 32, 32, 1), ("dw", 32, 64, 2), ("dw", 64, 64, 1),
            ("dw", 64, 128, 2), ("dw", 128, 128, 1, "feature"), ("dw", 128, 192, 2), ("dw", 192, 192, 1, "feature"),
            ("dw", 192, 192, 2, "feature")]


def build_torch(classes: int):
    import torch
    from torch import nn

    def conv_bn(cin, cout, k, stride, groups=1):
        return [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout),
                nn.ReLU6(inplace=True)]

    class TinySsd(nn.Module):
        def __init__(self):
            super().__init__()
            self.stages, block, self.heads_in = nn.ModuleList(), [], []
            for spec in layer_plan():
                kind, cin, cout, stride = spec[:4]
                if kind == "conv":
                    block += conv_bn(cin, cout, 3, stride)
                else:
                    block += conv_bn(cin, cin, 3, stride, groups=cin) + conv_bn(cin, cout, 1, 1)
                if spec[-1] == "feature":
                    self.stages.append(nn.Sequential(*block))
                    self.heads_in.append(cout)
                    block = []
            self.classes = classes
            self.cls = nn.ModuleList(nn.Conv2d(c, ANCHORS_PER_CELL * (classes + 1), 3, 1, 1) for c in self.heads_in)
            self.box = nn.ModuleList(nn.Conv2d(c, ANCHORS_PER_CELL * 4, 3, 1, 1) for c in self.heads_in)

        def forward(self, x):
            logits, encodings = [], []
            for stage, cls, box in zip(self.stages, self.cls, self.box):
                x = stage(x)
                logits.append(cls(x).permute(0, 2, 3, 1).reshape(x.shape[0], -1, self.classes + 1))
                encodings.append(box(x).permute(0, 2, 3, 1).reshape(x.shape[0], -1, 4))
            return torch.cat(logits, 1), torch.cat(encodings, 1)

    return TinySsd()


def corners(boxes_cyxhw: np.ndarray) -> np.ndarray:
    y, x, h, w = boxes_cyxhw.T
    return np.stack([x - w / 2, y - h / 2, x + w / 2, y + h / 2], 1)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of corner boxes a (N, 4) against b (M, 4)."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), 2)
    area = lambda z: (z[:, 2] - z[:, 0]) * (z[:, 3] - z[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None] - inter + 1e-9)


def targets(boxes: np.ndarray, classes: np.ndarray, prior: np.ndarray):
    """Per anchor: class (0 background, -1 ignored) and the centre-size encoding of its
    matched box. IoU >= 0.5 is a match, < 0.4 background, and each box's best anchor is
    matched whatever its IoU."""
    label = np.zeros(len(prior), np.int64)
    encoding = np.zeros((len(prior), 4), np.float32)
    if len(boxes) == 0:
        return label, encoding
    norm = boxes / IMGSZ
    iou = iou_matrix(corners(prior), norm)
    best_box, best_iou = iou.argmax(1), iou.max(1)
    best_iou[iou.argmax(0)] = 1.0
    best_box[iou.argmax(0)] = np.arange(len(norm))
    label[(best_iou >= 0.4) & (best_iou < 0.5)] = -1
    positive = best_iou >= 0.5
    label[positive] = classes[best_box[positive]] + 1
    gt = norm[best_box]
    gy, gx = (gt[:, 1] + gt[:, 3]) / 2, (gt[:, 0] + gt[:, 2]) / 2
    gh, gw = gt[:, 3] - gt[:, 1], gt[:, 2] - gt[:, 0]
    ay, ax, ah, aw = prior.T
    encoding[:] = np.stack([(gy - ay) / ah * SCALES[0], (gx - ax) / aw * SCALES[1],
                            np.log(np.maximum(gh, 1e-6) / ah) * SCALES[2],
                            np.log(np.maximum(gw, 1e-6) / aw) * SCALES[3]], 1)
    return label, encoding


def decode_corners(encodings, prior):
    """The SSD decode in torch (what the jetson-style export carries in its graph):
    corners x1, y1, x2, y2, normalised."""
    import torch

    prior = torch.as_tensor(prior)
    y = encodings[..., 0] / SCALES[0] * prior[:, 2] + prior[:, 0]
    x = encodings[..., 1] / SCALES[1] * prior[:, 3] + prior[:, 1]
    h = torch.exp(encodings[..., 2] / SCALES[2]) * prior[:, 2]
    w = torch.exp(encodings[..., 3] / SCALES[3]) * prior[:, 3]
    return torch.stack([x - w / 2, y - h / 2, x + w / 2, y + h / 2], -1)


def stage_train(out: Path, minutes: float, seed: int) -> None:
    import torch
    import torch.nn.functional as F

    from edgecnn.data.detection import load_shapes_detection

    torch.manual_seed(seed)
    torch.set_num_threads(os.cpu_count() or 1)
    train, val = load_shapes_detection("train", size=IMGSZ), load_shapes_detection("val", size=IMGSZ)
    assert tuple(train.labels) == LABELS, train.labels
    for split, data in (("train", train), ("val", val)):  # the images the other stages read (RGB scenes as PNG)
        folder = out / "images" / split
        folder.mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(data.images):
            cv2.imwrite(str(folder / f"{i:04d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    prior = anchors()
    images = np.stack(train.images).astype(np.float32)
    labelled = [targets(b, c, prior) for b, c in zip(train.boxes, train.classes)]
    labels = torch.as_tensor(np.stack([t[0] for t in labelled]))
    encodings = torch.as_tensor(np.stack([t[1] for t in labelled]))
    flipped = [targets(np.c_[IMGSZ - b[:, 2], b[:, 1], IMGSZ - b[:, 0], b[:, 3]] if len(b) else b, c, prior)
               for b, c in zip(train.boxes, train.classes)]
    labels_flip = torch.as_tensor(np.stack([t[0] for t in flipped]))
    encodings_flip = torch.as_tensor(np.stack([t[1] for t in flipped]))
    pixels = torch.as_tensor((images - JETSON_MEAN) / JETSON_STD).permute(0, 3, 1, 2).contiguous()

    model = build_torch(len(LABELS))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    budget, started, steps, epoch = minutes * 60, time.perf_counter(), 0, 0
    batch = 32
    log = []
    while time.perf_counter() - started < budget:
        order = torch.randperm(len(pixels))
        for first in range(0, len(order) - batch + 1, batch):
            elapsed = time.perf_counter() - started
            if elapsed >= budget:
                break
            for group in optimizer.param_groups:  # cosine over the time budget
                group["lr"] = 3e-3 * 0.5 * (1 + np.cos(np.pi * elapsed / budget))
            index = order[first:first + batch]
            flip = torch.rand(len(index)) < 0.5
            x = pixels[index].clone()
            x[flip] = x[flip].flip(-1)
            y = torch.where(flip[:, None], labels_flip[index], labels[index])
            t = torch.where(flip[:, None, None], encodings_flip[index], encodings[index])
            logits, predicted = model(x)
            positive = y > 0
            loss_all = F.cross_entropy(logits.reshape(-1, len(LABELS) + 1), y.clamp(min=0).reshape(-1),
                                       reduction="none").reshape(y.shape)
            negative_loss = torch.where(y == 0, loss_all, torch.zeros_like(loss_all))
            keep = positive.sum(1, keepdim=True).clamp(min=1) * 3  # hard negatives, 3 per positive
            rank = negative_loss.argsort(1, descending=True).argsort(1)
            chosen = positive | ((rank < keep) & (y == 0))
            count = positive.sum().clamp(min=1)
            loss = (loss_all * chosen).sum() / count + \
                F.smooth_l1_loss(predicted[positive], t[positive], reduction="sum") / count
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps += 1
        epoch += 1
        log.append({"epoch": epoch, "loss": round(loss.item(), 4), "seconds": round(time.perf_counter() - started)})
        print(log[-1], flush=True)
    model.eval()
    export_jetson_onnx(model, prior, out / "ssd-jetson.onnx")
    save_folded(model, prior, out / "ssd-weights.npz")
    (out / "labels.txt").write_text("\n".join(LABELS) + "\n")
    (out / "train.json").write_text(json.dumps({"minutes": minutes, "epochs": epoch, "steps": steps,
                                                "anchors": len(prior), "log": log}, indent=1))


def export_jetson_onnx(model, prior: np.ndarray, path: Path) -> None:
    """As pytorch-ssd's onnx_export.py writes it: softmax scores and decoded corners."""
    import torch

    class Exported(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, x):
            logits, encodings = self.model(x)
            return torch.softmax(logits, -1), decode_corners(encodings, prior)

    torch.onnx.export(Exported().eval(), (torch.zeros(1, 3, IMGSZ, IMGSZ),), str(path), dynamo=False,
                      opset_version=17, input_names=["input_0"], output_names=["scores", "boxes"])


def save_folded(model, prior: np.ndarray, path: Path) -> None:
    """Every convolution with its batch norm folded in, in order, for the Keras copy."""
    from torch import nn

    arrays, index = {"anchors": prior}, 0
    for stage in model.stages:
        layers = list(stage)
        for i, layer in enumerate(layers):
            if not isinstance(layer, nn.Conv2d):
                continue
            bn = layers[i + 1]
            scale = (bn.weight / (bn.running_var + bn.eps).sqrt()).detach().numpy()
            arrays[f"w{index}"] = layer.weight.detach().numpy() * scale[:, None, None, None]
            arrays[f"b{index}"] = (bn.bias.detach().numpy() - bn.running_mean.numpy() * scale)
            arrays[f"s{index}"] = np.array([layer.stride[0], layer.groups])
            index += 1
    for name, heads in (("cls", model.cls), ("box", model.box)):
        for i, head in enumerate(heads):
            arrays[f"{name}_w{i}"] = head.weight.detach().numpy()
            arrays[f"{name}_b{i}"] = head.bias.detach().numpy()
    np.savez(path, **arrays)


# ------------------------------------------------------------- stage 2: tflite (TensorFlow)

def postprocess_signature(classes: int) -> str:
    """The `experimental_implements` text the TFLite converter turns into the
    TFLite_Detection_PostProcess custom op."""
    attrs = [("max_detections", "i", MAX_DETECTIONS), ("max_classes_per_detection", "i", 1),
             ("use_regular_nms", "b", "false"), ("nms_score_threshold", "f", SCORE_THRESHOLD),
             ("nms_iou_threshold", "f", IOU_THRESHOLD), ("y_scale", "f", SCALES[0]), ("x_scale", "f", SCALES[1]),
             ("h_scale", "f", SCALES[2]), ("w_scale", "f", SCALES[3]), ("num_classes", "i", classes)]
    text = ['name: "TFLite_Detection_PostProcess"']
    text += [f'attr {{ key: "{key}" value {{ {kind}: {value} }} }}' for key, kind, value in attrs]
    return " ".join(text)


def build_tensorflow(weights):
    """The trained network as TensorFlow ops with constant weights (nothing for the
    converter to keep as a variable), layer for layer. Its input is TensorFlow's -1..1;
    the first step turns it into what the torch model was trained on. Padding is
    explicit, as torch pads (TensorFlow's 'SAME' pads only after, on stride 2)."""
    import tensorflow as tf

    def conv(x, w, b, stride, groups):
        k = w.shape[-1]
        if k > 1:
            x = tf.pad(x, [[0, 0], [k // 2, k // 2], [k // 2, k // 2], [0, 0]])
        if groups > 1:
            x = tf.nn.depthwise_conv2d(x, tf.constant(w.transpose(2, 3, 0, 1)), [1, stride, stride, 1], "VALID")
        else:
            x = tf.nn.conv2d(x, tf.constant(w.transpose(2, 3, 1, 0)), stride, "VALID")
        return tf.nn.bias_add(x, tf.constant(b))

    plan, last_conv, count = layer_plan(), [], 0
    for spec in plan:
        count += 1 if spec[0] == "conv" else 2
        if spec[-1] == "feature":
            last_conv.append(count - 1)

    def network(image):
        x = image * (TF_STD / JETSON_STD) + (TF_MEAN - JETSON_MEAN) / JETSON_STD
        logits, encodings, index = [], [], 0
        while f"w{index}" in weights:
            stride, groups = (int(v) for v in weights[f"s{index}"])
            x = tf.nn.relu6(conv(x, weights[f"w{index}"], weights[f"b{index}"], stride, groups))
            if index in last_conv:
                level = last_conv.index(index)
                c = conv(x, weights[f"cls_w{level}"], weights[f"cls_b{level}"], 1, 1)
                logits.append(tf.reshape(c, (1, -1, len(LABELS) + 1)))
                e = conv(x, weights[f"box_w{level}"], weights[f"box_b{level}"], 1, 1)
                encodings.append(tf.reshape(e, (1, -1, 4)))
            index += 1
        return tf.concat(encodings, 1), tf.nn.softmax(tf.concat(logits, 1), -1)

    return network


def stage_tflite(out: Path) -> None:
    import tensorflow as tf

    weights = dict(np.load(out / "ssd-weights.npz"))
    network = build_tensorflow(weights)
    prior = tf.constant(weights["anchors"])

    @tf.function(experimental_implements=postprocess_signature(len(LABELS)))
    def detection_postprocess(box_encodings, class_predictions, anchors):  # noqa: ARG001 - replaced by the op
        boxes = tf.constant(0.0, tf.float32, name="boxes")
        classes = tf.constant(0.0, tf.float32, name="classes")
        scores = tf.constant(0.0, tf.float32, name="scores")
        count = tf.constant(0.0, tf.float32, name="num_detections")
        return boxes, classes, scores, count

    spec = tf.TensorSpec((1, IMGSZ, IMGSZ, 3), tf.float32, name="normalized_input_image_tensor")

    class Detector(tf.Module):
        @tf.function(input_signature=[spec])
        def tuple_outputs(self, image):
            encodings, scores = network(image)
            return detection_postprocess(encodings, scores, prior)

        @tf.function(input_signature=[spec])
        def named_outputs(self, image):
            encodings, scores = network(image)
            boxes, classes, scores, count = detection_postprocess(encodings, scores, prior)
            return {"detection_boxes": boxes, "detection_classes": classes, "detection_scores": scores,
                    "num_detections": count}

    module = Detector()
    val = sorted((out / "images" / "val").glob("*.png"))
    calib = sorted((out / "images" / "train").glob("*.png"))[:200]

    def rgb(path: Path) -> np.ndarray:
        return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)

    def representative():
        for path in calib:
            yield [((rgb(path).astype(np.float32) - TF_MEAN) / TF_STD)[None]]

    files = {}
    converter = tf.lite.TFLiteConverter.from_concrete_functions([module.tuple_outputs.get_concrete_function()],
                                                                module)
    converter.allow_custom_ops = True
    files["ssd-tuple.tflite"] = converter.convert()
    named = module.named_outputs.get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([named], module)
    converter.allow_custom_ops = True
    files["ssd-signature.tflite"] = converter.convert()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([named], module)
    converter.allow_custom_ops = True
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    files["ssd-uint8.tflite"] = converter.convert()

    reference = {}
    for name, blob in files.items():
        (out / name).write_bytes(blob)
        interpreter = tf.lite.Interpreter(model_content=blob)
        interpreter.allocate_tensors()
        given = interpreter.get_input_details()[0]
        details = interpreter.get_output_details()
        ops = {op["op_name"] for op in interpreter._get_ops_details()}  # noqa: SLF001 - the op list proves the real op
        rows = {"outputs": [(d["name"], [int(v) for v in d["shape"]]) for d in details],
                "input": [str(np.dtype(given["dtype"])), [float(v) for v in given["quantization"]]],
                "has_postprocess_op": "TFLite_Detection_PostProcess" in ops}
        order = output_roles(interpreter)
        rows["roles_in_output_order"] = order
        boxes, classes, scores, counts = [], [], [], []
        for path in val:
            pixels = rgb(path)
            feed = pixels[None] if given["dtype"] == np.uint8 else ((pixels.astype(np.float32) - TF_MEAN) / TF_STD)[None]
            interpreter.set_tensor(given["index"], feed)
            interpreter.invoke()
            by_role = {role: interpreter.get_tensor(d["index"]) for role, d in zip(order, details)}
            n = int(by_role["count"].reshape(-1)[0])
            counts.append(n)
            boxes.append(by_role["boxes"].reshape(-1, 4)[:n])
            classes.append(by_role["classes"].reshape(-1)[:n])
            scores.append(by_role["scores"].reshape(-1)[:n])
        np.savez(out / f"{name}.reference.npz", counts=np.array(counts), boxes=np.concatenate(boxes),
                 classes=np.concatenate(classes), scores=np.concatenate(scores))
        rows["detections"] = int(sum(counts))
        reference[name] = rows
        print(name, json.dumps(rows), flush=True)
    (out / "tflite.json").write_text(json.dumps({"tensorflow": tf.__version__, "files": reference}, indent=1))


def output_roles(interpreter) -> list:
    """The role of each output, in the file's output order: from the signature's output
    names where it has them, else from the tensor names, "…:k" being the function's k-th
    output in the op's own order (boxes, classes, scores, count)."""
    details = interpreter.get_output_details()
    signatures = interpreter._get_full_signature_list()  # noqa: SLF001 - names of the signature outputs
    by_index = {}
    for signature in signatures.values():
        for key, index in signature["outputs"].items():
            by_index[index] = key
    names = {"detection_boxes": "boxes", "detection_classes": "classes", "detection_scores": "scores",
             "num_detections": "count"}
    if all(by_index.get(d["index"]) in names for d in details):
        return [names[by_index[d["index"]]] for d in details]
    op_order = ["boxes", "classes", "scores", "count"]  # the function's k-th output is tensor "...:k"
    return [op_order[int(d["name"].rsplit(":", 1)[1]) if ":" in d["name"] else 0] for d in details]


# --------------------------------------------------------------- stage 3: measure (edgecnn)

def cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgecnn", *map(str, args)], capture_output=True, text=True)


def agreement(path: Path, out: Path) -> dict:
    """edgecnn's detections of the TFLite file against TensorFlow's interpreter on the same
    images, at the op's own threshold: every box within IoU 0.99, score within 0.01,
    same class. The op does not clip its boxes to the image and edgecnn does, so the
    reference is clipped as well."""
    import edgecnn
    from box_agreement import BoxAgreement
    from edgecnn.runtime.card_options import CardOptions

    reference = np.load(out / f"{path.name}.reference.npz")
    model = edgecnn.load(str(path), conf_threshold=SCORE_THRESHOLD, log=None,
                         card=CardOptions(labels=",".join(LABELS)))
    starts = np.r_[0, np.cumsum(reference["counts"])]
    images = sorted((out / "images" / "val").glob("*.png"))
    agreement = BoxAgreement()
    for i, image_path in enumerate(images):
        mine = model.predict(cv2.imread(str(image_path)))
        span = slice(starts[i], starts[i + 1])
        theirs = np.clip(reference["boxes"][span][:, [1, 0, 3, 2]] * IMGSZ, 0, IMGSZ)  # edgecnn clips to the frame
        t_scores, t_classes = reference["scores"][span], reference["classes"][span].astype(int)
        keep = t_scores >= SCORE_THRESHOLD
        agreement.add(mine, theirs[keep], t_scores[keep], t_classes[keep])
    return agreement.result()


def stage_measure(out: Path) -> None:
    results = {}
    labels = ",".join(LABELS)
    video = out / "val.avi"
    if not video.is_file():  # the held-out scenes as a short clip for `edgecnn run`
        writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30, (IMGSZ, IMGSZ))
        for path in sorted((out / "images" / "val").glob("*.png"))[:120]:
            writer.write(cv2.imread(str(path)))
        writer.release()
    for name in ("ssd-jetson.onnx", "ssd-tuple.tflite", "ssd-signature.tflite", "ssd-uint8.tflite"):
        path = out / name
        row = {}
        info = cli("info", path, "--json")
        row["info_exit"] = info.returncode
        if info.returncode == 0:
            row["info"] = json.loads(info.stdout)
        else:
            row["info_error"] = info.stderr.strip().splitlines()[-1:]
        scored = cli("eval", path, "--data", "shapes", "--labels", labels, "--json", "--plot", "")
        row["eval_exit"] = scored.returncode
        if scored.returncode == 0:
            figures = json.loads(scored.stdout)
            row["map50_95"], row["map50"] = figures["map50_95"], figures.get("map50")
        else:
            row["eval_error"] = scored.stderr.strip().splitlines()[-1:]
        records = out / f"{name}.jsonl"
        ran = cli("run", path, "--source", video, "--labels", labels, "--json", records, "--save",
                  out / f"{name}.mp4")
        row["run_exit"] = ran.returncode
        row["run_records"] = sum(1 for _ in records.open()) if records.is_file() else 0
        row["run_summary"] = ran.stderr.strip().splitlines()[-1:]
        timing = out / f"{name}.bench.jsonl"
        timing.unlink(missing_ok=True)
        benched = cli("bench", path, "--threads", "2", "--runs", "200", "--json", timing)
        row["bench_exit"] = benched.returncode
        if benched.returncode == 0:
            row["bench"] = [json.loads(line) for line in timing.read_text().splitlines()]
        else:
            row["bench_error"] = benched.stderr.strip().splitlines()[-1:]
        if name.endswith(".tflite"):
            row["agreement_with_tensorflow"] = agreement(path, out)
        results[name] = row
        print(name, json.dumps({k: v for k, v in row.items() if k not in ("info", "bench")}), flush=True)
    (out / "measure.json").write_text(json.dumps(results, indent=1))


FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "data" / "models" / "tf_ssd_uint8.tflite"
FIXTURE_SCENES = 8


def stage_fixture(out: Path) -> None:
    """The uint8 file and TensorFlow's interpreter outputs on the first held-out scenes,
    copied into the tests' data: a real converter's SSD that the tests decode without
    TensorFlow."""
    import shutil

    shutil.copyfile(out / "ssd-uint8.tflite", FIXTURE)
    reference = np.load(out / "ssd-uint8.tflite.reference.npz")
    rows = int(reference["counts"][:FIXTURE_SCENES].sum())
    np.savez_compressed(FIXTURE.with_suffix(".reference.npz"), counts=reference["counts"][:FIXTURE_SCENES],
                        boxes=reference["boxes"][:rows], classes=reference["classes"][:rows],
                        scores=reference["scores"][:rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stage", choices=("train", "tflite", "measure", "fixture"))
    parser.add_argument("--out", default="runs/ssd")
    parser.add_argument("--minutes", type=float, default=6.0, help="training time")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.stage == "train":
        stage_train(out, args.minutes, args.seed)
    elif args.stage == "tflite":
        stage_tflite(out)
    elif args.stage == "measure":
        stage_measure(out)
    else:
        stage_fixture(out)


if __name__ == "__main__":
    main()
