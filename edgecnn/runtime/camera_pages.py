"""The web view's pages for a run of several cameras (edgecnn.runtime.sinks.webview
serves them): a grid of every camera's live video and vitals, and one page per camera
with its model card and a chart of inference time and frame age.

Plain HTML, CSS and JavaScript with no external resource: the device may have no
internet. Every camera name is escaped where it enters HTML, a URL or a script, even
though the config schema already limits names to letters, digits, '_', '-' and '.'.
"""
from __future__ import annotations

import html
import json
from typing import Any, Dict, List, Optional
from urllib.parse import quote

from edgecnn.runtime.stats import SERIES_SECONDS

STYLE = """
body { font-family: sans-serif; margin: 1em; background: #111; color: #eee; }
a { color: #8cf; }
h1 { font-size: 1.4em; margin: 0 0 .6em; } h2 { font-size: 1.05em; margin: 1.2em 0 .4em; color: #ccc; }
#grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(340px, 1fr)); gap: 1em; align-items: start; }
.tile { margin: 0; border: 3px solid var(--state); border-radius: 6px; background: #1b1b1b; overflow: hidden; }
.view { position: relative; display: block; background: #000; min-height: 180px; }
.view img { display: block; width: 100%; }
.overlay { position: absolute; inset: 0; display: flex; align-items: center; justify-content: center;
  font-size: 1.8em; font-weight: bold; letter-spacing: .1em; text-transform: uppercase;
  background: rgba(0, 0, 0, .6); color: var(--state); }
figcaption { padding: .5em .7em; display: flex; flex-wrap: wrap; gap: .4em 1em; align-items: baseline; }
.name { font-weight: bold; font-size: 1.1em; }
.state { padding: 1px 8px; border-radius: 4px; font-size: .85em; font-weight: bold; text-transform: uppercase;
  color: #111; background: var(--state); }
.numbers { color: #bbb; font-variant-numeric: tabular-nums; }
[data-state] { --state: #90caf9; }
[data-state="live"] { --state: #66bb6a; }
[data-state="reconnecting"] { --state: #fdd835; }
[data-state="stalled"] { --state: #ffa726; }
[data-state="ended"] { --state: #9e9e9e; }
[data-state="failed"] { --state: #ef5350; }
[data-state="live"] .overlay { display: none; }
.camera { display: flex; gap: 1.5em; flex-wrap: wrap; align-items: flex-start; }
.camera .video { flex: 1 1 640px; max-width: 960px; }
.camera .view { border: 3px solid var(--state); border-radius: 6px; }
table { border-collapse: collapse; } td { padding: 2px 10px; vertical-align: top; }
td:first-child { color: #aaa; white-space: nowrap; }
.labels { margin: 0; padding-left: 1.2em; max-height: 12em; overflow: auto; }
canvas { width: 100%; height: 280px; background: #181818; border: 1px solid #333; }
.legend { color: #bbb; } .key { display: inline-block; width: 1.4em; height: 3px; margin: 0 .4em 3px 1em; }
.key-inference { background: #4fc3f7; } .key-age { background: #ffb74d; }
#connection { color: #ef5350; }
"""

GRID = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>edgecnn: {{title}}</title>
<style>{{style}}</style></head>
<body><h1>edgecnn run: {{title}} <span id="connection"></span></h1>{{clips_link}}
<main id="grid">
{{tiles}}
</main>
<script>
const query = {{query_json}};
const tiles = new Map(Array.from(document.querySelectorAll("[data-camera]"), tile => [tile.dataset.camera, tile]));
function shown(camera) { return camera.stalled ? "stalled" : camera.state; }
function put(tile, selector, text) { tile.querySelector(selector).textContent = text; }
async function refresh() {
  try {
    const stats = await (await fetch("/stats.json" + query, {cache: "no-store"})).json();
    for (const [name, camera] of Object.entries(stats.cameras)) {
      const tile = tiles.get(name);
      if (!tile) continue;
      const state = shown(camera);
      tile.dataset.state = state;
      put(tile, ".state", state);
      put(tile, ".overlay", state === "stalled" && camera.age_s !== null
          ? "stalled " + Math.round(camera.age_s) + " s" : state);
      put(tile, ".fps", camera.recent_fps.toFixed(1));
      put(tile, ".age", camera.age_p50_ms.toFixed(0) + " ms");
      put(tile, ".dropped", camera.dropped);
      put(tile, ".frames", camera.frames);
    }
    document.getElementById("connection").textContent = "";
  } catch (e) { document.getElementById("connection").textContent = "(disconnected)"; }
}
setInterval(refresh, 1000); refresh();
{{start_streams}}
</script></body></html>
"""

TILE = """<figure class="tile" data-camera="{{name}}" data-state="starting">
<a class="view" href="{{page}}"><img data-stream="{{stream}}" alt="camera {{name}}, live annotated video"><span
 class="overlay">starting</span></a>
