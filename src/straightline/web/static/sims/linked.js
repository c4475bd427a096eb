// Linked views of particles, shared by the particle simulations: point at a particle (hover, drag
// or touch), or pick one with ] and [ while the picture has focus (Escape lets go). In every panel
// the same particle then shows its whole path, its velocity now (an arrow), and, where the panel
// knows it, the data point it was paired with in training (a square joined by a dashed line).
//
// layers(state) -> [{view, xs, n, ts, frame, count, extra: [xs...], partner(i) -> [x, y] | null, partnerText}]
//   xs: flat [F, n, 2] positions with times ts; count: the first particles that can be picked.

import { el, fmt, nearest } from "./core.js";

const ARROW_TIME = 0.25;  // the velocity arrow spans the travel of a quarter time unit

function pos(L, i, f) {
  const k = (f * L.n + i) * 2;
  return [L.xs[k], L.xs[k + 1]];
}

function velocity(L, i) {
  const F = L.ts.length, f = Math.min(L.frame, F - 2), a = pos(L, i, f), b = pos(L, i, f + 1);
  const h = L.ts[f + 1] - L.ts[f] || 1;
  return [(b[0] - a[0]) / h, (b[1] - a[1]) / h];
}

function polyline(ctx, view, xs, n, i, frames) {
  ctx.beginPath();
  for (let f = 0; f < frames; f++) {
    const k = (f * n + i) * 2;
    if (f === 0) ctx.moveTo(view.px(xs[k]), view.py(xs[k + 1])); else ctx.lineTo(view.px(xs[k]), view.py(xs[k + 1]));
  }
  ctx.stroke();
}

function drawOne(ctx, L, i, col) {
  const { view } = L;
  ctx.save();
  ctx.strokeStyle = col.ink; ctx.fillStyle = col.ink; ctx.lineWidth = 2.2;
  polyline(ctx, view, L.xs, L.n, i, L.ts.length);
  ctx.lineWidth = 1.4; ctx.setLineDash([5, 3]);
  for (const xs of L.extra || []) polyline(ctx, view, xs, L.n, i, xs.length / (2 * L.n));
  const [x, y] = pos(L, i, L.frame), [vx, vy] = velocity(L, i);
  const partner = L.partner ? L.partner(i) : null;
  if (partner) {
    const [sx, sy] = pos(L, i, 0);
    ctx.beginPath(); ctx.moveTo(view.px(sx), view.py(sy)); ctx.lineTo(view.px(partner[0]), view.py(partner[1])); ctx.stroke();
    ctx.setLineDash([]);
    ctx.strokeRect(view.px(partner[0]) - 5, view.py(partner[1]) - 5, 10, 10);
  }
  ctx.setLineDash([]);
  const ex = view.px(x + ARROW_TIME * vx), ey = view.py(y + ARROW_TIME * vy), a = Math.atan2(ey - view.py(y), ex - view.px(x));
  ctx.lineWidth = 2.5; ctx.strokeStyle = col.e; ctx.fillStyle = col.e;
  ctx.beginPath(); ctx.moveTo(view.px(x), view.py(y)); ctx.lineTo(ex, ey); ctx.stroke();
  ctx.beginPath(); ctx.moveTo(ex, ey); ctx.lineTo(ex - 8 * Math.cos(a - 0.45), ey - 8 * Math.sin(a - 0.45)); ctx.lineTo(ex - 8 * Math.cos(a + 0.45), ey - 8 * Math.sin(a + 0.45)); ctx.fill();
  ctx.strokeStyle = col.ink; ctx.lineWidth = 2;
  ctx.beginPath(); ctx.arc(view.px(x), view.py(y), 6, 0, 2 * Math.PI); ctx.stroke();
  ctx.restore();
}

function describe(L, i) {
  const [x, y] = pos(L, i, L.frame), [vx, vy] = velocity(L, i), p = L.partner ? L.partner(i) : null;
  const start = pos(L, i, 0);
  return `Particle ${i + 1}: started at (${fmt(start[0])}, ${fmt(start[1])}), now at (${fmt(x)}, ${fmt(y)}), velocity (${fmt(vx)}, ${fmt(vy)})` +
    (p ? `; ${L.partnerText || "paired in training with"} (${fmt(p[0])}, ${fmt(p[1])})` : "") + ".";
}

// the layers' overlay (spec.overlay) and the pointer and key wiring (spec.setup, spec.onKey)
export function linked(layers) {
  const pick = (player, event) => {
    const r = player.canvas.getBoundingClientRect(), px = event.clientX - r.left, py = event.clientY - r.top;
    let best = { index: null, distance: 14 };  // pixels: nothing is picked further than this
    for (const L of layers(player.state())) {
      const v = L.view;
      if (px < v.x || px > v.x + v.w || py < v.y || py > v.y + v.h) continue;
      const onScreen = (i) => { const [x, y] = pos(L, i, L.frame); return [v.px(x), v.py(y)]; };
      const found = nearest(Math.min(L.count, L.n), onScreen, px, py, best.distance);
      if (found.index !== null) best = found;
    }
    return best.index;
  };
  const choose = (player, i) => {
    if (player.picked === i) return;
    player.picked = i;
    player.figure.dataset.picked = i === null ? "" : String(i);
    player.render();
  };
  return {
    overlay(ctx, s) {
      const i = s.player.picked;
      const all = layers(s);
      if (s.player.linkedOut) s.player.linkedOut.textContent = i === null || i === undefined ? "" : describe(all[all.length - 1], i);
      if (i === null || i === undefined) return;
      for (const L of all) if (i < L.n) drawOne(ctx, L, i, s.colours);
    },
    setup(player) {
      player.picked = null;
      player.linkedOut = el("p", { class: "sim__linked", "aria-live": "polite" });
      player.stage.after(player.linkedOut);
      player.canvas.setAttribute("aria-keyshortcuts", "] [ Escape");
      const hover = (event) => { if (player.data) { const i = pick(player, event); if (i !== null || event.type !== "pointermove") choose(player, i); } };
      player.canvas.addEventListener("pointermove", hover);
      player.canvas.addEventListener("pointerdown", hover);
    },
    onKey(event, player) {
      if (!player.data || !["]", "[", "Escape"].includes(event.key)) return false;
      const count = Math.min(...layers(player.state()).map((L) => Math.min(L.count, L.n)));
      const now = player.picked ?? -1;
      choose(player, event.key === "Escape" ? null : (now + (event.key === "]" ? 1 : count - 1 + (now < 0 ? 1 : 0))) % count);
      event.preventDefault();
      return true;
    },
  };
}
