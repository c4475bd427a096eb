// Chapter 0: particles carried from Gaussian noise to the data by a trained model's velocity field.

import { COUPLING_NAMES, DATASET_NAMES, View, fmt, fmtT, label, legend, moments } from "./core.js";
import * as c from "./controls.js";
import { TRAJECTORY_FRAMES, drawTrajectories, trajectoryLayers } from "./trajectories.js";

const BOX = [-4.2, 4.2, -3.3, 3.3];
const TRAILS = 150;  // paths drawn for the first particles only: enough to see the flow, not a smear

export default {
  label: "Particles moving from Gaussian noise at t = 0 to the data at t = 1",
  controls: [c.dataset(), c.coupling(2), c.particles(), c.seed()],
  defaults: { dataset: "two_clusters", coupling: "independent", particles: 500, seed: 0 },
  autoplay: true,
  ...TRAJECTORY_FRAMES,
  ...trajectoryLayers((s) => new View(0, 0, s.width, s.height, BOX), TRAILS),
  presets: [
    { label: "two moons, independent pairs", params: { dataset: "moons", coupling: "independent" } },
    { label: "two moons, optimal-transport pairs (Chapter 2)", params: { dataset: "moons", coupling: "exact_ot" } },
  ],
  initialFrame: () => 0,
  height: (w) => Math.round(Math.min(w * 0.68, 470)),

  draw(ctx, s) {
    const col = s.colours;
    const view = new View(0, 0, s.width, s.height, BOX);
    drawTrajectories(ctx, s, view, { count: TRAILS, dataAlpha: 0.55, trail: [0.3], dot: [2.2, 0.95] });
    label(ctx, fmtT(s.t), 10, 8, col, { size: 15, weight: 700 });
    legend(ctx, [
      { colour: col.b, text: "particles", kind: "dot" },
      { colour: col.a, text: "their paths so far", kind: "line" },
      { colour: col.data, text: "data", kind: "square" },
      { colour: col.ink, text: "point at a particle: its path and training partner", kind: "line" },
    ], 6, s.height - 6, s.width - 12, col);
  },

  summary(s) {
    const { data: d, frame } = s;
    const [, n] = d.path.shape;
    const m = moments(d.path.data, frame * n, n);
    const steps = d.ts.length - 1;
    return `${fmtT(s.t)}, Euler step ${frame} of ${steps}. ${n} particles move from Gaussian noise toward ` +
      `${DATASET_NAMES[d.params.dataset]} under a model trained with ${COUPLING_NAMES[d.params.coupling]}. ` +
      `Their mean is (${fmt(m.mx)}, ${fmt(m.my)}); they spread ${fmt(m.sx)} across and ${fmt(m.sy)} up and down.`;
  },

  table(s) {
    const { data: d, frame } = s;
    const [, n] = d.path.shape;
    const shown = Math.min(n, 20);
    const rows = [];
    for (let i = 0; i < shown; i++) {
      const k = i * 2, j = (frame * n + i) * 2;
      rows.push([i + 1, fmt(d.path.data[k]), fmt(d.path.data[k + 1]), fmt(d.path.data[j]), fmt(d.path.data[j + 1])]);
    }
    return {
      caption: `Particle positions at ${fmtT(s.t)} (the first ${shown} of ${n})`,
      columns: ["particle", "start x", "start y", "x now", "y now"],
      rows,
    };
  },
};
