// Chapter 2: per-pair paths (straight vs the curved cosine path) with their Euler polylines, and the
// learned flow (independent or optimal-transport pairs) with its own; each panel quotes its error.

import { COUPLING_NAMES, DATASET_NAMES, View, axesCross, clip, decode, fmt, fmtT, label, legend, panel, panels, stacked } from "./core.js";
import * as c from "./controls.js";
import { linked } from "./linked.js";

const BOX = [-4, 4, -3.2, 3.2];
const SHOWN = [12, 40];  // pairs drawn in each panel (the errors average over every particle)

function prepareSet(set) {
  return { ...set, ref: decode(set.reference), eul: decode(set.euler) };
}

// position at time t along a piecewise-linear path sampled at times ts: [F, N, 2] flat
function at(ts, xs, n, i, t) {
  let f = 0;
  while (f < ts.length - 2 && ts[f + 1] < t) f++;
  const w = Math.max(0, Math.min(1, (t - ts[f]) / (ts[f + 1] - ts[f] || 1)));
  const a = (f * n + i) * 2, b = ((f + 1) * n + i) * 2;
  return [xs[a] + (xs[b] - xs[a]) * w, xs[a + 1] + (xs[b + 1] - xs[a + 1]) * w];
}

function drawSet(ctx, view, set, count, colour, t, { exactDash = false, nodes = true } = {}) {
  const [R, n] = set.ref.shape;
  const [E] = set.eul.shape;
  ctx.save();
  // exact routes
  ctx.strokeStyle = colour;
  ctx.globalAlpha = 0.45;
  ctx.lineWidth = 1.2;
  if (exactDash) ctx.setLineDash([5, 4]);
  ctx.beginPath();
  for (let i = 0; i < count; i++) {
    for (let f = 0; f < R; f++) {
      const k = (f * n + i) * 2;
      if (f === 0) ctx.moveTo(view.px(set.ref.data[k]), view.py(set.ref.data[k + 1]));
      else ctx.lineTo(view.px(set.ref.data[k]), view.py(set.ref.data[k + 1]));
    }
  }
  ctx.stroke();
  ctx.setLineDash([]);
  // Euler polylines and their nodes
  ctx.globalAlpha = 0.9;
  ctx.lineWidth = 1.4;
  ctx.beginPath();
  for (let i = 0; i < count; i++) {
    for (let f = 0; f < E; f++) {
      const k = (f * n + i) * 2;
      if (f === 0) ctx.moveTo(view.px(set.eul.data[k]), view.py(set.eul.data[k + 1]));
      else ctx.lineTo(view.px(set.eul.data[k]), view.py(set.eul.data[k + 1]));
    }
  }
  ctx.stroke();
  if (nodes && E <= 30) {
    ctx.fillStyle = colour;
    for (let i = 0; i < count; i++) {
      for (let f = 1; f < E; f++) {
        const k = (f * n + i) * 2;
        ctx.fillRect(view.px(set.eul.data[k]) - 1.5, view.py(set.eul.data[k + 1]) - 1.5, 3, 3);
      }
    }
  }
  // where the exact particle and the Euler particle are at time t
  ctx.globalAlpha = 1;
  for (let i = 0; i < count; i++) {
    const [ex, ey] = at(set.reference_ts, set.ref.data, n, i, t);
    const [ux, uy] = at(set.euler_ts, set.eul.data, n, i, t);
    ctx.strokeStyle = colour;
    ctx.lineWidth = 1.5;
    ctx.beginPath(); ctx.arc(view.px(ex), view.py(ey), 4, 0, 2 * Math.PI); ctx.stroke();
    ctx.fillStyle = colour;
    ctx.beginPath(); ctx.arc(view.px(ux), view.py(uy), 2.6, 0, 2 * Math.PI); ctx.fill();
  }
  ctx.restore();
}

function views(s) {
  return panels(s.width, s.height, 2).map((rect) => new View(rect.x, rect.y + 22, rect.w, rect.h - 22, BOX));
}

// linked views: a pair's straight route (with its curved one dashed) on the left, the learned
// flow's route from the same noise on the right; the partner is the pair's data point
const LINKED = linked((s) => {
  const d = s.data, [F, n] = d.straight.ref.shape, [left, right] = views(s);
  const partner = (i) => [d.straight.ref.data[((F - 1) * n + i) * 2], d.straight.ref.data[((F - 1) * n + i) * 2 + 1]];
  const common = { n, ts: d.straight.reference_ts, frame: s.frame, partner, partnerText: "its pair's data point is" };
  return [
    { ...common, view: left, xs: d.straight.ref.data, extra: [d.curved.ref.data], count: SHOWN[0] },
    { ...common, view: right, xs: d.learned.ref.data, count: SHOWN[1] },
  ];
});

