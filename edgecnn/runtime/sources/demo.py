"""The `demo` source: the built-in moving synthetic scene (edgecnn.runtime.demo), paced
like a camera, so `edgecnn run --source demo` shows a working detector anywhere."""
from __future__ import annotations

from typing import Any, Dict

from edgecnn.runtime.sources import SourceContext, SourceOption, SourceType, parse_count, parse_fps
from edgecnn.runtime.sources._live import LiveSource


def _parse_side(text: str) -> int:
    value = parse_count(text)
    if value < 32:
        raise ValueError(f"needs size >= 32, got {text}")
    return value


def opener(target: str, options: Dict[str, Any], context: SourceContext) -> LiveSource:
    from edgecnn.runtime.demo import DemoCapture

    fps, size, seed = options.get("fps", 30.0), options.get("size", 384), options.get("seed", 0)
    objects = options.get("objects", 3)
    return LiveSource("demo", lambda: DemoCapture(size, seed, fps, objects), period=1.0 / fps, log=context.log)


SOURCE = SourceType(name="demo", opener=opener, schemes=("demo",),
                    options={"fps": SourceOption("frames per second (default 30)", parse_fps),
                             "size": SourceOption("side of the square scene in pixels (default 384)", _parse_side),
                             "seed": SourceOption("which scene (default 0)", parse_count),
                             "objects": SourceOption("how many shapes move in it (default 3)", parse_count)},
                    summary="the built-in moving demo scene", example="demo")
