// dualgait live view: polls /api/state, draws the score chart (SVG), the camera previews (canvas) and health,
// and shows the last window's model input (crops panel).
// One walkway (camera pair) at a time, picked in the header (default: the first one the aggregator saw).
// Nothing is fetched from anywhere but this server.
"use strict";

const POLL_MS = 500;
const SVG_NS = "http://www.w3.org/2000/svg";
const W = 800, H = 260, PAD_L = 36, PAD_R = 8, PAD_T = 10, PAD_B = 24;
const shownSeq = { front: null, side: null };
let picked = new URLSearchParams(location.search).get("walkway");  // the operator's pick (null: the default)
let shown = null;    // the walkway on the page now (what /api/state answered)

function $(sel) { return document.querySelector(sel); }
function walkwayQuery(walkway) { return walkway ? `walkway=${encodeURIComponent(walkway)}` : ""; }

function renderWalkways(state) {
  const select = $("#walkway");
  const ids = state.walkways.length ? state.walkways : [state.walkway];
  if (select.dataset.ids !== ids.join(",")) {
    select.replaceChildren(...ids.map((id) => Object.assign(document.createElement("option"), { value: id, textContent: id })));
    select.dataset.ids = ids.join(",");
  }
  select.value = state.walkway;
  if (shown !== state.walkway) {  // another walkway: never leave the previous one's previews on screen
    shown = state.walkway;
    for (const view of Object.keys(shownSeq)) {
      shownSeq[view] = null;
      const canvas = $(`#cam-${view} canvas`);
      canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
      delete canvas.dataset.seq;
      const img = $(`#crops-${view} img`);
      img.removeAttribute("src");
      delete img.dataset.window;
    }
    $("#end-result").textContent = "";
  }
}
function fmt(p) { return p === null || p === undefined ? "–" : p.toFixed(3); }

function el(name, attrs, text) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function renderSession(state) {
  const s = state.session;
  const notes = state.notes && state.notes.length ? state.notes : null;
  if (notes) $("#notes").replaceChildren(...notes.map((n) => Object.assign(document.createElement("li"), { textContent: n })));
  if (!s) {
    $("#session-id").textContent = "–";
    $("#session-status").textContent = "no session yet";
    $("#session-status").className = "status";
    for (const id of ["#cumulative", "#decision"]) $(id).textContent = "–";
    for (const id of ["#ci", "#valid-needed", "#invalid"]) $(id).textContent = "";
    $("#valid-count").textContent = "0";
    $("#end-session").disabled = true;
    return;
  }
  $("#session-id").textContent = s.id;
  const status = $("#session-status");
  status.textContent = s.status === "open" ? "open" : `ended (${s.end_reason})`;
  status.className = "status " + s.status;
  $("#cumulative").textContent = fmt(s.cumulative_p_asd);
  $("#ci").textContent = s.ci_low === null ? "" : `${Math.round(s.ci_level * 100)}% interval ${fmt(s.ci_low)}–${fmt(s.ci_high)}`;
  $("#decision").textContent = s.decision_text;
  $("#decision").dataset.decision = s.decision;
  $("#valid-count").textContent = s.valid_windows;
  $("#valid-needed").textContent = `of ${s.windows} (decision from ${s.min_valid_windows})`;
  const inv = Object.entries(s.invalid_by_reason).map(([k, v]) => `${k} ×${v}`).join(", ");
  $("#invalid").textContent = inv || "none";
  $("#end-session").disabled = s.status !== "open";
}

