// Chapter 6: trajectories of the 8gaussians model after 0 to 3 rounds of reflow (all shipped
// models), with every round's straightness score and one-step W2 measured on the same noise.

import { View, floorBand, fmt, fmtT, label, legend, stacked } from "./core.js";
import * as c from "./controls.js";
import { TRAJECTORY_FRAMES, drawTrajectories, trajectoryLayers } from "./trajectories.js";

const BOX = [-4, 4, -3.4, 3.4];
const PATHS = 80;

export default {
  label: "Trajectories of a flow model and of its reflowed versions, round 0 to 3",
  controls: [
    { type: "range", name: "round", label: "Reflow round", min: 0, max: 3, step: 1 },
    c.steps("Euler steps", 50),
    c.seed(),
  ],
  defaults: { round: 0, steps: 40, seed: 0 },
  ...TRAJECTORY_FRAMES,
  ...trajectoryLayers((s) => new View(0, 24, s.width, s.height - 24, BOX), PATHS),
  initialFrame: (d) => d.ts.length - 1,
  height: (w) => Math.round(Math.min(w * 0.7, 480)),

  draw(ctx, s) {
    const { data: d, colours: col } = s;
    const view = new View(0, 24, s.width, s.height - 24, BOX);
    const row = d.rounds[d.round];
    const count = drawTrajectories(ctx, s, view, { count: PATHS, trail: [0.55, 1.1] });
    const kind = stacked(s.width) ? "" : d.round === 0 ? " (independent pairs)" : " of reflow";  // narrow: the short title
    label(ctx, `Round ${d.round}${kind} · ${fmtT(s.t)}`, 10, 7, col, { size: 15, weight: 700 });
    const measured = `S = ${fmt(row.straightness, 4)} · 1-step W2 ${fmt(row.one_step.w2)} (${row.one_step.words})`;
    if (stacked(s.width)) label(ctx, measured, 10, 28, col, { weight: 600 });  // narrow: a second line, not over the first
    else label(ctx, measured, s.width - 10, 9, col, { align: "right", weight: 600 });
    // a bar per round: straightness on a log scale, the current round highlighted
    const bw = 16, gap = 6, bx = s.width - 4 * (bw + gap) - 8, base = s.height - 44, top = 50;
    const logs = d.rounds.map((r) => Math.log10(Math.max(r.straightness, 1e-4)));
    d.rounds.forEach((r, k) => {
      const h = ((logs[k] + 4) / (Math.max(...logs) + 4)) * (base - top - 16);
      ctx.fillStyle = k === d.round ? col.b : col.grid;
      ctx.fillRect(bx + k * (bw + gap), base - h, bw, h);
      label(ctx, String(k), bx + k * (bw + gap) + bw / 2, base + 3, col, { align: "center", size: 11 });
    });
    label(ctx, "S by round (log)", bx - 4, base + 16, col, { size: 11 });
    legend(ctx, [
      { colour: col.b, text: "particles", kind: "dot" },
      { colour: col.a, text: `paths of ${count}`, kind: "line" },
      { colour: col.data, text: "data", kind: "square" },
    ], 6, s.height - 6, s.width * 0.6, col);
  },

  summary(s) {
    const { data: d, frame } = s;
    const row = d.rounds[d.round];
    const prev = d.round > 0 ? d.rounds[d.round - 1] : null;
    const change = prev ? ` Round ${d.round - 1} had S = ${fmt(prev.straightness, 4)} and one-step W2 ${fmt(prev.one_step.w2)}.` : "";
    return `Reflow round ${d.round} (${d.model_name}), ${fmtT(s.t)}, Euler step ${frame} of ${d.ts.length - 1}. ` +
      `Straightness S = ${fmt(row.straightness, 4)} (0 means perfectly straight paths); a single Euler step lands at W2 ${fmt(row.one_step.w2)} from the data, ` +
      `${row.one_step.words} (two samples of the data itself land ${floorBand(row.one_step)} apart, the floor band).${change}`;
  },

  measure(s) {
    const d = s.data;
    return "Measured on the same 1000 noise points: " +
      d.rounds.map((r) => `round ${r.round}: S ${fmt(r.straightness, 4)}, one-step W2 ${fmt(r.one_step.w2)} (${r.one_step.words})`).join("; ") +
      `. Two samples of the data itself land ${floorBand(d.rounds[0].one_step)} apart (the floor band).`;
  },

  table(s) {
    const d = s.data;
    return {
      caption: "Every reflow round, measured on the same noise",
      columns: ["round", "model", "straightness S", "one-step W2", "floor band", "in words"],
      rows: d.rounds.map((r) => [r.round, r.model_name, fmt(r.straightness, 4), fmt(r.one_step.w2, 3), floorBand(r.one_step), r.one_step.words]),
    };
  },
};
