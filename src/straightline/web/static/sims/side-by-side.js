// Chapter 9: the same Gaussian noise sampled by a DDPM model (deterministic DDIM) and by a
// flow-matching model (Euler), both with the chosen number of network calls, on the two moons
// (particles and their paths, W2) or on the 8x8 digits (16 images at the shown step, digit FD).
// The diffusion states are drawn on the linear path's scale (x_k / c_k), so the two are comparable.

import { View, axesCross, clip, decode, floorBand, fmt, label, legend, moments, panel, panels, points, rgbOf, stacked, trails } from "./core.js";
import * as c from "./controls.js";
import { tile } from "./digits.js";
import { linked } from "./linked.js";

const BOX = [-4, 4, -3.2, 3.2];
const PATHS = 60;
const GRID = 4;  // digits: a 4 x 4 grid of images per sampler

const isDigits = (d) => Boolean(d && d.params && d.params.data === "digits");

// linked views (moons only): the same noise point's route under DDIM (left) and Euler on the flow
// (right); the diffusion's states are at its own times, which the frames share with the flow's
const LINKED = linked((s) => {
  const d = s.data;
  if (isDigits(d)) return [];
  return panels(s.width, s.height, 2).map((rect, k) => {
    const set = k === 0 ? d.diff : d.flowd;
    return { view: new View(rect.x, rect.y + 22, rect.w, rect.h - 22, BOX), xs: set.path.data, n: set.path.shape[1], ts: set.ts, frame: s.frame, count: PATHS };
  });
});
const LINKED_VIEWS = {
  setup: LINKED.setup,
  overlay: (ctx, s) => (isDigits(s.data) ? undefined : LINKED.overlay(ctx, s)),
  onKey: (event, player) => (isDigits(player.data) ? false : LINKED.onKey(event, player)),
};

function qualityText(q) {
  return "fd" in q ? `digit FD ${fmt(q.fd, 1)} (${q.words})` : `W2 ${fmt(q.w2)} (${q.words})`;
}

// the images of one sampler at the shown step: a GRID x GRID block of tiles centred in rect
function drawDigits(ctx, s, set, rect, colour) {
  const col = s.colours, paper = rgbOf(col.paper), pen = rgbOf(col.pen);
  const [, n] = set.path.shape;
  const gap = 6, top = rect.y + 30, room = Math.min(rect.w - 24, rect.h - 30 - 40);
  const cell = Math.floor((room - (GRID - 1) * gap) / GRID);
  const x0 = rect.x + (rect.w - (GRID * cell + (GRID - 1) * gap)) / 2;
  for (let i = 0; i < Math.min(n, GRID * GRID); i++) {
    const x = x0 + (i % GRID) * (cell + gap), y = top + Math.floor(i / GRID) * (cell + gap);
    tile(ctx, set.path.data, (s.frame * n + i) * 64, x, y, cell, paper, pen);
  }
  const q = set.quality;
  legend(ctx, [{ colour, text: `digit FD ${fmt(q.fd, 1)} (floor ${fmt(q.floor, 1)}, ${q.n} images)`, kind: "square" }],
    rect.x + 5, rect.y + rect.h - 5, rect.w - 10, col);
}

function drawMoons(ctx, s, set, rect, colour) {
  const { data: d, frame, colours: col } = s;
  const [, n] = set.path.shape;
  const count = Math.min(n, PATHS);
  const view = new View(rect.x, rect.y + 22, rect.w, rect.h - 22, BOX);
  ctx.save();
  clip(ctx, rect);
  axesCross(ctx, view, col);
  points(ctx, view, d.target.data, 0, d.target.shape[0], 1.4, col.data, 0.45);
  trails(ctx, view, set.path.data, n, frame, count, colour, 0.55, 1.1);
  points(ctx, view, set.path.data, frame * n, n, 1.8, colour, 0.9);
  ctx.restore();
  legend(ctx, [{ colour, text: `W2 ${fmt(set.quality.w2)} (${set.quality.words})`, kind: "dot" },
    { colour: col.data, text: "data", kind: "square" }], rect.x + 5, rect.y + rect.h - 5, rect.w - 10, col);
}

// pixel mean and spread of every image of one sampler at frame f
function pixelMoments(set, f) {
  const [, n] = set.path.shape, start = f * n * 64, count = n * 64, px = set.path.data;
  let sum = 0, sum2 = 0;
  for (let i = 0; i < count; i++) { const v = px[start + i]; sum += v; sum2 += v * v; }
  const mean = sum / count;
  return { mean, spread: Math.sqrt(Math.max(0, sum2 / count - mean * mean)) };
}

