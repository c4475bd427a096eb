// Chapter 5 Break-It lab: the healthy sampler beside the same sampler with real faults injected
// (straightline.faults), both run by the server; the W2 distance to the data before and after.

import { DATASET_NAMES, View, axesCross, clip, decode, floorBand, fmt, fmtT, label, legend, panel, panels, points, stacked, trails } from "./core.js";
import * as c from "./controls.js";

const BOX = [-4, 4, -3.1, 3.1];
const PATHS = 60;
const FAULT_NAMES = {
  "curved-velocity": "paths bent around the origin",
  "frozen-time": "time stuck at t = 0",
  "velocity-bias": "a constant bias in the velocity",
};
// the step counts the lab offers (straightline/course/breakit.py LAB_STEPS; one step is left out:
// there even the healthy sampler sends every particle to about the data's mean)
const LAB_STEPS = [2, 3, 5, 10, 20, 50, 100];

function faultText(faults) {
  if (!faults.length) return "no fault";
  const names = faults.map((f) => FAULT_NAMES[f]);
  return names.length === 1 ? names[0] : `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`;
}

function outside(view, xs, start, n) {
  let k = 0;
  for (let i = 0; i < n; i++) if (!view.inside(xs[(start + i) * 2], xs[(start + i) * 2 + 1])) k++;
  return k;
}

export default {
  label: "The healthy Euler sampler beside the same sampler with faults switched on",
  controls: [
    { type: "checks", name: "faults", label: "Faults", options: [
      ["curved-velocity", "Paths bent around the origin"],
      ["frozen-time", "Time stuck at t = 0"],
      ["velocity-bias", "Constant bias in the velocity"],
    ] },
    { type: "select", name: "steps", label: "Euler steps", parse: (v) => Number.parseInt(v, 10),
      options: LAB_STEPS.map((n) => [n, String(n)]) },
    c.dataset(),
    c.seed(),
  ],
  defaults: { faults: [], steps: 10, dataset: "moons", seed: 0 },
  prepare: (body) => ({ ...body, healthy: decode(body.healthy), broken: decode(body.broken) }),
  frames: (d) => d.ts.length,
  time: (d, i) => d.ts[i],
  initialFrame: (d) => d.ts.length - 1,
  height: (w) => (stacked(w) ? Math.round(w * 1.45) : Math.round(Math.min(w * 0.48, 360))),

  draw(ctx, s) {
    const { data: d, frame, colours: col } = s;
    const rects = panels(s.width, s.height, 2);
    const faults = d.params.faults;
    const sets = [
      { xs: d.healthy, q: d.quality_before, title: "Healthy sampler", colour: col.a },
      { xs: d.broken, q: d.quality_after, title: faults.length ? `With ${faultText(faults)}` : "Faults on: none yet", colour: col.b },
    ];
    rects.forEach((rect, k) => {
      const set = sets[k];
      const [, n] = set.xs.shape;
      panel(ctx, rect, col);
      const view = new View(rect.x, rect.y + 22, rect.w, rect.h - 22, BOX);
      ctx.save();
      clip(ctx, rect);
      axesCross(ctx, view, col);
      trails(ctx, view, set.xs.data, n, frame, Math.min(n, PATHS), set.colour, 0.35, 1);
      points(ctx, view, set.xs.data, frame * n, n, 1.7, set.colour, 0.85);
      ctx.restore();
      label(ctx, set.title, rect.x + 8, rect.y + 6, col, { weight: 600, colour: set.colour });
      const away = outside(view, set.xs.data, frame * n, n);
      const items = [{ colour: set.colour, text: `W2 at t = 1: ${fmt(set.q.w2)}`, kind: "dot" }];
      if (away) items.push({ colour: col.muted, text: `${away} off the picture`, kind: "ring" });
      legend(ctx, items, rect.x + 5, rect.y + rect.h - 5, rect.w - 10, col);
    });
  },

  summary(s) {
    const d = s.data;
    const before = d.quality_before, after = d.quality_after;
    return `${fmtT(s.t)}, ${d.params.steps} Euler steps, ${d.healthy.shape[1]} particles, model trained on ${DATASET_NAMES[d.params.dataset]}. ` +
      `Left, the healthy sampler: W2 to the data ${fmt(before.w2)}. Right, the sampler with ${faultText(d.params.faults)}: W2 ${fmt(after.w2)}. ` +
      `Two samples of the data itself land between ${fmt(before.floor_low)} and ${fmt(before.floor_high)} of each other (the floor band).`;
  },

  measure(s) {
    const d = s.data;
    const before = d.quality_before, after = d.quality_after;
    if (!d.params.faults.length) {
      return `Measured now: the healthy sampler lands at W2 ${fmt(before.w2)} from the data, ${before.words}. Switch on a fault to measure what it breaks.`;
    }
    const factor = after.w2 / before.w2;
    return `Measured now, ${d.params.steps} Euler steps: W2 to the data ${fmt(before.w2)} with the faults off (${before.words}), ` +
      `${fmt(after.w2)} with ${faultText(d.params.faults)}: ${fmt(factor, factor < 10 ? 2 : 3)} times the healthy value.`;
  },

  table(s) {
    const d = s.data;
    const rows = [["healthy", "none", fmt(d.quality_before.w2, 3), floorBand(d.quality_before, 3), d.quality_before.words]];
    rows.push(["broken", faultText(d.params.faults), fmt(d.quality_after.w2, 3), floorBand(d.quality_after, 3), d.quality_after.words]);
    return {
      caption: `W2 distance of the samples at t = 1 to the data (${d.params.steps} Euler steps, ${d.quality_before.n} points)`,
      columns: ["sampler", "faults", "W2", "floor band (10–90 %)", "verdict"],
      rows,
      note: d.faults.map((f) => `${f.name}: ${f.summary}`).join(" ") || undefined,
    };
  },
};
