// Chapter 4: a trained model's velocity v(x, t) as arrows on a grid; the time line is t itself (one
// request per t, fetched ahead), particles carried to t are optional.

import { COUPLING_NAMES, DATASET_NAMES, View, arrows, axesCross, clip, decode, fmt, fmtT, gridRows, label, legend, panel, points } from "./core.js";
import * as c from "./controls.js";

const TIMES = Array.from({ length: 21 }, (_, i) => Math.round(i * 5) / 100);
const UNIT_SPEED = 4;  // the arrow of a speed-4 particle spans one grid cell: the same scale at every t

export default {
  label: "Arrows of the velocity field v(x, t) of a trained model",
  controls: [
    c.dataset(),
    c.coupling(),
    { type: "select", name: "grid", label: "Arrows per side", parse: (v) => Number.parseInt(v, 10), options: [[11, "11"], [15, "15"], [21, "21"], [31, "31"]] },
    { type: "toggle", name: "particles", label: "Show particles carried to t", on: 500, off: 0 },
  ],
  defaults: { dataset: "moons", coupling: "independent", grid: 21, particles: 0, t: 0.5 },
  frameParam: { name: "t", values: TIMES },
  prepare(body) {
    const out = { ...body, pts: decode(body.points), vel: decode(body.velocities), under: body.data ? decode(body.data) : null };
    if (body.particles) out.dots = decode(body.particles);
    let sum = 0;
    for (let k = 0; k < out.vel.data.length; k += 2) sum += Math.hypot(out.vel.data[k], out.vel.data[k + 1]);
    out.meanSpeed = sum / (out.vel.data.length / 2);
    return out;
  },
  height: (w) => Math.round(Math.min(w, 520)),

  draw(ctx, s) {
    const { data: d, colours: col } = s;
    const rect = { x: 0, y: 0, w: s.width, h: s.height };
    panel(ctx, rect, col);
    const e = d.params.extent;
    const view = new View(0, 0, s.width, s.height, [-e, e, -e, e], 10);
    const cell = ((2 * e) / (d.params.grid - 1)) * view.scale;
    ctx.save();
    clip(ctx, rect);
    axesCross(ctx, view, col);
    if (d.under) points(ctx, view, d.under.data, 0, d.under.shape[0], 1.4, col.data, 0.35);
    if (d.dots) points(ctx, view, d.dots.data, 0, d.dots.shape[0], 1.8, col.b, 0.75);
    arrows(ctx, view, d.pts.data, d.vel.data, col.a, { unit: ((2 * e) / (d.params.grid - 1)) / UNIT_SPEED * 0.95, maxLen: cell * 1.25, width: 1.3 });
    ctx.restore();
    label(ctx, fmtT(d.params.t), 10, 8, col, { size: 15, weight: 700 });
    const items = [{ colour: col.a, text: `v_{θ}(x, t): an arrow one cell long is speed ${UNIT_SPEED}`, kind: "line" }];
    if (d.dots) items.push({ colour: col.b, text: "particles at this t", kind: "dot" });
    legend(ctx, items, 6, s.height - 6, s.width - 12, col);
  },

  summary(s) {
    const d = s.data;
    const what = d.dots ? ` ${d.dots.shape[0]} particles carried from noise to this time are shown too.` : "";
    return `${fmtT(d.params.t)}: ${d.params.grid} × ${d.params.grid} arrows of the network's velocity v(x, t) for the model trained on ` +
      `${DATASET_NAMES[d.params.dataset]} with ${COUPLING_NAMES[d.params.coupling]}, over the square ±${d.params.extent}. ` +
      `Mean speed ${fmt(d.meanSpeed)}, largest ${fmt(d.max_speed)}.${what}`;
  },

  table(s) {
    const d = s.data;
    const g = d.params.grid;
    const rows = gridRows(g, (k) => [
      `(${fmt(d.pts.data[k], 1)}, ${fmt(d.pts.data[k + 1], 1)})`, fmt(d.vel.data[k]), fmt(d.vel.data[k + 1]),
      fmt(Math.hypot(d.vel.data[k], d.vel.data[k + 1])),
    ]);
    return {
      caption: `The velocity at ${rows.length} of the ${g * g} grid points, ${fmtT(d.params.t)}`,
      columns: ["point (x, y)", "v_x", "v_y", "speed"],
      rows,
    };
  },
};