export default {
  label: "Diffusion (DDIM) and flow-matching trajectories from the same noise, side by side",
  controls: [
    { type: "radio", name: "data", label: "Data", options: [["moons", "Two moons"], ["digits", "8×8 digits"]] },
    c.steps("Steps (network calls)", 100),
    { type: "radio", name: "scale", label: "Diffusion drawn on", options: [["flow", "the linear path's scale"], ["ddpm", "DDPM's own scale"]] },
    c.seed(),
  ],
  defaults: { data: "moons", steps: 20, scale: "flow", seed: 0 },
  ...LINKED_VIEWS,
  presets: [
    { label: "1 step each", params: { steps: 1 } },
    { label: "5 steps each", params: { steps: 5 } },
    { label: "Digits, 5 steps each", params: { data: "digits", steps: 5 } },
  ],
  prepare: (body) => ({
    ...body,
    diff: { ...body.diffusion, path: decode(body.diffusion.frames) },
    flowd: { ...body.flow, path: decode(body.flow.frames) },
    target: body.data ? decode(body.data) : null,
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
      panel(ctx, rect, col);
      if (isDigits(d)) drawDigits(ctx, s, set, rect, colour);
      else drawMoons(ctx, s, set, rect, colour);
      label(ctx, title, rect.x + 8, rect.y + 6, col, { weight: 600, colour });
    });
  },

  summary(s) {
    const { data: d, frame } = s;
    const step = d.frame_steps[frame];
    const [, n] = d.diff.path.shape;
    const digits = isDigits(d);
    const kept = digits ? "" : ", which keep roughly unit variance throughout";
    const scale = d.params.scale === "ddpm"
      ? `DDPM's own states xₖ${kept}; dividing by the factor cₖ, ${fmt(d.diff.scales[frame], 3)} at this step, would put them on the flow's path`
      : "its states divided by cₖ, which puts them on the flow's straight-line path";
    const what = digits ? `${n} digit images (8 × 8 pixels)` : `${n} particles`;
    const models = digits ? "ε-model (trained as DDPM)" : "DDPM model";
    const end = digits
      ? `At the end, digit Fréchet distance over ${d.diff.quality.n} further images: diffusion ${fmt(d.diff.quality.fd, 1)}, flow matching ${fmt(d.flowd.quality.fd, 1)}; two halves of the real digits score ${fmt(d.flowd.quality.floor, 1)}.`
      : `At the end, W2 to the data: diffusion ${fmt(d.diff.quality.w2)}, flow matching ${fmt(d.flowd.quality.w2)}; two samples of the data itself land ${floorBand(d.flowd.quality)} apart.`;
    return `${d.steps} step${d.steps === 1 ? "" : "s"} each, showing step ${step} of ${d.steps}. ${what} start from the same Gaussian noise. ` +
      `The diffusion panel shows ${scale}. ` +
      `Left, the ${models} sampled by DDIM (now at flow time ${fmt(d.diff.ts[frame])}); right, the flow-matching model with Euler (at t = ${fmt(d.flowd.ts[frame])}). ` + end;
  },

  measure(s) {
    const d = s.data;
    const q = d.flowd.quality;
    const over = "fd" in q ? `${q.n} further images` : `${q.n} further points`;
    const floor = "fd" in q ? `two halves of the real digits score ${fmt(q.floor, 1)}` : `two samples of the data land ${floorBand(q)} apart (the floor band)`;
    return `Measured with ${d.steps} network call${d.steps === 1 ? "" : "s"} each, over ${over}: ` +
      `DDIM ${qualityText(d.diff.quality)}, Euler on the flow ${qualityText(q)}; ${floor}.`;
  },

  table(s) {
    const d = s.data;
    const [F, n] = d.diff.path.shape;
    const digits = isDigits(d);
    const rows = [];
    for (let f = 0; f < F; f += Math.max(1, Math.ceil((F - 1) / 20))) {
      if (digits) {
        const a = pixelMoments(d.diff, f), b = pixelMoments(d.flowd, f);
        rows.push([d.frame_steps[f], fmt(d.diff.ts[f]), `${fmt(a.mean)}, ${fmt(a.spread)}`, fmt(d.flowd.ts[f]), `${fmt(b.mean)}, ${fmt(b.spread)}`]);
      } else {
        const a = moments(d.diff.path.data, f * n, n), b = moments(d.flowd.path.data, f * n, n);
        rows.push([d.frame_steps[f], fmt(d.diff.ts[f]), `${fmt(a.sx)}, ${fmt(a.sy)}`, fmt(d.flowd.ts[f]), `${fmt(b.sx)}, ${fmt(b.sy)}`]);
      }
    }
    const spread = digits ? "pixel mean, spread" : "spread x, y";
    const final = digits
      ? `Digit FD after ${d.steps} steps (${d.flowd.quality.n} images): DDIM ${fmt(d.diff.quality.fd, 1)}, flow ${fmt(d.flowd.quality.fd, 1)}, floor ${fmt(d.flowd.quality.floor, 1)}.`
      : `W2 to the data after ${d.steps} steps: DDIM ${fmt(d.diff.quality.w2)}, flow ${fmt(d.flowd.quality.w2)}, floor band ${floorBand(d.flowd.quality)}.`;
    return {
      caption: digits
        ? `The ${n} images of each model after each step: flow time and the pixels' mean and spread`
        : `The ${n} particles of each model after each step: flow time and spread of each coordinate`,
      columns: ["step", "DDIM time", `DDIM ${spread}`, "flow time", `flow ${spread}`],
      rows,
      note: final,
    };
  },
};
