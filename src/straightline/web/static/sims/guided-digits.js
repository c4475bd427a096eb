// Chapter 7: class-conditional digits from the tiny MMDiT with classifier-free guidance of scale w
// (v = v_uncond + w (v_cond - v_uncond)); the shipped digit classifier's accuracy on the samples.

import { fmt, fmtT, label, panel, rgbOf } from "./core.js";
import * as c from "./controls.js";
import { DIGIT_FRAMES, firstImageTable, sampleGrid } from "./digits.js";

function layout(width, images) {
  const gap = 8;
  const cols = Math.min(images, width >= 520 ? 8 : 4);
  const cell = Math.min(84, (width - (cols - 1) * gap - 20) / cols);
  return { gap, cols, rows: Math.ceil(images / cols), cell, top: width >= 520 ? 30 : 50 };  // narrow: two title lines
}

export default {
  label: "Digits drawn by a small transformer under classifier-free guidance",
  controls: [
    { type: "select", name: "label", label: "Digit", parse: (v) => Number.parseInt(v, 10), options: Array.from({ length: 10 }, (_, k) => [k, String(k)]) },
    { type: "range", name: "w", label: "Guidance scale w (taught in Chapter 9)", min: 0, max: 5, step: 0.5, format: (v) => v.toFixed(1) },
    c.seed(),
  ],
  defaults: { label: 3, w: 1, seed: 0 },
  ...DIGIT_FRAMES,
  height(width) {
    const l = layout(width, 16);
    return Math.round(l.top + l.rows * (l.cell + l.gap) + 8);
  },

  draw(ctx, s) {
    const { data: d, colours: col } = s;
    panel(ctx, { x: 0, y: 0, w: s.width, h: s.height }, col);
    const [, n] = d.images.shape;
    const l = layout(s.width, n);
    const paper = rgbOf(col.paper), pen = rgbOf(col.pen);
    label(ctx, `Digit ${d.params.label}, w = ${fmt(d.params.w, 1)} · ${fmtT(s.t)}`, 10, 8, col, { weight: 700, size: 14 });
    const accuracy = `classifier accuracy ${fmt(100 * d.accuracy, 0)} %`;
    if (l.top > 30) label(ctx, accuracy, 10, 28, col, { weight: 600 });
    else label(ctx, accuracy, s.width - 10, 9, col, { align: "right", weight: 600 });
    sampleGrid(ctx, s, l, paper, pen);
  },

  summary(s) {
    const { data: d, frame } = s;
    const [, n] = d.images.shape;
    const mode = d.params.w === 0 ? "the label is ignored (unconditional)" : d.params.w === 1 ? "the plain conditional model" : d.params.w < 1 ? "between unconditional and conditional" : "guided beyond the conditional model";
    return `${n} samples asking for the digit ${d.params.label} at guidance scale w = ${fmt(d.params.w, 1)}: ${mode}. ` +
      `${fmtT(s.t)}, Euler step ${frame} of ${d.ts.length - 1}. At t = 1 the digit classifier reads ${fmt(100 * d.accuracy, 0)} % of them as a ${d.params.label}; ` +
      `their pixels vary by ${fmt(d.spread, 2)} on average from sample to sample (less variety as the number falls).`;
  },

  measure(s) {
    const d = s.data;
    return `Measured at w = ${fmt(d.params.w, 1)} on these ${d.images.shape[1]} samples: classifier accuracy ${fmt(100 * d.accuracy, 0)} %, pixel spread across samples ${fmt(d.spread, 2)}.`;
  },

  table(s) {
    const n = s.data.images.shape[1];
    return { ...firstImageTable(s), note: `Classifier accuracy on all ${n} samples at t = 1: ${fmt(100 * s.data.accuracy, 0)} %.` };
  },
};