<figcaption><a class="name" href="{{page}}">{{name}}</a><span class="state">starting</span>
<span class="numbers"><span class="fps">-</span> FPS &middot; frame age <span class="age">-</span> &middot;
 dropped <span class="dropped">-</span> &middot; <span class="frames">-</span> frames</span></figcaption>
</figure>"""

CAMERA = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>edgecnn: camera {{name}}</title>
<style>{{style}}</style></head>
<body><p><a href="/{{query}}">&larr; all cameras</a>{{clips_link}}</p>
<h1>camera {{name}} <span class="state" id="state" data-state="starting">starting</span>
<span id="connection"></span></h1>
<main class="camera">
<section class="video"><div class="view" id="view" data-state="starting"><img id="video" data-stream="{{stream}}"
 alt="camera {{name}}, live annotated video"><span class="overlay" id="overlay">starting</span></div>
<h2>Inference time and frame age, last {{minutes}} minutes (mean per second)</h2>
<canvas id="chart" data-points="0"></canvas>
<p class="legend"><span class="key key-inference"></span>inference <span class="key key-age"></span>frame age
 (capture to result)</p></section>
<section>
<h2>Now</h2><table id="stats">
<tr><td>frames</td><td id="frames">-</td></tr>
<tr><td>FPS</td><td id="fps">-</td></tr>
<tr><td>frame age p50 / p90 / p99</td><td id="latency">-</td></tr>
<tr><td>inference p50 / p99</td><td id="inference">-</td></tr>
<tr><td>last result</td><td id="last">-</td></tr>
<tr><td>dropped</td><td id="dropped">-</td></tr>
<tr><td>reconnects</td><td id="reconnects">-</td></tr>
<tr><td>inputs skipped</td><td id="skipped">-</td></tr>
<tr><td>dropped by sinks</td><td id="sink_dropped">-</td></tr>
</table>
<h2>Model</h2><table id="card">{{card}}</table>
<h2>Result</h2><ul id="detections"></ul>
</section></main>
<script>
const query = {{query_json}}, camera = {{name_json}}, SPAN = {{span}};
const seriesUrl = {{series_json}};
function set(id, text) { document.getElementById(id).textContent = text; }
async function refresh() {
  try {
    const stats = await (await fetch("/stats.json" + query, {cache: "no-store"})).json();
    const s = stats.cameras[camera];
    const state = s.stalled ? "stalled" : s.state;
    for (const id of ["state", "view"]) document.getElementById(id).dataset.state = state;
    set("state", state); set("overlay", state);
    set("frames", s.frames); set("fps", s.recent_fps.toFixed(1));
    set("latency", s.age_p50_ms + " / " + s.age_p90_ms + " / " + s.age_p99_ms + " ms");
    set("inference", s.inference_p50_ms + " / " + s.inference_p99_ms + " ms");
    set("last", s.age_s === null ? "none yet" : s.age_s.toFixed(1) + " s ago");
    set("dropped", s.dropped); set("reconnects", s.reconnects); set("skipped", s.skipped);
    set("sink_dropped", Object.entries(s.sink_dropped || {}).map(([k, v]) => k + " " + v).join(", ") || "0");
    const list = document.getElementById("detections");
    list.replaceChildren(...(s.items || []).map(text => {
      const item = document.createElement("li"); item.textContent = text; return item; }));
    set("connection", "");
  } catch (e) { set("connection", "(disconnected)"); }
}
let points = [], now = 0, after = -1;
async function refreshSeries() {
  try {
    const reply = await (await fetch(seriesUrl + (query ? "&" : "?") + "after=" + after, {cache: "no-store"})).json();
    now = reply.now;
    for (const point of reply.points) { points.push(point); after = point.t; }
    points = points.filter(point => point.t > now - SPAN);
    draw();
  } catch (e) { set("connection", "(disconnected)"); }
}
function ceiling(value) {  // 1, 2 or 5 times a power of ten, at or above value
  const power = Math.pow(10, Math.floor(Math.log10(value)));
  for (const step of [1, 2, 5, 10]) if (step * power >= value) return step * power;
}
function draw() {
  const canvas = document.getElementById("chart"), g = canvas.getContext("2d");
  const scale = window.devicePixelRatio || 1, width = canvas.clientWidth, height = canvas.clientHeight;
  canvas.width = Math.round(width * scale); canvas.height = Math.round(height * scale);  // sharp at any size
  g.setTransform(scale, 0, 0, scale, 0, 0);
  const left = 64, right = 14, top = 12, bottom = 28, lines = 4;
  const step = ceiling(Math.max(1, ...points.map(p => Math.max(p.inference_ms, p.age_ms))) / lines);
  const highest = step * lines;
  const x = t => left + (width - left - right) * (1 - (now - t) / SPAN);
  const y = v => top + (height - top - bottom) * (1 - v / highest);
  g.clearRect(0, 0, width, height);
  g.font = "13px sans-serif"; g.lineWidth = 1;
  for (let i = 0; i <= lines; i++) {
    const value = step * i;
    g.strokeStyle = "#333"; g.beginPath(); g.moveTo(left, y(value)); g.lineTo(width - right, y(value)); g.stroke();
    g.fillStyle = "#aaa"; g.textAlign = "right"; g.textBaseline = "middle";
    g.fillText(+value.toPrecision(3) + " ms", left - 6, y(value));
  }
  const minutes = SPAN / 60, every = minutes > 5 ? 2 : 1;
  g.textAlign = "center"; g.textBaseline = "top";
  for (let m = 0; m <= minutes; m += every) {
    g.fillText(m === 0 ? "now" : "-" + m + " min", x(now - m * 60), height - bottom + 8);
  }
  for (const [key, color] of [["age_ms", "#ffb74d"], ["inference_ms", "#4fc3f7"]]) {
    g.strokeStyle = color; g.fillStyle = color; g.lineWidth = 2; g.beginPath();
    let previous = null;
    for (const p of points) {  // a second without results breaks the line
      if (previous === null || p.t - previous > 1) g.moveTo(x(p.t), y(p[key])); else g.lineTo(x(p.t), y(p[key]));
      previous = p.t;
    }
    g.stroke();
    for (const p of points) g.fillRect(x(p.t) - 1, y(p[key]) - 1, 2, 2);
  }
  canvas.dataset.points = points.length;
}
setInterval(refresh, 1000); refresh();
setInterval(refreshSeries, 2000); refreshSeries();
{{start_streams}}
</script></body></html>
"""


