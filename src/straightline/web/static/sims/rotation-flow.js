// Chapter 7: rotations carried from Haar-uniform noise to a three-mode distribution on SO(3) by a
// shipped flow (geodesic Euler steps). The server sends each rotation as its rotation vector
// w = log R; the page rebuilds R (Rodrigues) and draws, left, where R sends the z axis (a point on
// the unit sphere, with a tick towards R's x axis), right, w itself inside the ball of radius π.

import { View, clip, decode, el, fmt, fmtT, label, legend, panel, panels, stacked } from "./core.js";
import * as c from "./controls.js";

const DEG = Math.PI / 180;
const HOME = { yaw: 35 * DEG, tilt: 22 * DEG };
const camera = { ...HOME };  // turned by dragging the picture or with the arrow keys on the "Turn" control

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

// an oblique camera: [screen x, screen y, depth towards the viewer]
function project(p) {
  const { yaw, tilt } = camera;
  const a = Math.cos(yaw) * p[0] + Math.sin(yaw) * p[1];
  const b = -Math.sin(yaw) * p[0] + Math.cos(yaw) * p[1];
  return [b, -Math.sin(tilt) * a + Math.cos(tilt) * p[2], Math.cos(tilt) * a + Math.sin(tilt) * p[2]];
}

function turn(player, dYaw, dTilt) {
  camera.yaw = (camera.yaw + dYaw) % (2 * Math.PI);
  camera.tilt = Math.max(-89 * DEG, Math.min(89 * DEG, camera.tilt + dTilt));
  player.figure.dataset.camera = `${Math.round(camera.yaw / DEG)},${Math.round(camera.tilt / DEG)}`;
  player.turnOut.textContent = `turned ${Math.round(camera.yaw / DEG)}°, tilted ${Math.round(camera.tilt / DEG)}°`;
  player.render();
}

// drag the picture to turn both spheres; or focus "Turn the view" and use the arrow keys (Home resets)
function turnControl(player) {
  const pad = el("button", { type: "button", class: "btn btn--secondary sim__btn-text", text: "Turn the view",
    "aria-describedby": `${player.elementId}-turn-help` });
  player.turnOut = el("output", { class: "sim__value", "aria-live": "polite" });
  const help = el("span", { class: "visually-hidden", id: `${player.elementId}-turn-help`, text: "Arrow keys turn the view; Home resets it. You can also drag the picture." });
  pad.addEventListener("keydown", (event) => {
    const step = (event.shiftKey ? 30 : 10) * DEG;
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] };
    if (event.key in moves) turn(player, ...moves[event.key]);
    else if (event.key === "Home") turn(player, HOME.yaw - camera.yaw, HOME.tilt - camera.tilt);
    else return;
    event.preventDefault();
  });
  pad.addEventListener("click", () => turn(player, 30 * DEG, 0));
  let drag = null;
  player.canvas.addEventListener("pointerdown", (e) => { drag = { x: e.clientX, y: e.clientY }; player.canvas.setPointerCapture(e.pointerId); });
  player.canvas.addEventListener("pointermove", (e) => {
    if (!drag) return;
    turn(player, (e.clientX - drag.x) * 0.01, (e.clientY - drag.y) * 0.01);
    drag = { x: e.clientX, y: e.clientY };
  });
  for (const end of ["pointerup", "pointercancel"]) player.canvas.addEventListener(end, () => { drag = null; });
  player.canvas.style.touchAction = "none";
  player.controlBox.append(el("div", { class: "sim__control sim__seed" }, pad, player.turnOut, help));
  turn(player, 0, 0);
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
  setup: turnControl,
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
      // narrow: the time goes one line lower, into the empty corner beside the sphere, not over the title
      if (k === 0) label(ctx, fmtT(s.t), rect.x + rect.w - 8, rect.y + (stacked(s.width) ? 24 : 6), col, { align: "right", weight: 700 });
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