// the data (every pair's end point) drawn faintly under a panel
function dataUnder(ctx, view, d, col) {
  const [F, n] = d.straight.ref.shape, xs = d.straight.ref.data;
  ctx.save();
  ctx.globalAlpha = 0.35;
  ctx.fillStyle = col.data;
  for (let i = 0; i < n; i++) ctx.fillRect(view.px(xs[((F - 1) * n + i) * 2]) - 1.2, view.py(xs[((F - 1) * n + i) * 2 + 1]) - 1.2, 2.4, 2.4);
  ctx.restore();
}

export default {
  ...LINKED,
  presets: [
    { label: "1 step + independent pairs", params: { steps: 1, coupling: "independent" } },
    { label: "1 step + OT", params: { steps: 1, coupling: "exact_ot" } },
  ],
  label: "Curved and straight paths with Euler's method, and the learned flow's paths",
  controls: [c.steps("Euler steps", 100), c.coupling(), c.dataset(), c.seed("New pairs")],
  defaults: { steps: 4, coupling: "independent", dataset: "two_clusters", seed: 0 },
  prepare: (body) => ({
    ...body,
    straight: prepareSet(body.conditional.straight),
    curved: prepareSet(body.conditional.curved),
    learned: prepareSet(body.learned),
  }),
  frames: (d) => d.straight.reference_ts.length,
  time: (d, i) => d.straight.reference_ts[i],
  initialFrame: (d) => d.straight.reference_ts.length - 1,
  height: (w) => (stacked(w) ? Math.round(w * 1.5) : Math.round(Math.min(w * 0.5, 380))),

  draw(ctx, s) {
    const { data: d, colours: col, t } = s;
    const rects = panels(s.width, s.height, 2), vs = views(s);
    const titles = [`${SHOWN[0]} pairs, each on its own path`, `Learned flow, ${COUPLING_NAMES[d.params.coupling]}`];
    rects.forEach((rect, k) => {
      panel(ctx, rect, col);
      const view = vs[k];
      ctx.save();
      clip(ctx, rect);
      axesCross(ctx, view, col);
      dataUnder(ctx, view, d, col);
      const count = Math.min(SHOWN[k], d.straight.ref.shape[1]);
      if (k === 0) {
        drawSet(ctx, view, d.curved, count, col.b, t);
        drawSet(ctx, view, d.straight, count, col.a, t, { exactDash: true });
      } else {
        drawSet(ctx, view, d.learned, count, col.c, t);
      }
      ctx.restore();
      label(ctx, titles[k], rect.x + 8, rect.y + 6, col, { weight: 600 });
      const items = k === 0
        ? [{ colour: col.b, text: `curved: error ${fmt(d.curved.euler_error)}`, kind: "line" },
           { colour: col.a, text: `straight: error ${fmt(d.straight.euler_error, 3)}`, kind: "line" }]
        : [{ colour: col.c, text: `Euler error ${fmt(d.learned.euler_error)}`, kind: "line" }];
      legend(ctx, items, rect.x + 5, rect.y + rect.h - 5, rect.w - 10, col);
    });
  },

  summary(s) {
    const d = s.data;
    return `${d.params.steps} Euler step${d.params.steps === 1 ? "" : "s"}, ${fmtT(s.t)}. ` +
      `One pair at a time: on the curved (cosine) path Euler misses the exact end point by ${fmt(d.curved.euler_error)} on average; ` +
      `on the straight path by ${fmt(d.straight.euler_error, 3)}, since a straight line at constant speed is integrated exactly. ` +
      `The learned flow trained on ${DATASET_NAMES[d.params.dataset]} with ${COUPLING_NAMES[d.params.coupling]} misses by ${fmt(d.learned.euler_error)}. ` +
      `Rings mark where the exact particles are at this time, dots where Euler's are.`;
  },

  measure(s) {
    const d = s.data;
    return `Measured at ${d.params.steps} step${d.params.steps === 1 ? "" : "s"} over ${d.straight.ref.shape[1]} particles: ` +
      `curved path ${fmt(d.curved.euler_error)}, straight path ${fmt(d.straight.euler_error, 3)}, ` +
      `learned flow (${COUPLING_NAMES[d.params.coupling]}) ${fmt(d.learned.euler_error)}.`;
  },

  table(s) {
    const d = s.data;
    return {
      caption: `Mean distance between Euler's end point and the exact one, ${d.params.steps} steps`,
      columns: ["path", "Euler error", "Euler steps"],
      rows: [
        ["one pair, curved (cosine) path", fmt(d.curved.euler_error, 3), d.params.steps],
        ["one pair, straight path", fmt(d.straight.euler_error, 3), d.params.steps],
        [`learned flow, ${COUPLING_NAMES[d.params.coupling]}`, fmt(d.learned.euler_error, 3), d.params.steps],
      ],
    };
  },
};