# the MJPEG streams start once the page has loaded: a stream that has no frame yet (a
# camera still offline) would otherwise keep the page loading forever
START_STREAMS = """window.addEventListener("load", () => {
  for (const img of document.querySelectorAll("img[data-stream]")) img.src = img.dataset.stream; });"""


def _fill(template: str, **values: str) -> str:
    for key, value in values.items():
        template = template.replace("{{" + key + "}}", value)
    return template


def _script_value(value: Any) -> str:
    """A value for a <script>: JSON that cannot close the script element."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def camera_path(name: str) -> str:
    """/camera/NAME, the name escaped for a URL path."""
    return f"/camera/{quote(name, safe='')}"


def grid_page(title: str, cameras: List[str], query: str, clips: bool = False) -> str:
    """`query`: "" or "?token=..." (already URL-escaped), added to every link and request;
    `clips`: the run keeps event clips (a link to /clips)."""
    tiles = [_fill(TILE, name=html.escape(name), page=html.escape(camera_path(name) + query),
                   stream=html.escape(camera_path(name) + "/stream.mjpg" + query)) for name in cameras]
    clips_link = f'<p><a id="clips-link" href="{html.escape(_clips_url(query))}">clips</a></p>' if clips else ""
    return _fill(GRID, title=html.escape(title), style=STYLE, tiles="\n".join(tiles), start_streams=START_STREAMS,
                 query_json=_script_value(query), clips_link=clips_link)


def _clips_url(query: str, camera: Optional[str] = None) -> str:
    """/clips (of one camera), with the view's query ("" or "?token=...")."""
    from edgecnn.runtime.clip_pages import with_query

    return with_query("/clips", query, **({"camera": camera} if camera is not None else {}))


