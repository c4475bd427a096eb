// Chapter 7 (jumping): a flow map drawn as jumps. Each particle's path under the moons
// flow-matching model (fine RK4) is drawn as a curve; from its point at time s the MeanFlow
// model jumps straight to X_{s,t}(x_s). Where the jump lands is compared with where the ODE
// path is at t. s and t are handles on a time bar (drag them, or use the two sliders); a click
// on the picture picks the particle nearest to it. Every jump is computed by the server for
// every pair of grid times, so moving a handle needs no new request.

import { View, arrow, decode, el, fmt, label, legend, nearest, points } from "./core.js";
import * as c from "./controls.js";

const BOX = [-3.2, 3.2, -2.8, 2.8];
const PARTICLES = 60;  // the API's default count; the particle slider covers them
const views = new WeakMap();  // player -> the view of its last drawing (for clicks)

const xy = (arr, f, n, i) => [arr.data[(f * n + i) * 2], arr.data[(f * n + i) * 2 + 1]];
const index = (d, s) => Math.round(s * d.grid);

// the row of the jump from grid time i to grid time j > i (pairs in order (0,1), (0,2), ..., (1,2), ...)
function pairRow(grid, i, j) {
  return i * grid - (i * (i - 1)) / 2 + (j - i - 1);
}

function jump(d, i, j, p) {
  const n = d.paths.shape[1];
  return { from: xy(d.paths, i, n, p), to: xy(d.jumps, pairRow(d.grid, i, j), n, p), ode: xy(d.paths, j, n, p) };
}

function picked(s) {
  return Math.min(Number(s.params.particle) || 0, s.data.paths.shape[1] - 1);
}

// Two handles on one time bar; each is a slider for the keyboard as well (arrows, Page keys, Home/End).
function timebar(player) {
  const track = el("div", { class: "sim__timebar-track" });
  const handles = {};
  const step = () => 1 / (player.data?.grid || 20);
  const place = () => {
    for (const [name, h] of Object.entries(handles)) {
      const v = Number(player.params[name]);
      h.style.left = `${(v * 100).toFixed(2)}%`;
      h.setAttribute("aria-valuenow", String(v));
      h.setAttribute("aria-valuetext", `${name} = ${v.toFixed(2)}`);
    }
  };
  for (const [name, text] of [["s", "Jump starts at s"], ["t", "Jump lands at t"]]) {
    const h = el("button", { type: "button", class: `sim__handle sim__handle--${name}`, role: "slider", "aria-label": text,
      "aria-valuemin": "0", "aria-valuemax": "1", "data-handle": name, text: name });
    h.addEventListener("keydown", (event) => {
      const moves = { ArrowRight: 1, ArrowUp: 1, ArrowLeft: -1, ArrowDown: -1, PageUp: 5, PageDown: -5 };
      let v = Number(player.params[name]);
      if (event.key in moves) v += moves[event.key] * step();
      else if (event.key === "Home") v = 0;
      else if (event.key === "End") v = 1;
      else return;
      event.preventDefault();
      player.set(name, Number((Math.round(Math.max(0, Math.min(1, v)) / step()) * step()).toFixed(4)));
    });
    h.addEventListener("pointerdown", (event) => {
      h.setPointerCapture(event.pointerId);
      h.focus();
      const move = (e) => {
        const r = track.getBoundingClientRect();
        const v = Math.max(0, Math.min(1, (e.clientX - r.left) / r.width));
        const snapped = Number((Math.round(v / step()) * step()).toFixed(4));
        if (snapped !== Number(player.params[name])) player.set(name, snapped);
      };
      const up = () => { h.removeEventListener("pointermove", move); h.removeEventListener("pointerup", up); };
      h.addEventListener("pointermove", move);
      h.addEventListener("pointerup", up);
    });
    handles[name] = h;
    track.append(h);
  }
  const box = el("div", { class: "sim__control sim__timebar" }, el("span", { class: "sim__timebar-label", text: "Time bar: drag s and t" }),
    el("div", { class: "sim__timebar-ends" }, el("span", { text: "0 (noise)" }), track, el("span", { text: "1 (data)" })));
  return { box, place };
}

function keepOrder(player, name) {
  const g = player.data?.grid || 20;
  let s = Number(player.params.s), t = Number(player.params.t);
  if (s >= t) {
    if (name === "t") s = Math.max(0, t - 1 / g); else t = Math.min(1, s + 1 / g);
    if (s >= t) s = Math.max(0, t - 1 / g);
  }
  player.params.s = Number(s.toFixed(4));
  player.params.t = Number(t.toFixed(4));
  player.syncControls();
  player.writeHash();
}

