// Chapter 1: the log-density a shipped 2-D flow assigns to each point of a grid, computed by
// integrating the divergence of its velocity backwards in time (RK4, exact divergence), beside the
// data's true log-density (closed form for the Gaussian mixtures, a kernel estimate for the moons).

import { COUPLING_NAMES, DATASET_NAMES, View, clip, decode, fmt, heatmap, label, panel, panels, points, stacked } from "./core.js";
import * as c from "./controls.js";

const RANGE = 10;  // nats shown below the highest value; lower values share the palest colour

function truthName(d) {
  return d.truth === "mixture" ? "exact density of the mixture" : "kernel density estimate of 8000 data points (no closed form)";
}

export default {
  label: "Heat maps of a trained flow's log-density and of the data's true log-density",
  timeline: false,
  controls: [
    c.dataset(),
    c.coupling(2),
    { type: "select", name: "grid", label: "Grid", parse: (v) => Number.parseInt(v, 10), options: [[24, "24 × 24"], [40, "40 × 40"], [64, "64 × 64"]] },
    c.seed("New data points"),
  ],
  defaults: { dataset: "8gaussians", coupling: "independent", grid: 40, steps: 20, seed: 0 },
  prepare: (body) => ({ ...body, m: decode(body.model), tr: decode(body.true), pts: decode(body.data) }),
  height: (w) => (stacked(w) ? Math.round(w * 2 + 10) : Math.round(Math.min(w / 2 + 24, 400))),

  draw(ctx, s) {
    const { data: d, colours: col } = s;
    const g = d.params.grid, e = d.params.extent;
    let hi = -Infinity;
    for (const v of d.tr.data) hi = Math.max(hi, v);
    for (const v of d.m.data) hi = Math.max(hi, v);
    const lo = hi - RANGE;
    const rects = panels(s.width, s.height, 2);
    const sets = [[d.m, "Model: log p by integrating the divergence"], [d.tr, d.truth === "mixture" ? "Truth: the mixture's log p" : "Truth (estimated): kernel density"]];
    rects.forEach((rect, k) => {
      panel(ctx, rect, col);
      const view = new View(rect.x, rect.y + 22, rect.w, rect.h - 40, [-e, e, -e, e], 4);
      ctx.save();
      clip(ctx, rect);
      heatmap(ctx, view, sets[k][0].data, g, e, col, col.a, lo, hi);
      if (k === 1) points(ctx, view, d.pts.data, 0, Math.min(150, d.pts.shape[0]), 1.2, col.ink, 0.5);
      ctx.restore();
      label(ctx, sets[k][1], rect.x + 8, rect.y + 6, col, { weight: 600 });
      label(ctx, `colour: log p from ${fmt(lo, 1)} (pale) to ${fmt(hi, 1)}`, rect.x + 8, rect.y + rect.h - 16, col, { size: 11 });
    });
  },

  summary(s) {
    const d = s.data;
    const o = d.on_data;
    return `Model ${d.model_name} (${DATASET_NAMES[d.params.dataset]}, ${COUPLING_NAMES[d.params.coupling]}), log-density on a ${d.params.grid} × ${d.params.grid} grid ` +
      `by ${d.params.steps} RK4 steps (${d.nfe} evaluations of the field and its divergence per point). Right: the ${truthName(d)}. ` +
      `On ${o.n} data points the two differ by ${fmt(o.mean_abs_gap, 3)} nats on average; the model's mean log-likelihood there is ${fmt(o.model_mean_log_p, 3)} against ${fmt(o.true_mean_log_p, 3)} for the truth.`;
  },

  measure(s) {
    const o = s.data.on_data;
    return `Measured on ${o.n} data points: mean |Δ log p| ${fmt(o.mean_abs_gap, 3)}; average log-likelihood ${fmt(o.model_mean_log_p, 3)} (model) against ${fmt(o.true_mean_log_p, 3)} (${s.data.truth === "mixture" ? "exact" : "kernel estimate"}).`;
  },

  table(s) {
    const d = s.data;
    const g = d.params.grid, e = d.params.extent;
    const stride = Math.max(1, Math.round((g - 1) / 6));
    const rows = [];
    for (let r = 0; r < g; r += stride) {
      for (let q = 0; q < g; q += stride) {
        const x = -e + (2 * e * q) / (g - 1), y = -e + (2 * e * r) / (g - 1);
        rows.push([`(${fmt(x, 1)}, ${fmt(y, 1)})`, fmt(d.m.data[r * g + q], 2), fmt(d.tr.data[r * g + q], 2)]);
      }
    }
    return { caption: `log p at ${rows.length} grid points (values below -60 are shown as -60)`, columns: ["point", "model log p", "true log p"], rows };
  },
};
