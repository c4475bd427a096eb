// Shared by the particle simulations (particles-flow, euler-steps, reflow-straightening): the
// player fields of a run whose every saved state is a frame, and its picture: the data, each
// drawn particle's trail up to the shown frame, and every particle where it is then.

import { axesCross, clip, decode, panel, points, trails } from "./core.js";
import { linked } from "./linked.js";

export const TRAJECTORY_FRAMES = {
  prepare: (body) => ({ ...body, path: decode(body.frames), target: decode(body.data), partners: body.partners ? decode(body.partners) : null }),
  frames: (d) => d.ts.length,
  time: (d, i) => d.ts[i],
};

// `count`: particles whose trails are drawn (the first ones; returns how many were); `between(n,
// count)` draws on top of the trails and below the particles (still clipped to the panel).
export function drawTrajectories(ctx, s, view, { count, dataAlpha = 0.5, trail = [0.5], dot = [1.9, 0.9], between } = {}) {
  const { data: d, frame, colours: col } = s;
  const rect = { x: 0, y: 0, w: s.width, h: s.height };
  panel(ctx, rect, col);
  const [, n] = d.path.shape;
  const drawn = Math.min(n, count);
  ctx.save();
  clip(ctx, rect);
  axesCross(ctx, view, col);
  points(ctx, view, d.target.data, 0, d.target.shape[0], 1.5, col.data, dataAlpha);
  trails(ctx, view, d.path.data, n, frame, drawn, col.a, ...trail);
  if (between) between(n, drawn);
  points(ctx, view, d.path.data, frame * n, n, dot[0], col.b, dot[1]);
  ctx.restore();
  return drawn;
}

// Linked views (linked.js) of a one-panel run drawn in `viewOf(state)`: the first `count`
// particles can be picked; the training partners come with the run when the server sends them.
export function trajectoryLayers(viewOf, count) {
  return linked((s) => {
    const d = s.data, [, n] = d.path.shape, p = d.partners;
    const ot = d.params.coupling === "exact_ot";
    return [{
      view: viewOf(s), xs: d.path.data, n, ts: d.ts, frame: s.frame, count,
      partner: p ? (i) => (i < p.shape[0] ? [p.data[2 * i], p.data[2 * i + 1]] : null) : null,
      partnerText: ot ? "its optimal-transport partner in a training batch of 150 is" : "its independent partner in a training batch of 150 is",
    }];
  });
}
