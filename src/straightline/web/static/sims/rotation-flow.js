// Chapter 7: rotations carried from Haar-uniform noise to a three-mode distribution on SO(3) by a
// shipped flow (geodesic Euler steps). The server sends each rotation as its rotation vector
// w = log R; the page rebuilds R (Rodrigues) and draws, left, where R sends the z axis (a point on
// the unit sphere, with a tick towards R's x axis), right, w itself inside the ball of radius π.

import { View, clip, decode, fmt, fmtT, label, legend, panel, panels, stacked } from "./core.js";
import * as c from "./controls.js";

const YAW = (35 * Math.PI) / 180, TILT = (22 * Math.PI) / 180;

// R v for the rotation vector w (Rodrigues)
function rotate(w0, w1, w2, v) {
  const th = Math.hypot(w0, w1, w2);
  if (th < 1e-9) return v;
  const k = [w0 / th, w1 / th, w2 / th];
  const cos = Math.cos(th), sin = Math.sin(th);
  const dot = k[0] * v[0] + k[1] * v[1] + k[2] * v[2];
  const cross = [k[1] * v[2] - k[2] * v[1], k[2] * v[0] - k[0] * v[2], k[0] * v[1] - k[1] * v[0]];
  return [0, 1, 2].map((i) => v[i] * cos + cross[i] * sin + k[i] * dot * (1 - cos));
}

// a fixed oblique camera: [screen x, screen y, depth towards the viewer]
function project(p) {
  const a = Math.cos(YAW) * p[0] + Math.sin(YAW) * p[1];
  const b = -Math.sin(YAW) * p[0] + Math.cos(YAW) * p[1];
  return [b, -Math.sin(TILT) * a + Math.cos(TILT) * p[2], Math.cos(TILT) * a + Math.sin(TILT) * p[2]];
}

function outline(ctx, view, radius, colour) {
  ctx.save();
  ctx.strokeStyle = colour;
  ctx.lineWidth = 1;
  ctx.beginPath();
  ctx.arc(view.px(0), view.py(0), radius * view.scale, 0, 2 * Math.PI);
  ctx.stroke();
  ctx.globalAlpha = 0.6;
  ctx.beginPath();  // the equator
  for (let i = 0; i <= 64; i++) {
    const [x, y] = project([radius * Math.cos((i / 32) * Math.PI), radius * Math.sin((i / 32) * Math.PI), 0]);
    if (i === 0) ctx.moveTo(view.px(x), view.py(y)); else ctx.lineTo(view.px(x), view.py(y));
  }
  ctx.stroke();
  ctx.restore();
}

