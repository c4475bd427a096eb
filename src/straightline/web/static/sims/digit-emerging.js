// Chapter 1: digits integrated from noise by the shipped digits model, every Euler step.
// Top: the first sample at t = 0, 0.25, 0.5 and 1; below: every sample at the time chosen.

import { fmt, fmtT, label, panel, rgbOf } from "./core.js";
import * as c from "./controls.js";
import { DIGIT_FRAMES, firstImageTable, sampleGrid, tile } from "./digits.js";

const MARKS = [0, 0.25, 0.5, 1];

function layout(width, images) {
  const gap = 10;
  const strip = Math.min(120, (width - 3 * gap - 20) / 4);
  const cols = width >= 520 ? Math.min(8, images) : Math.min(4, images);
  const rows = Math.ceil(images / cols);
  const cell = Math.min(96, (width - (cols - 1) * gap - 20) / cols);
  return { gap, strip, cols, rows, cell, top: 28, gridTop: 28 + strip + 54 };
}

export default {
  label: "Handwritten-digit samples emerging from noise as t goes from 0 to 1",
  controls: [
    { type: "select", name: "label", label: "Digit", parse: (v) => (v === "" ? null : Number.parseInt(v, 10)),
      options: [["", "Any digit"], ...Array.from({ length: 10 }, (_, k) => [k, String(k)])] },
    c.seed(),
  ],
  defaults: { label: null, seed: 0 },
  marks: MARKS,
  ...DIGIT_FRAMES,
  height(width) {
    const l = layout(width, 8);
    return Math.round(l.gridTop + l.rows * (l.cell + l.gap) + 6);
  },

  draw(ctx, s) {
    const { data: d, frame, colours: col } = s;
    panel(ctx, { x: 0, y: 0, w: s.width, h: s.height }, col);
    const [frames, n] = d.images.shape;
    const px = d.images.data;
    const paper = rgbOf(col.paper), pen = rgbOf(col.pen);
    const l = layout(s.width, n);
    const size = 64;
    label(ctx, "The first sample at four times", 10, 7, col, { weight: 600 });
    const stripW = 4 * l.strip + 3 * l.gap;
    const x0 = (s.width - stripW) / 2;
    MARKS.forEach((t, k) => {
      const f = Math.round(t * (frames - 1));
      const x = x0 + k * (l.strip + l.gap);
      tile(ctx, px, f * n * size, x, l.top, l.strip, paper, pen);
      const current = Math.abs(d.ts[frame] - t) < 0.5 / (frames - 1);
      ctx.strokeStyle = current ? col.b : col.grid;
      ctx.lineWidth = current ? 3 : 1;
      ctx.strokeRect(x - 1.5, l.top - 1.5, l.strip + 3, l.strip + 3);
      label(ctx, `t = ${t}`, x + l.strip / 2, l.top + l.strip + 6, col, { align: "center", weight: current ? 700 : 400 });
    });
    label(ctx, `All ${n} samples at ${fmtT(s.t)}`, 10, l.gridTop - 22, col, { weight: 600 });
    sampleGrid(ctx, s, { ...l, top: l.gridTop }, paper, pen);
  },

  summary(s) {
    const { data: d, frame } = s;
    const [, n] = d.images.shape;
    let sum = 0, sum2 = 0;
    const start = frame * n * 64, count = n * 64;
    for (let i = 0; i < count; i++) { const v = d.images.data[start + i]; sum += v; sum2 += v * v; }
    const mean = sum / count, spread = Math.sqrt(sum2 / count - mean * mean);
    const which = d.params.label === null ? "any digit" : `the digit ${d.params.label}`;
    const stage = s.t < 0.2 ? "still mostly noise" : s.t < 0.6 ? "a blurry shape forming" : s.t < 1 ? "nearly finished digits" : "finished samples";
    return `${fmtT(s.t)}, Euler step ${frame} of ${d.ts.length - 1}: ${n} samples of ${which} from seed ${d.params.seed}, ` +
      `${stage}. Pixel mean ${fmt(mean)} and spread ${fmt(spread)} (noise has 0 and 1; the digits' ink runs from -1 to 1).`;
  },

  table(s) {
    return firstImageTable(s);
  },
};
