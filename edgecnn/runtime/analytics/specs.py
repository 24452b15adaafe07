"""Zones and lines as people write them: on the command line for one camera,

    --zone dock=0.1,0.5,0.9,0.5,0.9,1,0.1,1:labels=person,car,min_time=1,dwell=30
    --line door=100,200,500,200:in=right,labels=person

and in a config file's camera (or top-level, naming its camera),

    zones:
      dock: {points: "0.1,0.5 0.9,0.5 0.9,1 0.1,1", labels: [person], min_time: 1, dwell: 30}
    lines:
      door: {points: "100,200 500,200", in: right}

Coordinates are frame pixels, or fractions of the frame when every value is within
0..1 (`fractions: true|false` says it outright). Every mistake is one line naming the
zone or line.
"""
from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

from edgecnn.core.errors import UserError
from edgecnn.runtime.analytics.geometry import parse_points
from edgecnn.runtime.analytics.lines import Line
from edgecnn.runtime.analytics.zones import Zone

ZONE_OPTIONS = {"labels", "anchor", "min_time", "dwell", "dwell_repeat", "fractions"}
LINE_OPTIONS = {"labels", "anchor", "in", "margin", "margin_fraction", "fractions"}


def _points(value: Any, owner: str) -> Tuple[Tuple[float, float], ...]:
    """'x,y x,y ...', 'x1,y1,x2,y2,...' or [[x, y], ...] -> points."""
    if isinstance(value, str):
        text = value.strip()
        if " " not in text and ";" not in text:  # x1,y1,x2,y2,... (the command line's form)
            numbers = [part for part in text.split(",") if part.strip()]
            if len(numbers) % 2:
                raise UserError(f"{owner}: {len(numbers)} numbers is not x,y pairs: {value!r}")
            text = " ".join(f"{numbers[i]},{numbers[i + 1]}" for i in range(0, len(numbers), 2))
        return parse_points(text, owner)
    if isinstance(value, (list, tuple)) and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in value):
        try:
            return tuple((float(x), float(y)) for x, y in value)
        except (TypeError, ValueError):
            raise UserError(f"{owner}: points must be numbers, got {value!r}") from None
    raise UserError(f"{owner}: points are 'x,y x,y ...' or a list of [x, y], got {value!r}")


def _fractions(points, given: Any) -> bool:
    if given is not None:
        if not isinstance(given, bool):
            raise UserError(f"fractions is true or false, got {given!r}")
        return given
    return all(0.0 <= v <= 1.0 for point in points for v in point)


def _labels(value: Any) -> Tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(label.strip() for label in value.replace("+", ",").split(",") if label.strip())
    return tuple(str(label) for label in value)


def _unknown(spec: Dict[str, Any], known: set, owner: str) -> None:
    extra = sorted(set(spec) - known - {"points", "camera"})
    if extra:
        raise UserError(f"{owner}: unknown option {extra[0]!r}; known: points, {', '.join(sorted(known))}")


def zone_from_spec(name: str, spec: Any) -> Zone:
    owner = f"zone {name!r}"
    spec = {"points": spec} if isinstance(spec, (str, list)) else dict(spec or {})
    _unknown(spec, ZONE_OPTIONS, owner)
    if "points" not in spec:
        raise UserError(f"{owner} names no points")
    points = _points(spec["points"], owner)
    return Zone(name, points, fractions=_fractions(points, spec.get("fractions")), labels=_labels(spec.get("labels")),
                anchor=spec.get("anchor", "bottom-center"), min_time=spec.get("min_time", 0.0),
                dwell=spec.get("dwell"), dwell_repeat=bool(spec.get("dwell_repeat", False)))


def line_from_spec(name: str, spec: Any) -> Line:
    owner = f"line {name!r}"
    spec = {"points": spec} if isinstance(spec, (str, list)) else dict(spec or {})
    _unknown(spec, LINE_OPTIONS, owner)
    if "points" not in spec:
        raise UserError(f"{owner} names no points")
    points = _points(spec["points"], owner)
    if len(points) != 2:
        raise UserError(f"{owner}: a line is two points (x1,y1,x2,y2), got {len(points)}")
    given = {field: spec[key] for key, field in (("anchor", "anchor"), ("in", "in_side"), ("margin", "margin"),
                                                 ("margin_fraction", "margin_fraction")) if key in spec}
    return Line(name, points[0], points[1], fractions=_fractions(points, spec.get("fractions")),
                labels=_labels(spec.get("labels")), **given)  # the rest: Line's own defaults


def parse_option(text: str, flag: str) -> Tuple[str, Dict[str, Any]]:
    """'NAME=COORDS[:OPTION=VALUE,...]' (a --zone or --line value) -> (name, spec)."""
    from edgecnn.runtime.backends import split_options

    name, equals, rest = str(text).partition("=")
    name = name.strip()
    if not equals or not name or not rest.strip():
        raise UserError(f"{flag} takes NAME=x1,y1,x2,y2,...[:OPTION=VALUE,...], got {text!r}")
    coordinates, _, options = rest.partition(":")
    spec: Dict[str, Any] = {"points": coordinates.strip()}
    for key, values in split_options(options, f"{flag} {name}").items():
        value = ",".join(values)
        if key in ("min_time", "dwell", "margin", "margin_fraction"):
            try:
                spec[key] = float(value)
            except ValueError:
                raise UserError(f"{flag} {name}: {key} is a number, got {value!r}") from None
        elif key in ("dwell_repeat", "fractions"):
            if value.lower() not in ("1", "0", "true", "false", "yes", "no"):
                raise UserError(f"{flag} {name}: {key} is true or false, got {value!r}")
            spec[key] = value.lower() in ("1", "true", "yes")
        else:
            spec[key] = value
    return name, spec


def parse_options(values: Sequence[str], flag: str) -> Dict[str, Dict[str, Any]]:
    """Several --zone (or --line) values -> {name: spec}; a name given twice is an error."""
    specs: Dict[str, Dict[str, Any]] = {}
    for text in values or ():
        name, spec = parse_option(text, flag)
        if name in specs:
            raise UserError(f"{flag} {name} is given twice")
        specs[name] = spec
    return specs


def build(zones: Dict[str, Any], lines: Dict[str, Any], labels: Sequence[str] = ()) -> Tuple[List[Zone], List[Line]]:
    """Zone and Line objects from specs; `labels`: the model's, which their labels must name."""
    built_zones = [zone_from_spec(name, spec) for name, spec in (zones or {}).items()]
    built_lines = [line_from_spec(name, spec) for name, spec in (lines or {}).items()]
    known = set(labels)
    for item, kind in [(z, "zone") for z in built_zones] + [(line, "line") for line in built_lines]:
        unknown = [label for label in item.labels if known and label not in known]
        if unknown:
            raise UserError(f"{kind} {item.name!r}: the model has no label {unknown[0]!r}; its labels: "
                            f"{', '.join(labels)}")
    return built_zones, built_lines