export default {
  label: "Rotations flowing from uniform noise to three target orientations on the rotation group",
  controls: [
    c.steps("Steps on SO(3)", 100),
    { type: "select", name: "particles", label: "Rotations", parse: (v) => Number.parseInt(v, 10), options: [[50, "50"], [150, "150"], [300, "300"], [500, "500"]] },
    c.seed(),
  ],
  defaults: { steps: 40, particles: 150, seed: 0 },
  prepare: (body) => ({ ...body, w: decode(body.frames), m: decode(body.modes) }),
  frames: (d) => d.ts.length,
  time: (d, i) => d.ts[i],
  initialFrame: (d) => d.ts.length - 1,
  height: (w) => (stacked(w) ? Math.round(w * 2 + 10) : Math.round(Math.min(w / 2 + 20, 420))),

  draw(ctx, s) {
    const { data: d, frame, colours: col } = s;
    const [, n] = d.w.shape;
    const rects = panels(s.width, s.height, 2);
    const titles = ["Where each rotation sends the z axis", "Rotation vectors log R (ball of radius π)"];
    rects.forEach((rect, k) => {
      panel(ctx, rect, col);
      const r = k === 0 ? 1 : Math.PI;
      const view = new View(rect.x, rect.y + 22, rect.w, rect.h - 44, [-1.15 * r, 1.15 * r, -1.15 * r, 1.15 * r]);
      ctx.save();
      clip(ctx, rect);
      outline(ctx, view, r, col.grid);
      const drawOne = (w0, w1, w2, colour, size, ring) => {
        let p, tick = null;
        if (k === 0) { p = project(rotate(w0, w1, w2, [0, 0, 1])); tick = project(rotate(w0, w1, w2, [0.18, 0, 1])); }
        else p = project([w0, w1, w2]);
        const front = p[2] >= 0 || k === 1;
        ctx.globalAlpha = front ? 0.9 : 0.3;
        ctx.strokeStyle = colour; ctx.fillStyle = colour;
        if (tick) { ctx.lineWidth = 1; ctx.beginPath(); ctx.moveTo(view.px(p[0]), view.py(p[1])); ctx.lineTo(view.px(tick[0]), view.py(tick[1])); ctx.stroke(); }
        ctx.beginPath(); ctx.arc(view.px(p[0]), view.py(p[1]), size, 0, 2 * Math.PI);
        if (ring) { ctx.lineWidth = 2.5; ctx.stroke(); } else ctx.fill();
      };
      for (let i = 0; i < n; i++) {
        const o = (frame * n + i) * 3;
        drawOne(d.w.data[o], d.w.data[o + 1], d.w.data[o + 2], col.b, 2.2, false);
      }
      for (let j = 0; j < d.m.shape[0]; j++) drawOne(d.m.data[3 * j], d.m.data[3 * j + 1], d.m.data[3 * j + 2], col.c, 9, true);
      ctx.restore();
      label(ctx, titles[k], rect.x + 8, rect.y + 6, col, { weight: 600 });
      if (k === 0) label(ctx, fmtT(s.t), rect.x + rect.w - 8, rect.y + 6, col, { align: "right", weight: 700 });
      legend(ctx, [{ colour: col.b, text: "rotations", kind: "dot" }, { colour: col.c, text: "the three modes", kind: "ring" }], rect.x + 5, rect.y + rect.h - 5, rect.w - 10, col);
    });
  },

  summary(s) {
    const { data: d, frame } = s;
    const [, n] = d.w.shape;
    return `${fmtT(s.t)}, geodesic Euler step ${d.frame_steps[frame]} of ${d.params.steps}: ${n} rotations that started Haar-uniform. ` +
      `Their mean geodesic distance to the nearest of the three modes is ${fmt(d.mean_distance[frame], 3)} radians ` +
      `(${fmt(d.mean_distance[0], 3)} at t = 0; ${fmt(d.data_mean_distance, 3)} for the training data itself). ` +
      `At t = 1, ${fmt(100 * d.near_a_mode, 0)} % lie within ${d.near} radians of a mode (${fmt(100 * d.data_near_a_mode, 0)} % of the data do).`;
  },

  measure(s) {
    const d = s.data;
    return `Measured with ${d.params.steps} steps: mean distance to the nearest mode ${fmt(d.mean_distance[0], 3)} rad at t = 0, ` +
      `${fmt(d.mean_distance[d.ts.length - 1], 3)} rad at t = 1, against ${fmt(d.data_mean_distance, 3)} rad for the data.`;
  },

  table(s) {
    const d = s.data;
    const F = d.ts.length;
    const rows = [];
    const stride = Math.max(1, Math.ceil((F - 1) / 20));
    for (let f = 0; f < F; f += stride) rows.push([d.frame_steps[f], fmt(d.ts[f]), fmt(d.mean_distance[f], 3)]);
    if ((F - 1) % stride) rows.push([d.frame_steps[F - 1], fmt(d.ts[F - 1]), fmt(d.mean_distance[F - 1], 3)]);
    return {
      caption: "Mean geodesic distance (radians) from each rotation to its nearest mode, step by step",
      columns: ["step", "t", "mean distance"],
      rows,
      note: `The training data's own mean distance is ${fmt(d.data_mean_distance, 3)} rad.`,
    };
  },
};