function renderChart(state) {
  const svg = $("#chart");
  const points = state.chart;
  const thr = state.session ? state.session.decision_threshold : 0.5;
  const dur = (p) => p.duration_s || 1; // each window carries its duration (windows stored before protocol 6: 1 s)
  const mid = (p) => p.t_s + dur(p) / 2;
  const t0 = points.length ? points[0].t_s : 0;
  const t1 = Math.max(t0 + 10, points.length ? points[points.length - 1].t_s + dur(points[points.length - 1]) : 10);
  const x = (t) => PAD_L + ((t - t0) / (t1 - t0)) * (W - PAD_L - PAD_R);
  const y = (p) => PAD_T + (1 - p) * (H - PAD_T - PAD_B);
  const nodes = [
    el("line", { class: "axis", x1: PAD_L, y1: y(0), x2: W - PAD_R, y2: y(0) }),
    el("line", { class: "axis", x1: PAD_L, y1: y(0), x2: PAD_L, y2: y(1) }),
    el("text", { x: 4, y: y(1) + 4 }, "1.0"), el("text", { x: 4, y: y(0.5) + 4 }, "0.5"), el("text", { x: 4, y: y(0) }, "0.0"),
    el("text", { x: W - 90, y: H - 6 }, `${(t1 - t0).toFixed(0)} s shown`),
  ];
  for (const p of points) {
    if (p.valid) continue;
    const bar = el("rect", { class: "invalid", x: x(p.t_s), y: y(1), width: Math.max(1, x(p.t_s + dur(p)) - x(p.t_s)), height: y(0) - y(1) });
    bar.appendChild(el("title", {}, `window ${p.window}: invalid (${p.reason_code})`));
    nodes.push(bar);
  }
  const withCi = points.filter((p) => p.valid && p.ci_low !== null);
  if (withCi.length) {
    const upper = withCi.map((p) => `${x(mid(p))},${y(p.ci_high)}`);
    const lower = withCi.slice().reverse().map((p) => `${x(mid(p))},${y(p.ci_low)}`);
    nodes.push(el("polygon", { class: "ci", points: upper.concat(lower).join(" ") }));
  }
  nodes.push(el("line", { class: "thr", x1: PAD_L, y1: y(thr), x2: W - PAD_R, y2: y(thr) }));
  const valid = points.filter((p) => p.valid);
  if (valid.length) nodes.push(el("polyline", { class: "cum", points: valid.map((p) => `${x(mid(p))},${y(p.cumulative_p_asd)}`).join(" ") }));
  for (const p of valid) {
    const dot = el("circle", { class: "pt", cx: x(mid(p)), cy: y(p.p_asd), r: 4, "data-window": p.window });
    dot.appendChild(el("title", {}, `window ${p.window}: p_asd ${fmt(p.p_asd)}`));
    nodes.push(dot);
  }
  svg.replaceChildren(...nodes);
  svg.dataset.windows = points.length;
}

function drawPreview(view, preview, canvas, walkway) {
  const img = new Image();
  img.onload = () => {
    if (walkway !== shown) return;  // the operator switched walkways while it loaded
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    const ctx = canvas.getContext("2d");
    ctx.drawImage(img, 0, 0);
    if (preview.box_xyxy) {
      const sx = img.naturalWidth / preview.width, sy = img.naturalHeight / preview.height;
      const [x1, y1, x2, y2] = preview.box_xyxy;
      ctx.strokeStyle = "#00ff00";
      ctx.lineWidth = 3;
      ctx.strokeRect(x1 * sx, y1 * sy, (x2 - x1) * sx, (y2 - y1) * sy);
    }
    canvas.dataset.seq = preview.seq;
  };
  img.src = `/api/preview/${view}.jpg?seq=${preview.seq}&${walkwayQuery(walkway)}`;
}

function renderCameras(state) {
  for (const [view, cam] of Object.entries(state.cameras)) {
    const box = $(`#cam-${view}`);
    // a single-view walkway has no camera for the other view: its panels are hidden, not shown as "no data"
    const present = !state.views || state.views.includes(view);
    box.hidden = !present;
    $(`#crops-${view}`).hidden = !present;
    box.dataset.state = cam.state;
    box.classList.toggle("lost", cam.lost);
    let text = cam.state === "unknown" ? "no data" : cam.state;
    if (cam.lost) text = `LOST (${cam.state}${cam.attempt ? `, attempt ${cam.attempt}` : ""})`;
    if (cam.preview && cam.preview.stale && !cam.lost) text += " (preview stale)";
    box.querySelector(".state").textContent = text;
    const c = cam.counters || {};
    const age = cam.preview ? `, preview ${cam.preview.age_s.toFixed(1)} s old` : "";
    box.querySelector(".counters").textContent =
      `sent ${c.frames_sent ?? "–"}, dropped ${c.send_drops ?? "–"}, reconnects ${c.reconnects ?? "–"}${age}` +
      (cam.reason ? ` — ${cam.reason}` : "");
    if (cam.preview && cam.preview.seq !== shownSeq[view]) {
      shownSeq[view] = cam.preview.seq;
      drawPreview(view, cam.preview, box.querySelector("canvas"), state.walkway);
    }
  }
}

