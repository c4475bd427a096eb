// Chapter 8: the same Gaussian noise sampled by a DDPM model (deterministic DDIM) and by a
// flow-matching model (Euler), both with the chosen number of network calls, on the two moons.
// The diffusion states are drawn on the linear path's scale (x_k / c_k), so the two are comparable.

import { View, axesCross, clip, decode, fmt, label, legend, moments, panel, panels, points, stacked, trails } from "./core.js";
import * as c from "./controls.js";
import { linked } from "./linked.js";

const BOX = [-4, 4, -3.2, 3.2];
const PATHS = 60;

// linked views: the same noise point's route under DDIM (left) and Euler on the flow (right);
// the diffusion's states are at its own times, which the frames share with the flow's
const LINKED = linked((s) => {
  const d = s.data;
  return panels(s.width, s.height, 2).map((rect, k) => {
    const set = k === 0 ? d.diff : d.flowd;
    return { view: new View(rect.x, rect.y + 22, rect.w, rect.h - 22, BOX), xs: set.path.data, n: set.path.shape[1], ts: set.ts, frame: s.frame, count: PATHS };
  });
});

function verdict(q) {
  return q.words;
}

export default {
  label: "Diffusion (DDIM) and flow-matching trajectories from the same noise, side by side",
  controls: [
    c.steps("Steps (network calls)", 100),
    { type: "radio", name: "scale", label: "Diffusion drawn on", options: [["flow", "the linear path's scale"], ["ddpm", "DDPM's own scale"]] },
    c.seed(),
  ],
  defaults: { steps: 20, scale: "flow", seed: 0 },
  ...LINKED,
  presets: [
    { label: "1 step each", params: { steps: 1 } },
    { label: "5 steps each", params: { steps: 5 } },
  ],
  prepare: (body) => ({
    ...body,
    diff: { ...body.diffusion, path: decode(body.diffusion.frames) },
    flowd: { ...body.flow, path: decode(body.flow.frames) },
    target: decode(body.data),
  }),
  frames: (d) => d.frame_steps.length,
  time: (d, i) => d.flow.ts[i],
  initialFrame: (d) => d.frame_steps.length - 1,
  height: (w) => (stacked(w) ? Math.round(w * 1.5) : Math.round(Math.min(w * 0.5, 380))),

  draw(ctx, s) {
    const { data: d, frame, colours: col } = s;
    const rects = panels(s.width, s.height, 2);
    const sets = [
      [d.diff, `Diffusion, DDIM (t = ${fmt(d.diff.ts[frame])}${d.params.scale === "ddpm" ? ", DDPM scale" : ""})`, col.b],
      [d.flowd, `Flow matching, Euler (t = ${fmt(d.flowd.ts[frame])})`, col.a],
    ];
    rects.forEach((rect, k) => {
      const [set, title, colour] = sets[k];
      const [, n] = set.path.shape;
      const count = Math.min(n, PATHS);
      panel(ctx, rect, col);
      const view = new View(rect.x, rect.y + 22, rect.w, rect.h - 22, BOX);
      ctx.save();
      clip(ctx, rect);
      axesCross(ctx, view, col);
      points(ctx, view, d.target.data, 0, d.target.shape[0], 1.4, col.data, 0.45);
      trails(ctx, view, set.path.data, n, frame, count, colour, 0.55, 1.1);
      points(ctx, view, set.path.data, frame * n, n, 1.8, colour, 0.9);
      ctx.restore();
      label(ctx, title, rect.x + 8, rect.y + 6, col, { weight: 600, colour });
      legend(ctx, [{ colour, text: `W2 ${fmt(set.quality.w2)} (floor ${fmt(set.quality.floor)})`, kind: "dot" },
        { colour: col.data, text: "data", kind: "square" }], rect.x + 5, rect.y + rect.h - 5, rect.w - 10, col);
    });
  },

  summary(s) {
    const { data: d, frame } = s;
    const step = d.frame_steps[frame];
    const [, n] = d.diff.path.shape;
    const scale = d.params.scale === "ddpm"
      ? `DDPM's own states x_k, which keep roughly unit variance throughout; dividing by the factor c_k, ${fmt(d.diff.scales[frame], 3)} at this step, would put them on the flow's path`
      : "its states divided by c_k, which puts them on the flow's straight-line path";
    return `${d.steps} step${d.steps === 1 ? "" : "s"} each, showing step ${step} of ${d.steps}. ${n} particles start from the same Gaussian noise. ` +
      `The diffusion panel shows ${scale}. ` +
      `Left, the DDPM model sampled by DDIM (now at flow time ${fmt(d.diff.ts[frame])}); right, the flow-matching model with Euler (at t = ${fmt(d.flowd.ts[frame])}). ` +
      `At the end, W2 to the data: diffusion ${fmt(d.diff.quality.w2)}, flow matching ${fmt(d.flowd.quality.w2)}; two samples of the data itself land ${fmt(d.flowd.quality.floor_low)}–${fmt(d.flowd.quality.floor_high)} apart.`;
  },

  measure(s) {
    const d = s.data;
    return `Measured with ${d.steps} network call${d.steps === 1 ? "" : "s"} each, over ${d.flowd.quality.n} further points: ` +
      `DDIM W2 ${fmt(d.diff.quality.w2)} (${verdict(d.diff.quality)}), Euler on the flow W2 ${fmt(d.flowd.quality.w2)} (${verdict(d.flowd.quality)}); floor ${fmt(d.flowd.quality.floor)}.`;
  },

  table(s) {
    const d = s.data;
    const [F, n] = d.diff.path.shape;
    const rows = [];
    for (let f = 0; f < F; f += Math.max(1, Math.ceil((F - 1) / 20))) {
      const a = moments(d.diff.path.data, f * n, n), b = moments(d.flowd.path.data, f * n, n);
      rows.push([d.frame_steps[f], fmt(d.diff.ts[f]), `${fmt(a.sx)}, ${fmt(a.sy)}`, fmt(d.flowd.ts[f]), `${fmt(b.sx)}, ${fmt(b.sy)}`]);
    }
    return {
      caption: `The ${n} particles of each model after each step: flow time and spread of each coordinate`,
      columns: ["step", "DDIM time", "DDIM spread x, y", "flow time", "flow spread x, y"],
      rows,
      note: `W2 to the data after ${d.steps} steps: DDIM ${fmt(d.diff.quality.w2)}, flow ${fmt(d.flowd.quality.w2)}, floor ${fmt(d.flowd.quality.floor)}.`,
    };
  },
};
