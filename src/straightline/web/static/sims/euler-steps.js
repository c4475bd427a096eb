// Chapter 5: particles integrated with N Euler steps (1..100); every kink of a path is one network
// evaluation; the W2 distance of the end points to the data, beside its finite-sample floor.

import { COUPLING_NAMES, DATASET_NAMES, View, floorBand, fmt, fmtT, label, legend, moments, stacked } from "./core.js";
import * as c from "./controls.js";
import { TRAJECTORY_FRAMES, drawTrajectories, trajectoryLayers } from "./trajectories.js";

const BOX = [-4, 4, -3.1, 3.1];
const PATHS = 90;

export function nodes(ctx, view, frames, n, upto, count, colour) {
  ctx.save();
  ctx.fillStyle = colour;
  for (let i = 0; i < count; i++) {
    for (let f = 1; f <= upto; f++) {
      const k = (f * n + i) * 2;
      ctx.fillRect(view.px(frames[k]) - 1.25, view.py(frames[k + 1]) - 1.25, 2.5, 2.5);
    }
  }
  ctx.restore();
}

export default {
  label: "Particles integrated from noise with the chosen number of Euler steps",
  controls: [c.steps("Euler steps", 100), c.dataset(), c.coupling(), c.seed()],
  defaults: { steps: 10, dataset: "moons", coupling: "independent", seed: 0 },
  ...TRAJECTORY_FRAMES,
  ...trajectoryLayers((s) => new View(0, 0, s.width, s.height, BOX), PATHS),
  presets: [
    { label: "1 step + independent pairs", params: { steps: 1, coupling: "independent" } },
    { label: "1 step + OT", params: { steps: 1, coupling: "exact_ot" } },
    { label: "4 steps + OT", params: { steps: 4, coupling: "exact_ot" } },
  ],
  initialFrame: (d) => d.ts.length - 1,
  height: (w) => Math.round(Math.min(w * 0.68, 470)),

  draw(ctx, s) {
    const { data: d, frame, colours: col } = s;
    const view = new View(0, 0, s.width, s.height, BOX);
    const count = drawTrajectories(ctx, s, view, {
      count: PATHS,
      trail: [0.5, 1.1],
      between: (n, count) => { if (d.ts.length <= 40) nodes(ctx, view, d.path.data, n, frame, count, col.a); },
    });
    const q = d.quality;
    label(ctx, `${d.params.steps} step${d.params.steps === 1 ? "" : "s"} · ${fmtT(s.t)}`, 10, 8, col, { size: 15, weight: 700 });
    const w2 = `W2 to the data at t = 1: ${fmt(q.w2)} (floor band ${floorBand(q)})`;
    if (stacked(s.width)) label(ctx, `W2 ${fmt(q.w2)} (floor band ${floorBand(q)})`, 10, 30, col, { weight: 600 });  // narrow: a second line, not over the first
    else label(ctx, w2, s.width - 10, 9, col, { align: "right", weight: 600 });
    legend(ctx, [
      { colour: col.b, text: "particles", kind: "dot" },
      { colour: col.a, text: `paths of ${count}: one kink per step`, kind: "line" },
      { colour: col.data, text: "data", kind: "square" },
    ], 6, s.height - 6, s.width - 12, col);
  },

  summary(s) {
    const { data: d, frame } = s;
    const q = d.quality;
    const [, n] = d.path.shape;
    return `${d.params.steps} Euler step${d.params.steps === 1 ? "" : "s"} (${d.nfe} network evaluations), showing ${fmtT(s.t)}, step ${frame} of ${d.params.steps}. ` +
      `${n} particles, model trained on ${DATASET_NAMES[d.params.dataset]} with ${COUPLING_NAMES[d.params.coupling]}. ` +
      `At t = 1 their W2 distance to the data is ${fmt(q.w2)}; two samples of the data itself land ${floorBand(q)} apart (the floor band).`;
  },

  measure(s) {
    const q = s.data.quality;
    return `Measured with ${s.data.params.steps} step${s.data.params.steps === 1 ? "" : "s"}: W2 to the data ${fmt(q.w2)} over ${q.n} points, ${q.words} ` +
      `(two samples of the data: ${floorBand(q)}, mean ${fmt(q.floor)}).`;
  },

  table(s) {
    const d = s.data;
    const [F, n] = d.path.shape;
    const rows = [];
    const stride = Math.max(1, Math.ceil((F - 1) / 25));
    for (let f = 0; f < F; f += stride) {
      const m = moments(d.path.data, f * n, n);
      rows.push([f, fmt(d.ts[f]), fmt(m.mx), fmt(m.my), fmt(m.sx), fmt(m.sy)]);
    }
    if ((F - 1) % stride) {
      const m = moments(d.path.data, (F - 1) * n, n);
      rows.push([F - 1, fmt(d.ts[F - 1]), fmt(m.mx), fmt(m.my), fmt(m.sx), fmt(m.sy)]);
    }
    return {
      caption: `The ${n} particles after each Euler step: mean and spread of each coordinate`,
      columns: ["step", "t", "mean x", "mean y", "spread x", "spread y"],
      rows,
      note: `W2 to the data at t = 1: ${fmt(d.quality.w2)}, ${d.quality.words} (floor band ${floorBand(d.quality)}).`,
    };
  },
};