function renderCrops(state) {
  const crops = state.crops || {};
  let caption = "(none yet)";
  for (const view of Object.keys(shownSeq)) {
    const c = crops[view];
    const img = $(`#crops-${view} img`);
    if (!c) continue;
    if (img.dataset.window !== String(c.window)) {
      img.src = `/api/crops/${view}.jpg?window=${c.window}&${walkwayQuery(state.walkway)}`;
      img.dataset.window = c.window;
    }
    const point = state.chart.filter((p) => p.window === c.window).pop();
    const verdict = !point ? "" : point.valid ? `: p_asd ${fmt(point.p_asd)}` : `: not scored (${point.reason_code})`;
    caption = `window ${c.window}${verdict}${c.stale ? " (stale)" : ""}; one crop per sample, as the model saw them`;
  }
  $("#crops-caption").textContent = caption;
}

function renderPipeline(state) {
  const p = state.pipeline;
  const rows = [
    ["windows", `${p.windows} (${Object.entries(p.by_validity).map(([k, v]) => `${k} ${v}`).join(", ") || "none"})`],
    ["latency (capture → score)", `last ${fmt(p.latency_ms.last)} ms, p50 ${fmt(p.latency_ms.p50)} ms, p95 ${fmt(p.latency_ms.p95)} ms`],
    ["stages, last window (ms)", Object.entries(p.timings_ms).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(", ") || "–"],
    ["overload", Object.entries(p.overload || {}).map(([w, o]) => `${w}: level ${o.level} (${o.step})`).join("; ") || "–"],
    ["inference hosts", ((p.sources || {}).endpoints || []).map((e) =>
      `${e.endpoint}: ${e.walkways.join(", ") || "no walkway"}` +
      (e.silent_s === null ? " (nothing received yet)" : ` (${e.messages} messages, last ${e.silent_s} s ago)`)).join("; ") || "–"],
    ["refused: walkway served by another host", ((p.sources || {}).refused || []).map((r) =>
      `${r.walkway} from ${r.endpoint} (served by ${r.owner}): ${r.messages}`).join("; ") || "none"],
    ["malformed messages", String(p.malformed)],
    ["streams ended", String(p.streams_ended)],
    ["model", state.model || "–"],
  ];
  const table = document.createElement("table");
  for (const [k, v] of rows) {
    const tr = table.insertRow();
    tr.insertCell().textContent = k;
    tr.insertCell().textContent = v;
  }
  $("#pipeline").replaceChildren(table);
}

async function poll() {
  try {
    const response = await fetch(`/api/state?${walkwayQuery(picked)}`, { cache: "no-store" });
    if (response.status === 404 && picked) {  // a walkway this aggregator has not seen (e.g. after a restart)
      picked = null;
      setTimeout(poll, 0);
      return;
    }
    const state = await response.json();
    renderWalkways(state);
    renderSession(state);
    renderChart(state);
    renderCameras(state);
    renderCrops(state);
    renderPipeline(state);
    $("#connection").textContent = "live";
    $("#connection").className = "";
  } catch (err) {
    $("#connection").textContent = "aggregator not reachable";
    $("#connection").className = "bad";
  }
  setTimeout(poll, POLL_MS);
}

$("#walkway").addEventListener("change", (event) => {
  picked = event.target.value;
});

$("#end-session").addEventListener("click", async () => {
  const response = await fetch(`/api/session/end?${walkwayQuery(shown)}`,
                               { method: "POST", headers: { "X-Dualgait-Operator": "1" } });
  const result = await response.json();
  $("#end-result").textContent = result.ended ? `session ${result.ended} ended` : (result.error || "no open session");
});

poll();
