// Chapter 5: error at t = 1 against the number of function evaluations, log–log, one series per
// solver, with the slopes the server fitted (the order of convergence).

import { DATASET_NAMES, fmt, label, panel } from "./core.js";
import * as c from "./controls.js";

const METHODS = ["euler", "midpoint", "heun", "rk4", "dopri5"];
const SUP = { "-": "⁻", 0: "⁰", 1: "¹", 2: "²", 3: "³", 4: "⁴", 5: "⁵", 6: "⁶", 7: "⁷", 8: "⁸", 9: "⁹" };
const pow10 = (k) => `10${String(k).split("").map((ch) => SUP[ch]).join("")}`;
const FLOOR = 1e-12;

function marker(ctx, shape, x, y, r) {
  ctx.beginPath();
  if (shape === 0) ctx.arc(x, y, r, 0, 2 * Math.PI);
  else if (shape === 1) ctx.rect(x - r, y - r, 2 * r, 2 * r);
  else if (shape === 2) { ctx.moveTo(x, y - r * 1.2); ctx.lineTo(x + r * 1.1, y + r * 0.8); ctx.lineTo(x - r * 1.1, y + r * 0.8); ctx.closePath(); }
  else if (shape === 3) { ctx.moveTo(x, y - r * 1.3); ctx.lineTo(x + r * 1.1, y); ctx.lineTo(x, y + r * 1.3); ctx.lineTo(x - r * 1.1, y); ctx.closePath(); }
  else { ctx.moveTo(x - r, y - r); ctx.lineTo(x + r, y + r); ctx.moveTo(x + r, y - r); ctx.lineTo(x - r, y + r); }
}

function colourOf(col, i) {
  return [col.a, col.b, col.c, col.d, col.e][i];
}