export default {
  label: "A particle's curved ODE path and the flow map's straight jump from time s to time t",
  timeline: false,
  controls: [
    { type: "custom", build(player) { const bar = timebar(player); this.sync = bar.place; return bar.box; } },
    { type: "range", name: "s", label: "Start time s", min: 0, max: 0.95, step: 0.05, format: (v) => v.toFixed(2) },
    { type: "range", name: "t", label: "End time t", min: 0.05, max: 1, step: 0.05, format: (v) => v.toFixed(2) },
    { type: "range", name: "particle", label: "Particle (or click one)", min: 0, max: PARTICLES - 1, step: 1 },
    c.seed(),
  ],
  defaults: { s: 0, t: 1, particle: 0, seed: 0 },
  apiParams: (p) => ({ seed: p.seed }),
  changed: (player, name) => { if (name === "s" || name === "t") keepOrder(player, name); },
  prepare: (body) => ({ ...body, paths: decode(body.paths), fine: decode(body.fine), jumps: decode(body.jumps), target: decode(body.data) }),
  height: (w) => Math.round(Math.min(w * 0.75, 520)),

  setup(player) {
    player.canvas.addEventListener("click", (event) => {
      const view = views.get(player);
      if (!view || !player.data) return;
      const r = player.canvas.getBoundingClientRect();
      const wx = view.wx(event.clientX - r.left), wy = view.wy(event.clientY - r.top);
      const d = player.data, n = d.paths.shape[1], i = index(d, Number(player.params.s));
      const chosen = nearest(n, (p) => xy(d.paths, i, n, p), wx, wy).index;
      if (chosen !== null) player.set("particle", chosen);
    });
  },

  draw(ctx, s) {
    const { data: d, colours: col } = s;
    const view = new View(0, 24, s.width, s.height - 24, BOX);
    views.set(s.player, view);
    const n = d.paths.shape[1], F = d.fine.shape[0], p = picked(s);
    const i = index(d, Number(s.params.s)), j = index(d, Number(s.params.t));
    points(ctx, view, d.target.data, 0, d.target.shape[0], 1.2, col.data, 0.3);
    ctx.save();
    ctx.lineWidth = 1;
    ctx.strokeStyle = col.c;
    ctx.globalAlpha = 0.45;
    ctx.beginPath();
    for (let q = 0; q < n; q++) {
      if (q === p) continue;
      const jq = jump(d, i, j, q);
      arrow(ctx, view.px(jq.from[0]), view.py(jq.from[1]), view.px(jq.to[0]), view.py(jq.to[1]), 4);
    }
    ctx.stroke();
    ctx.globalAlpha = 1;
    ctx.strokeStyle = col.a;
    ctx.lineWidth = 2;
    ctx.beginPath();
    for (let f = 0; f < F; f++) {
      const [x, y] = xy(d.fine, f, n, p);
      if (f === 0) ctx.moveTo(view.px(x), view.py(y)); else ctx.lineTo(view.px(x), view.py(y));
    }
    ctx.stroke();
    const jp = jump(d, i, j, p);
    ctx.strokeStyle = col.d;
    ctx.lineWidth = 2.5;
    ctx.beginPath();
    arrow(ctx, view.px(jp.from[0]), view.py(jp.from[1]), view.px(jp.to[0]), view.py(jp.to[1]), 8);
    ctx.stroke();
    ctx.setLineDash([3, 3]);
    ctx.lineWidth = 1.2;
    ctx.strokeStyle = col.ink;
    ctx.beginPath();
    ctx.moveTo(view.px(jp.to[0]), view.py(jp.to[1]));
    ctx.lineTo(view.px(jp.ode[0]), view.py(jp.ode[1]));
    ctx.stroke();
    ctx.restore();
    points(ctx, view, new Float32Array(jp.from), 0, 1, 4, col.ink, 1);
    points(ctx, view, new Float32Array(jp.ode), 0, 1, 4.5, col.a, 1);
    points(ctx, view, new Float32Array(jp.to), 0, 1, 4.5, col.d, 1);
    const gap = Math.hypot(jp.to[0] - jp.ode[0], jp.to[1] - jp.ode[1]);
    label(ctx, `Particle ${p}: jump from s = ${d.ts[i].toFixed(2)} to t = ${d.ts[j].toFixed(2)} lands ${fmt(gap)} from the ODE path`, 10, 6, col, { size: 14, weight: 700 });
    legend(ctx, [
      { colour: col.a, text: "ODE path (flow matching, RK4)", kind: "line" },
      { colour: col.d, text: "MeanFlow jump X(s,t)", kind: "line" },
      { colour: col.c, text: "other particles' jumps", kind: "line" },
      { colour: col.data, text: "data", kind: "square" },
    ], 6, s.height - 6, s.width - 12, col);
  },

  summary(s) {
    const d = s.data, p = picked(s);
    const i = index(d, Number(s.params.s)), j = index(d, Number(s.params.t));
    const jp = jump(d, i, j, p);
    const gap = Math.hypot(jp.to[0] - jp.ode[0], jp.to[1] - jp.ode[1]);
    const mean = d.mean_gap[pairRow(d.grid, i, j)];
    return `Particle ${p} of ${d.paths.shape[1]}. On its ODE path it is at (${fmt(jp.from[0])}, ${fmt(jp.from[1])}) at s = ${d.ts[i].toFixed(2)} ` +
      `and at (${fmt(jp.ode[0])}, ${fmt(jp.ode[1])}) at t = ${d.ts[j].toFixed(2)}. One jump of the MeanFlow flow map from s lands at ` +
      `(${fmt(jp.to[0])}, ${fmt(jp.to[1])}), ${fmt(gap)} away from the path's point; over all ${d.paths.shape[1]} particles the jump lands ` +
      `${fmt(mean)} away on average.`;
  },

  table(s) {
    const d = s.data, p = picked(s), i = index(d, Number(s.params.s));
    const rows = [];
    for (let j = i + 1; j <= d.grid; j++) {
      const jp = jump(d, i, j, p);
      rows.push([d.ts[j].toFixed(2), `${fmt(jp.ode[0])}, ${fmt(jp.ode[1])}`, `${fmt(jp.to[0])}, ${fmt(jp.to[1])}`,
        fmt(Math.hypot(jp.to[0] - jp.ode[0], jp.to[1] - jp.ode[1])), fmt(d.mean_gap[pairRow(d.grid, i, j)])]);
    }
    return {
      caption: `Particle ${p}: jumps from s = ${d.ts[i].toFixed(2)} to every later grid time t`,
      columns: ["t", "ODE path at t (x, y)", "jump lands at (x, y)", "distance", "mean distance, all particles"],
      rows,
    };
  },
};
