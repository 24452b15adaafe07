"""The model card a run uses: the one embedded in the file, or one built from
command-line flags for third-party models that carry none (flags given with a carded
model override its fields).

Whatever can be read off the model's input tensor (layout, input size, grey or colour)
is; what cannot (task, normalisation, labels, a detector's output format) must be
given, and the error names the missing flags. The card is then checked against the
model's input so a mismatch is one clear line instead of a backend crash.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List, Optional, Tuple

from edgecnn.core.card import ModelCard
from edgecnn.core.errors import UserError
from edgecnn.core.task import all_tasks, get_task, task_names
from edgecnn.runtime.heads import head_names, parse_head_flag


@dataclass
class CardOptions:
    """What the flags say about a model that carries no card (None: not given): the
    one type `run`, `eval`, `quantize` and `convert` all read."""

    task: Optional[str] = None
    input_size: Optional[str] = None  # "N" or "HxW"
    layout: Optional[str] = None
    mean: Optional[str] = None  # "M" or "M,M,M", pixel units
    std: Optional[str] = None
    labels: Optional[str] = None  # a file (one label a line) or "a,b,c"
    color: Optional[str] = None  # rgb | bgr | gray (default: read off the input's channels, RGB for three)
    head: Optional[str] = None  # "NAME[:ARGUMENTS]", e.g. "ltrb-sigmoid:8,16,32" (edgecnn.runtime.heads)
    preset: Optional[str] = None  # a name in PRESETS: the usual mean/std of a family of models
    mask_threshold: Optional[float] = None  # a one-channel segmenter's probability threshold


# mean/std (pixel units) that families of third-party models are trained with
PRESETS = {"imagenet": ((123.675, 116.28, 103.53), (58.395, 57.12, 57.375)),  # torchvision, timm
           "unit": ((0.0,), (255.0,)),  # pixel / 255 (Ultralytics, many Keras exports)
           "symmetric": ((127.5,), (127.5,))}  # -1..1 (TensorFlow's MobileNets, edgecnn's own)


def parse_input_size(text: str) -> Tuple[int, int]:
    parts = text.lower().replace("*", "x").split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise UserError(f"--input-size must be N or HxW, got {text!r}") from None
    if len(values) not in (1, 2) or min(values) < 1:
        raise UserError(f"--input-size must be N or HxW with positive sizes, got {text!r}")
    return (values[0], values[0]) if len(values) == 1 else (values[0], values[1])


def parse_floats(text: str, flag: str) -> Tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise UserError(f"{flag} must be a number or three comma-separated numbers, got {text!r}") from None
    if len(values) not in (1, 3):
        raise UserError(f"{flag} takes 1 or 3 values, got {len(values)}")
    return values


def parse_labels(text: str) -> List[str]:
    if os.path.isfile(text):
        with open(text, encoding="utf-8") as handle:
            labels = [line.strip() for line in handle if line.strip()]
        if not labels:
            raise UserError(f"--labels file {text} is empty")
        return labels
    labels = [label.strip() for label in text.split(",") if label.strip()]
    if not labels:
        raise UserError("--labels needs a file or a comma-separated list")
    return labels


def input_geometry(shape: Tuple[int, ...]) -> Tuple[Optional[str], Optional[Tuple[int, int]], Optional[int]]:
    """(layout, (h, w), channels) as far as a 4-D input shape tells them (None: unknown)."""
    if len(shape) != 4:
        return None, None, None
    first, last = shape[1] in (1, 3), shape[3] in (1, 3)
    if first and not last:
        layout = "nchw"
    elif last and not first:
        layout = "nhwc"
    else:
        return None, None, None
    height, width = (shape[2], shape[3]) if layout == "nchw" else (shape[1], shape[2])
    channels = shape[1] if layout == "nchw" else shape[3]
    size = (height, width) if height > 0 and width > 0 else None
    return layout, size, channels


def resolve_card(file_card: Optional[ModelCard], options: CardOptions, input_shape: Tuple[int, ...],
                 model_name: str, facts=None) -> ModelCard:
    """The card to run with; UserError naming the missing flags when there is none.
    facts (edgecnn.runtime.recognition.FileFacts of a file without a card): a detector
    whose layout a head recognises needs no flags; flags given override what it read."""
    layout, size, channels = input_geometry(tuple(input_shape))
    given = {}
    if options.preset is not None:
        if options.preset not in PRESETS:
            raise UserError(f"unknown --preset {options.preset!r}; known: {', '.join(PRESETS)}")
        given["mean"], given["std"] = PRESETS[options.preset]
    if options.task is not None:
        get_task(options.task)  # an unknown name: one line listing the known tasks
        given["task"] = options.task
    if options.input_size is not None:
        given["input_size"] = parse_input_size(options.input_size)
    if options.layout is not None:
        given["layout"] = options.layout
    if options.mean is not None:
        given["mean"] = parse_floats(options.mean, "--mean")
    if options.std is not None:
        given["std"] = parse_floats(options.std, "--std")
    if options.labels is not None:
        given["labels"] = parse_labels(options.labels)
    if options.head is not None:
        given["head"] = parse_head_flag(options.head)
    recognised = None
    if file_card is None and facts is not None:
        recognised = _recognised_card(facts, given, model_name)
    if file_card is not None:
        if options.color:
            given["color"] = options.color
        card = file_card.replace(**given) if given else file_card
        card.validate()
    elif recognised is not None:
        card = recognised
        if options.color:
            card = card.replace(color=options.color)
    else:
        task = given.get("task")
        needed = {f"--task ({'|'.join(task_names())})": task is None,
                  "--input-size": "input_size" not in given and size is None,
                  "--layout": "layout" not in given and layout is None,
                  "--mean": "mean" not in given, "--std": "std" not in given,
                  "--labels": "labels" not in given}
        missing = [flag for flag, is_missing in needed.items() if is_missing]
        if task is not None:
            missing += get_task(task).missing_flags(given)
        claimed = [t for t in all_tasks() if t.recognises_outputs(facts.output_shapes)] if facts is not None else []
        if task is None and len(claimed) == 1:  # outputs no head claims, whose shapes tell the task
            task = claimed[0].name
            missing = [flag for flag in missing if not flag.startswith("--task") and flag != "--labels"]
            given.setdefault("labels", claimed[0].labels_from_outputs(facts.output_shapes))
        if missing:
            seen = (f" (its outputs {facts.output_shapes} fit no detector layout known without flags; "
                    f"--head names one: {', '.join(head_names())})") if facts is not None else ""
            missing = [f"{flag} (or --preset {'|'.join(PRESETS)})" if flag == "--mean" else flag for flag in missing]
            raise UserError(f"{model_name} has no model card; give {', '.join(missing)}{seen}")
        color = options.color or ("gray" if channels == 1 else "rgb")
        card = ModelCard(task=task, labels=given["labels"], input_size=given.get("input_size", size),
                         layout=given.get("layout", layout), color=color, mean=given["mean"], std=given["std"],
                         head=given.get("head", {}))
    if options.mask_threshold is not None:
        card = with_mask_threshold(card, options.mask_threshold)
    check_input(card, tuple(input_shape), model_name)
    return card


def with_mask_threshold(card: ModelCard, threshold: float) -> ModelCard:
    """A one-channel probability map (person, text region) labels a pixel 'object' at or
    above the threshold; the card keeps it in its head, beside the preprocessing."""
    if not get_task(card.task).has_masks:
        raise UserError(f"--mask-threshold is for segmenters; this model's task is {card.task}")
    if not 0 < threshold < 1:
        raise UserError(f"--mask-threshold is a probability between 0 and 1, got {threshold}")
    return card.replace(head={**card.head, "threshold": float(threshold)})


def _recognised_card(facts, given: dict, model_name: str) -> Optional[ModelCard]:
    """The card of a file a head recognises, the flags given laid over what the head read."""
    from edgecnn.runtime.recognition import recognise_file

    fields = recognise_file(facts, model_name, given.get("head"))
    if fields is None or given.get("task", fields["task"]) != fields["task"]:
        return None  # not recognised, or --task asks for another reading than the head's
    fields.update({k: v for k, v in given.items() if k != "head"})
    if "labels" in given:
        from edgecnn.runtime.heads import get_head

        fields["labels"] = get_head(fields["head"]["format"]).labels_given(given["labels"])
    if not fields.get("labels"):
        raise UserError(f"{model_name}: its {fields['head']['format']} outputs {facts.output_shapes} do not "
                        f"say how many classes there are and the file names none; give --labels FILE|a,b,c")
    return ModelCard(**fields)


def expected_input_shape(card: ModelCard) -> Tuple[int, int, int, int]:
    height, width = card.input_size
    if card.layout == "nchw":
        return (1, card.channels, height, width)
    return (1, height, width, card.channels)


def check_input(card: ModelCard, input_shape: Tuple[int, ...], model_name: str) -> None:
    """The blob the card makes must be what the model takes."""
    expected = expected_input_shape(card)
    fits = len(input_shape) == 4 and all(want < 0 or want == got for want, got in zip(input_shape, expected))
    if not fits:
        height, width = card.input_size
        raise UserError(f"{model_name}: the model takes input {tuple(input_shape)} but its card says "
                        f"{card.layout} {height}x{width} with {card.channels} channel(s) {expected}; "
                        f"fix the card or override with --input-size/--layout")
