// Chapter 7 (jumping): the same Gaussian noise through four few-step samplers on the two moons,
// each with the chosen number of network evaluations (NFE): flow matching and a 2-rectified flow
// step with Euler, a shortcut model and a MeanFlow model jump with their learned flow maps.
// Every panel draws the data faintly underneath and reports its W2 beside the floor band.

import { View, clip, decode, floorBand, fmt, fmtT, label, legend, panel, points, trails } from "./core.js";
import * as c from "./controls.js";

const BOX = [-2.6, 3.4, -2.2, 2.6];
const PATHS = 60;
const SAMPLERS = [
  ["fm", "Flow matching (Euler)", "a", "FM (Euler)"],
  ["reflow", "2-rectified flow (Euler)", "b", "2-RF (Euler)"],
  ["shortcut", "Shortcut model (jumps)", "c", "Shortcut"],
  ["meanflow", "MeanFlow (jumps)", "d", "MeanFlow"],
];
const NARROW = 220; // px: a panel narrower than this gets the short title and W2 alone (the words are in the text below)

// four panels in a row on wide canvases, two by two otherwise
function layout(width, height, gap = 10) {
  const cols = width >= 700 ? 4 : 2;
  const rows = 4 / cols;
  const w = (width - gap * (cols - 1)) / cols, h = (height - gap * (rows - 1)) / rows;
  return Array.from({ length: 4 }, (_, i) => ({ x: (i % cols) * (w + gap), y: Math.floor(i / cols) * (h + gap), w, h }));
}

function calls(n) {
  return `${n} network evaluation${n === 1 ? "" : "s"}`;
}

export default {
  label: "Samples of four few-step samplers from the same noise: flow matching, 2-rectified flow, shortcut model and MeanFlow",
  controls: [
    { type: "radio", name: "nfe", label: "Network evaluations (NFE)", options: [[1, "1"], [2, "2"], [4, "4"], [8, "8"]] },
    c.seed(),
  ],
  defaults: { nfe: 1, seed: 0 },
  prepare: (body) => {
    const out = { ...body, target: decode(body.data), sets: {} };
    for (const [key] of SAMPLERS) out.sets[key] = { ...body.samplers[key], path: decode(body.samplers[key].frames) };
    return out;
  },
  frames: (d) => d.ts.length,
  time: (d, i) => d.ts[i],
  initialFrame: (d) => d.ts.length - 1,
  height: (w) => (w >= 700 ? Math.round(Math.min(w * 0.3, 300)) : Math.round(w * 0.95)),

  draw(ctx, s) {
    const { data: d, frame, colours: col } = s;
    layout(s.width, s.height).forEach((rect, k) => {
      const [key, long, tone, short] = SAMPLERS[k];
      const narrow = rect.w < NARROW;
      const title = narrow ? short : long;
      const set = d.sets[key];
      const colour = col[tone];
      const [, n] = set.path.shape;
      panel(ctx, rect, col);
      const view = new View(rect.x, rect.y + 20, rect.w, rect.h - 20, BOX, 4);
      ctx.save();
      clip(ctx, rect);
      points(ctx, view, d.target.data, 0, d.target.shape[0], 1.2, col.data, 0.3);
      trails(ctx, view, set.path.data, n, frame, Math.min(n, PATHS), colour, 0.45, 1);
      points(ctx, view, set.path.data, frame * n, n, 1.6, colour, 0.9);
      ctx.restore();
      label(ctx, title, rect.x + 6, rect.y + 5, col, { weight: 600, colour, size: 12 });
      const w2 = `W2 ${fmt(set.quality.w2)}`;
      legend(ctx, [{ colour, text: narrow ? w2 : `${w2}: ${set.quality.words}`, kind: "dot" }],
        rect.x + 4, rect.y + rect.h - 4, rect.w - 8, col, 11);
    });
  },

  summary(s) {
    const { data: d, frame } = s;
    const [, n] = d.sets.fm.path.shape;
    const parts = SAMPLERS.map(([key, title]) => `${title}: W2 ${fmt(d.sets[key].quality.w2)} (${d.sets[key].quality.words})`);
    return `${calls(d.nfe)} per sampler; showing ${fmtT(d.ts[frame])}, after ${frame} of ${d.nfe}. ` +
      `${n} particles start from the same Gaussian noise in all four panels; the two moons are drawn faintly underneath. ` +
      `At t = 1, W2 to the data: ${parts.join("; ")}. Two samples of the data itself land ` +
      `${floorBand(d.sets.fm.quality)} apart.`;
  },

  measure(s) {
    const d = s.data;
    const q = d.sets.fm.quality;
    return `Measured with ${calls(d.nfe)} each over ${q.n} further points; floor ${fmt(q.floor)} ` +
      `(band ${floorBand(q)}): ` +
      SAMPLERS.map(([key, title]) => `${title} ${fmt(d.sets[key].quality.w2)}`).join(", ") + ".";
  },

  table(s) {
    const d = s.data;
    return {
      caption: `W2 to the data after ${calls(d.nfe)} (${d.sets.fm.quality.n} points per sampler)`,
      columns: ["sampler", "shipped model", "network evaluations", "W2", "against the floor"],
      rows: SAMPLERS.map(([key, title]) => [title, d.sets[key].model_name, d.sets[key].nfe, fmt(d.sets[key].quality.w2), d.sets[key].quality.words]),
      note: `Floor: two samples of the data, W2 ${fmt(d.sets.fm.quality.floor)} on average (10–90 % band ${floorBand(d.sets.fm.quality)}).`,
    };
  },
};