export default {
  label: "Error against function evaluations on log–log axes for five ODE solvers",
  timeline: false,
  controls: [
    { type: "select", name: "dataset", label: "Model trained on", options: [["moons", "Two moons"], ["two_clusters", "Two clusters"], ["8gaussians", "Eight Gaussians"]] },
    c.seed(),
  ],
  defaults: { dataset: "moons", seed: 0 },
  height: (w) => Math.round(w < 520 ? w * 0.85 + 150 : Math.min(w * 0.72, 470)),

  draw(ctx, s) {
    const { data: d, colours: col } = s;
    panel(ctx, { x: 0, y: 0, w: s.width, h: s.height }, col);
    const narrow = s.width < 520;
    const m = { l: 52, r: 12, t: 14, b: narrow ? 150 : 44 };
    const plot = { x: m.l, y: m.t, w: s.width - m.l - m.r, h: s.height - m.t - m.b };
    const all = METHODS.flatMap((k) => d.series[k].nfe.map((n, i) => [n, Math.max(FLOOR, d.series[k].error[i])]));
    const lx0 = Math.floor(Math.log10(Math.min(...all.map((p) => p[0])))), lx1 = Math.ceil(Math.log10(Math.max(...all.map((p) => p[0]))));
    const ly0 = Math.floor(Math.log10(Math.min(...all.map((p) => p[1])))), ly1 = Math.ceil(Math.log10(Math.max(...all.map((p) => p[1]))));
    const X = (n) => plot.x + ((Math.log10(n) - lx0) / (lx1 - lx0)) * plot.w;
    const Y = (e) => plot.y + plot.h - ((Math.log10(Math.max(FLOOR, e)) - ly0) / (ly1 - ly0)) * plot.h;
    // grid and ticks
    ctx.save();
    ctx.strokeStyle = col.grid;
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (let k = lx0; k <= lx1; k++) { const x = Math.round(X(10 ** k)) + 0.5; ctx.moveTo(x, plot.y); ctx.lineTo(x, plot.y + plot.h); }
    const yStep = ly1 - ly0 > 8 ? 2 : 1;
    for (let k = ly0; k <= ly1; k += yStep) { const y = Math.round(Y(10 ** k)) + 0.5; ctx.moveTo(plot.x, y); ctx.lineTo(plot.x + plot.w, y); }
    ctx.stroke();
    ctx.restore();
    for (let k = lx0; k <= lx1; k++) label(ctx, pow10(k), X(10 ** k), plot.y + plot.h + 5, col, { align: "center", colour: col.muted, halo: false });
    for (let k = ly0; k <= ly1; k += yStep) label(ctx, pow10(k), plot.x - 6, Y(10 ** k), col, { align: "right", baseline: "middle", colour: col.muted, halo: false });
    label(ctx, "function evaluations (NFE)", plot.x + plot.w / 2, plot.y + plot.h + 22, col, { align: "center", halo: false });
    ctx.save();
    ctx.translate(13, plot.y + plot.h / 2);
    ctx.rotate(-Math.PI / 2);
    label(ctx, "error at t = 1", 0, 0, col, { align: "center", baseline: "middle", halo: false });
    ctx.restore();
    // series
    METHODS.forEach((name, i) => {
      const series = d.series[name];
      const colour = colourOf(col, i);
      ctx.save();
      ctx.strokeStyle = colour;
      ctx.fillStyle = colour;
      ctx.lineWidth = 2;
      if (name === "dopri5") ctx.setLineDash([2, 4]);
      ctx.beginPath();
      series.nfe.forEach((n, j) => { const x = X(n), y = Y(series.error[j]); if (j === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y); });
      ctx.stroke();
      ctx.setLineDash([]);
      series.nfe.forEach((n, j) => {
        marker(ctx, i, X(n), Y(series.error[j]), 4);
        if (i === 4) ctx.stroke(); else ctx.fill();
      });
      ctx.restore();
    });
    // legend: the measured slopes
    const rows = METHODS.map((name, i) => ({ name, i, text: `${name}: slope ${fmt(d.series[name].slope, 2)} (order ${d.series[name].order})` }));
    ctx.save();
    ctx.font = `400 12px ${col.font}`;
    const lw = Math.max(...rows.map((r) => ctx.measureText(r.text).width)) + 30;
    ctx.restore();
    const lx = narrow ? plot.x : plot.x + plot.w - lw - 6;
    const ly = narrow ? plot.y + plot.h + 40 : plot.y + 6;
    ctx.save();
    ctx.globalAlpha = 0.9;
    ctx.fillStyle = col.panel;
    ctx.fillRect(lx, ly, lw, rows.length * 17 + 8);
    ctx.restore();
    rows.forEach((r) => {
      const y = ly + 12 + r.i * 17;
      const colour = colourOf(col, r.i);
      ctx.save();
      ctx.fillStyle = colour; ctx.strokeStyle = colour; ctx.lineWidth = 2;
      marker(ctx, r.i, lx + 12, y, 4);
      if (r.i === 4) ctx.stroke(); else ctx.fill();
      ctx.restore();
      label(ctx, r.text, lx + 24, y, col, { baseline: "middle", halo: false });
    });
  },

  summary(s) {
    const d = s.data;
    const slopes = METHODS.map((k) => `${k} ${fmt(d.series[k].slope, 2)}`).join(", ");
    return `Error at t = 1 against the number of function evaluations, log–log, for the model trained on ${DATASET_NAMES[d.params.dataset]}, ` +
      `${d.params.particles} particles, against a dopri5 reference at tolerance 10⁻¹². Measured slopes (the order of convergence): ${slopes}. ` +
      `Theory: 1 for Euler, 2 for midpoint and Heun, 4 for RK4; dopri5 picks its own steps, one point per tolerance.`;
  },

  measure(s) {
    const d = s.data;
    return `Measured slopes: ${METHODS.map((k) => `${k} ${fmt(d.series[k].slope, 2)}`).join(" · ")}.`;
  },

  table(s) {
    const d = s.data;
    const rows = [];
    for (const name of METHODS) {
      const series = d.series[name];
      series.nfe.forEach((n, j) => rows.push([name, n, series.error[j].toExponential(2), j === 0 ? fmt(series.slope, 2) : ""]));
    }
    return { caption: "Error at t = 1 for each solver and number of function evaluations", columns: ["solver", "NFE", "error", "slope"], rows };
  },
};
