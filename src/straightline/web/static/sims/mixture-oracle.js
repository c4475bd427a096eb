// Chapter 3: the closed-form marginal velocity u_t(x) of a two-cluster Gaussian mixture beside the
// field a network learned from pair velocities alone; below, Monte Carlo CFM vs FM gradients.

import { View, arrows, axesCross, clip, decode, el, fmt, fmtT, gridRows, label, panel, panels, points, stacked } from "./core.js";
import * as c from "./controls.js";

const TIMES = Array.from({ length: 20 }, (_, i) => Math.round(i * 5) / 100);
const UNIT_SPEED = 4;

function rgba(colour, alpha) {
  const probe = document.createElement("canvas").getContext("2d");
  probe.fillStyle = colour;
  const hex = probe.fillStyle;
  const [r, g, b] = hex.startsWith("#") ? [1, 3, 5].map((i) => Number.parseInt(hex.slice(i, i + 2), 16)) : [128, 128, 128];
  return [r, g, b, alpha];
}

// the density p_t on the grid as a smooth shaded image behind the arrows
function shade(ctx, view, d, colour) {
  const g = d.params.grid;
  const image = new ImageData(g, g);
  const [r, gg, b] = rgba(colour, 1);
  for (let row = 0; row < g; row++) {
    for (let q = 0; q < g; q++) {
      const v = d.dens.data[row * g + q];  // row 0 is the lowest y
      const k = ((g - 1 - row) * g + q) * 4;
      image.data[k] = r; image.data[k + 1] = gg; image.data[k + 2] = b;
      image.data[k + 3] = Math.round(255 * 0.55 * Math.sqrt(Math.max(0, Math.min(1, v))));
    }
  }
  const off = document.createElement("canvas");
  off.width = g; off.height = g;
  off.getContext("2d").putImageData(image, 0, 0);
  const e = d.params.extent;
  const step = (2 * e) / (g - 1);
  ctx.save();
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(off, view.px(-e - step / 2), view.py(e + step / 2), (2 * e + step) * view.scale, (2 * e + step) * view.scale);
  ctx.restore();
}

export default {
  label: "The exact marginal velocity field beside the field of a network trained with the conditional loss",
  controls: [
    { type: "select", name: "samples", label: "Monte Carlo samples", parse: (v) => Number.parseInt(v, 10), options: [[1024, "1024"], [4096, "4096"], [16384, "16384"]] },
    c.seed("New weights and samples"),
  ],
  defaults: { samples: 4096, seed: 0, t: 0.5 },
  frameParam: { name: "t", values: TIMES },
  prepare: (body) => ({ ...body, pts: decode(body.points), u: decode(body.oracle), v: decode(body.model), dens: decode(body.density), under: body.data ? decode(body.data) : null }),
  height: (w) => (stacked(w) ? Math.round(w * 2 + 10) : Math.round(Math.min(w / 2, 360))),

  draw(ctx, s) {
    const { data: d, colours: col } = s;
    const e = d.params.extent;
    const rects = panels(s.width, s.height, 2);
    const sets = [[d.u, "Closed form uₜ(x)", col.a], [d.v, "Trained network v_{θ}(x, t)", col.b]];
    rects.forEach((rect, k) => {
      panel(ctx, rect, col);
      const view = new View(rect.x, rect.y + 22, rect.w, rect.h - 22, [-e, e, -e, e], 8);
      const cell = ((2 * e) / (d.params.grid - 1)) * view.scale;
      ctx.save();
      clip(ctx, rect);
      shade(ctx, view, d, col.c);
      axesCross(ctx, view, col);
      if (d.under) points(ctx, view, d.under.data, 0, d.under.shape[0], 1.4, col.data, 0.35);
      arrows(ctx, view, d.pts.data, sets[k][0].data, sets[k][2], { unit: ((2 * e) / (d.params.grid - 1)) / UNIT_SPEED * 0.95, maxLen: cell * 1.25, width: 1.4 });
      ctx.restore();
      label(ctx, sets[k][1], rect.x + 8, rect.y + 6, col, { weight: 600, colour: sets[k][2] });
    });
    label(ctx, fmtT(d.t), s.width - 8, rects[0].y + 6, col, { align: "right", weight: 700 });
  },

  summary(s) {
    const d = s.data;
    const a = d.agreement;
    return `${fmtT(d.t)}. Left, the exact marginal velocity of the mixture of two Gaussians at (-2, 0) and (2, 0) (standard deviation 0.35); ` +
      `right, the velocity field of the network trained only on pair velocities (${d.model_name}). Shading shows the density pₜ. ` +
      `Where the probability is, they differ by ${fmt(100 * a.relative_error, 1)} % (relative error weighted by pₜ; mean cosine ${fmt(a.cosine, 3)}).`;
  },

  measure(s) {
    const d = s.data;
    if (d.measureNode) return d.measureNode;
    const rows = d.gradients.map((r) => [r.samples, fmt(r.cosine, 4), fmt(r.relative_difference, 3), fmt(r.loss_cfm, 3), fmt(r.loss_fm, 3)]);
    const tableEl = el("table", { class: "sim__table" });
    tableEl.append(el("caption", { text: "CFM and FM loss gradients for the same network weights and the same samples" }));
    const head = el("tr");
    for (const h of ["samples", "cosine of the gradients", "relative difference", "CFM loss", "FM loss"]) head.append(el("th", { scope: "col", text: h }));
    tableEl.append(el("thead", {}, head));
    const body = el("tbody");
    for (const row of rows) body.append(el("tr", {}, ...row.map((v, i) => el(i ? "td" : "th", i ? { text: String(v) } : { scope: "row", text: String(v) }))));
    tableEl.append(body);
    d.measureNode = el("div", {},
      el("div", { class: "sim__table-scroll", tabindex: "0", role: "region", "aria-label": "gradient comparison" }, tableEl),
      el("p", { class: "sim__note", text: "The two losses differ by a constant (the spread of the pair targets), so their values differ, but their gradients point the same way: the estimates agree better as the sample grows, and exactly in expectation." }));
    return d.measureNode;
  },

  table(s) {
    const d = s.data;
    const rows = gridRows(d.params.grid, (k, i) => [
      `(${fmt(d.pts.data[k], 1)}, ${fmt(d.pts.data[k + 1], 1)})`, `(${fmt(d.u.data[k])}, ${fmt(d.u.data[k + 1])})`,
      `(${fmt(d.v.data[k])}, ${fmt(d.v.data[k + 1])})`, fmt(d.dens.data[i], 3),
    ]);
    return { caption: `Both fields at ${rows.length} grid points, ${fmtT(d.t)}`, columns: ["point", "exact uₜ", "network v𝜃", "density (max 1)"], rows };
  },
};