def camera_page(name: str, card: Optional[Dict[str, Any]], query: str, clips: bool = False) -> str:
    """`clips`: the run keeps event clips (a link to this camera's)."""
    clips_link = (f' &middot; <a id="clips-link" href="{html.escape(_clips_url(query, name))}">clips</a>'
                  if clips else "")
    return _fill(CAMERA, name=html.escape(name), style=STYLE, query=html.escape(query), start_streams=START_STREAMS,
                 clips_link=clips_link,
                 stream=html.escape(camera_path(name) + "/stream.mjpg" + query),
                 minutes=str(SERIES_SECONDS // 60), card=_card_rows(card_facts(card)),
                 query_json=_script_value(query), name_json=_script_value(name),
                 series_json=_script_value(camera_path(name) + "/series.json" + query), span=str(SERIES_SECONDS))


def card_facts(card: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """What a person checks first about a camera's model (its card as a dict): what it
    finds (task, labels), how it computes (precision, input), the accuracy measured for
    it and the budget that accuracy was held to when it was compressed."""
    if not card:
        return {}
    from edgecnn.core.task import format_metric, primary_metrics

    metrics = card.get("metrics") or {}
    key = next((k for k in primary_metrics() if isinstance(metrics.get(k), (int, float))), None)
    where = [str(metrics[k]) for k in ("dataset", "split") if metrics.get(k)]
    if isinstance(metrics.get("images"), int):
        where.append(f"{metrics['images']} images")
    accuracy = (format_metric(key, metrics[key]) + (f" ({', '.join(where)})" if where else "")) if key \
        else "not recorded in the card"
    drop, allowed = metrics.get("drop_points"), metrics.get("max_drop_points")
    if isinstance(drop, (int, float)) and isinstance(allowed, (int, float)):
        budget = (f"{float(drop):.2f} points lost against fp32, {'within' if drop <= allowed else 'BEYOND'} "
                  f"the budget of {float(allowed):.2f}")
    elif card.get("precision") == "fp32":
        budget = "none: fp32 is the reference the compressed files are held to"
    else:
        budget = "not recorded in the card"
    size = card.get("input_size") or []
    return {"task": card.get("task", ""), "labels": [str(label) for label in card.get("labels") or []],
            "precision": card.get("precision", ""), "input": "x".join(str(v) for v in size),
            "accuracy": accuracy, "budget": budget}


def _card_rows(facts: Dict[str, Any]) -> str:
    if not facts:
        return "<tr><td>card</td><td>none</td></tr>"
    labels = "".join(f"<li>{html.escape(label)}</li>" for label in facts["labels"])
    rows = [("task", html.escape(facts["task"])), ("precision", html.escape(facts["precision"])),
            ("accuracy", html.escape(facts["accuracy"])), ("budget", html.escape(facts["budget"])),
            ("input", html.escape(facts["input"])),
            (f"labels ({len(facts['labels'])})", f'<ul class="labels" id="labels">{labels}</ul>')]
    return "\n".join(f'<tr><td>{name}</td><td id="card-{name.split()[0]}">{value}</td></tr>' for name, value in rows)
