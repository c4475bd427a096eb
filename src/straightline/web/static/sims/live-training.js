// Chapter 4: a real 2-D model trains on the server while the page watches. The learner picks a
// dataset or draws points; the server streams snapshots (Server-Sent Events): the loss, the
// velocity field at t = 0.5 and samples from the current model. Closing the page closes the
// stream, and the server cancels the job. Step mode: Pause, then "Next minibatch" trains one
// minibatch in the open (its pairs, x_t, targets u_t, the model's v and each pair's loss), then
// Resume. A finished run that has not converged says so and names the setting that fixes it.

import { DATASET_NAMES, View, arrows, axesCross, clip, decode, el, fmt, label, legend, panel, panels, points, stacked } from "./core.js";

const BOX = [-3.6, 3.6, -3.6, 3.6];
const MAX_POINTS = 2000;

function live(player) {
  return player.live;
}

function reset(player) {
  const L = live(player);
  Object.assign(L, { snapshots: [], losses: [], field: null, grid: null, samples: null, target: null, message: null, finishedAt: null,
    batch: null, batches: 0, paused: false, quality: null });
}

function render(player) {
  player.figure.dataset.liveStatus = player.live.status;
  player.figure.dataset.snapshots = String(player.live.snapshots.length);
  player.updateButtons();
  player.render();
  player.updateText();
}

function closeStream(player) {
  const L = live(player);
  if (L.es) { L.es.close(); L.es = null; }
}

async function start(player) {
  const L = live(player);
  await stop(player, { quiet: true });
  reset(player);
  const steps = Number(player.params.steps);
  const body = { steps, snapshot_every: Math.max(10, Math.round(steps / 40)), seed: Number(player.params.seed) || 0 };
  if (player.params.dataset === "draw") {
    if (L.drawn.length < 8) {
      L.status = "idle";
      L.message = `Draw at least 8 points first (you have ${L.drawn.length}): press and drag on the right-hand picture.`;
      render(player);
      return;
    }
    body.dataset = null;
    body.points = L.drawn.map(([x, y]) => [Math.round(x * 1000) / 1000, Math.round(y * 1000) / 1000]);
  } else {
    body.dataset = player.params.dataset;
  }
  L.status = "starting";
  render(player);
  let response, answer;
  try {
    response = await fetch("/api/sims/live-training", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
    });
    answer = await response.json();
  } catch {
    L.status = "error";
    L.message = "The server could not be reached.";
    render(player);
    return;
  }
  if (!response.ok) {
    L.status = response.status === 429 ? "busy" : "error";
    L.message = answer?.error?.message || `The server answered ${response.status}.`;
    render(player);
    return;
  }
  L.job = answer;
  player.figure.dataset.job = answer.job;
  L.status = "running";
  L.startedAt = performance.now();
  const es = new EventSource(answer.events);
  L.es = es;
  es.addEventListener("snapshot", (event) => onSnapshot(player, JSON.parse(event.data)));
  es.addEventListener("batch", (event) => onBatch(player, JSON.parse(event.data)));
  for (const type of ["paused", "resumed"]) {
    es.addEventListener(type, () => { L.paused = type === "paused"; if (!L.paused) L.batch = null; render(player); });
  }
  for (const type of ["done", "cancelled", "error"]) {
    es.addEventListener(type, (event) => {
      let data = {};
      try { data = JSON.parse(event.data); } catch { /* a network error event has no data */ }
      if (es !== L.es) return;
      closeStream(player);
      L.status = type === "done" ? "done" : type === "cancelled" ? "stopped" : "error";
      L.paused = false;
      if (data.quality) L.quality = data.quality;
      if (type === "error") L.message = data.message ? `Training failed: ${data.message}` : "The connection to the server was lost.";
      render(player);
    });
  }
}

function onSnapshot(player, snap) {
  const L = live(player);
  L.snapshots.push({ step: snap.step, loss: snap.loss, elapsed: snap.elapsed });
  L.losses.push(...snap.losses);
  L.steps = snap.steps;
  L.field = decode(snap.field);
  L.grid = decode(snap.grid);
  L.samples = decode(snap.samples);
  if (snap.data) L.target = decode(snap.data);
  render(player);
}

function onBatch(player, b) {
  const L = live(player);
  L.batches += 1;
  L.batch = { ...b, x0: decode(b.x_0), x1: decode(b.x_1), xt: decode(b.x_t), ut: decode(b.u_t), v: decode(b.v), pl: decode(b.pair_loss) };
  render(player);
}

async function control(player, command) {
  const L = live(player);
  if (!L.job) return;
  try {
    await fetch(`/api/sims/live-training/${L.job.job}/control`, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ command }),
    });
  } catch { L.message = "The server could not be reached."; render(player); }
}

// the hint of a finished run that has not converged (live.py `quality`, bench/live_convergence.py)
function hintText(player) {
  const q = live(player).quality;
  if (!q || q.converged !== false) return "";
  const spirals = live(player).job && player.params.dataset === "spirals";
  const fix = q.fix
    ? ` Set Training steps to ${q.fix.value} and train again: measured on this dataset, that is the setting that brings the samples onto the data.`
    : spirals
      ? " More steps help only a little here: measured, 5000 steps bring the samples from 0.19 to 0.17 off the data (the data's own: 0.08). The page's small network needs far longer training for the spirals; try the two moons or the checkerboard with 5000 steps to see a run converge."
      : " This is already the most steps the page allows.";
  return `Not converged: the samples lie on average ${fmt(q.off_data, 3)} from the nearest data point, against ${fmt(q.floor, 3)} for a second sample of the data ` +
    `(${q.n} points each; W2 to the data ${fmt(q.w2, 3)}).${fix}`;
}

function batchPicture(ctx, view, b, col) {
  const shown = Math.min(48, b.batch);
  ctx.save();
  ctx.strokeStyle = col.grid; ctx.lineWidth = 1;
  for (let i = 0; i < shown; i++) {
    ctx.beginPath(); ctx.moveTo(view.px(b.x0.data[2 * i]), view.py(b.x0.data[2 * i + 1])); ctx.lineTo(view.px(b.x1.data[2 * i]), view.py(b.x1.data[2 * i + 1])); ctx.stroke();
  }
  const top = Math.max(...b.pl.data.slice(0, shown), 1e-6);
  for (let i = 0; i < shown; i++) {
    const x = b.xt.data[2 * i], y = b.xt.data[2 * i + 1];
    for (const [vec, colour] of [[b.ut, col.c], [b.v, col.a]]) {
      ctx.strokeStyle = colour; ctx.lineWidth = 1.6;
      ctx.beginPath(); ctx.moveTo(view.px(x), view.py(y)); ctx.lineTo(view.px(x + 0.25 * vec.data[2 * i]), view.py(y + 0.25 * vec.data[2 * i + 1])); ctx.stroke();
    }
    ctx.fillStyle = col.b;
    ctx.beginPath(); ctx.arc(view.px(x), view.py(y), 2 + 5 * Math.sqrt(b.pl.data[i] / top), 0, 2 * Math.PI); ctx.fill();
  }
  ctx.restore();
}

async function stop(player, { quiet = false } = {}) {
  const L = live(player);
  const job = L.job;
  closeStream(player);
  if (job && (L.status === "running" || L.status === "starting")) {
    L.status = "stopped";
    try {
      await fetch(`/api/sims/live-training/${job.job}`, { method: "DELETE", credentials: "same-origin", headers: { Accept: "application/json" } });
    } catch { /* closing the stream already cancels it */ }
  }
  if (!quiet) render(player);
}

function drawingView(player) {
  const { w, h } = player.size;
  const rect = panels(w, h, 2)[1];
  return { rect, view: new View(rect.x, rect.y + 22, rect.w, rect.h - 22, BOX, 8) };
}

function setupDrawing(player) {
  const canvas = player.canvas;
  let down = false;
  let last = null;
  const add = (event) => {
    const L = live(player);
    if (player.params.dataset !== "draw" || L.status === "running" || L.drawn.length >= MAX_POINTS) return;
    const box = canvas.getBoundingClientRect();
    const { rect, view } = drawingView(player);
    const px = event.clientX - box.left, py = event.clientY - box.top;
    if (px < rect.x || px > rect.x + rect.w || py < rect.y + 22 || py > rect.y + rect.h) return;
    const x = view.wx(px), y = view.wy(py);
    if (Math.abs(x) > 3.9 || Math.abs(y) > 3.9) return;
    if (last && Math.hypot(x - last[0], y - last[1]) < 0.07) return;
    last = [x, y];
    L.message = null;
    L.drawn.push([x, y]);
    // a little spread around the stroke, so a line becomes a thin band of data
    const j = () => (Math.random() - 0.5) * 0.16;
    if (L.drawn.length < MAX_POINTS) L.drawn.push([x + j(), y + j()]);
    render(player);
  };
  canvas.addEventListener("pointerdown", (event) => {
    if (player.params.dataset !== "draw") return;
    down = true;
    last = null;
    canvas.setPointerCapture(event.pointerId);
    add(event);
  });
  canvas.addEventListener("pointermove", (event) => { if (down) add(event); });
  const end = () => { down = false; };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
}

function buildActions(player) {
  const startBtn = el("button", { type: "button", class: "btn sim__start", text: "Start training" });
  const stopBtn = el("button", { type: "button", class: "btn btn--secondary sim__stop", text: "Stop", disabled: true });
  const pauseBtn = el("button", { type: "button", class: "btn btn--secondary sim__pause", text: "Pause", disabled: true });
  const stepBtn = el("button", { type: "button", class: "btn btn--secondary sim__next", text: "Next minibatch", hidden: true });
  pauseBtn.addEventListener("click", () => control(player, live(player).paused ? "resume" : "pause"));
  stepBtn.addEventListener("click", () => control(player, "step"));
  const clearBtn = el("button", { type: "button", class: "btn btn--secondary sim__clear", text: "Clear drawing", hidden: true });
  startBtn.addEventListener("click", () => start(player));
  stopBtn.addEventListener("click", () => stop(player));
  clearBtn.addEventListener("click", () => { live(player).drawn = []; render(player); });
  player.updateButtons = () => {
    const L = live(player);
    const running = L.status === "running" || L.status === "starting";
    startBtn.disabled = running;
    startBtn.textContent = L.snapshots.length && !running ? "Train again" : "Start training";
    stopBtn.disabled = !running;
    pauseBtn.disabled = L.status !== "running";
    pauseBtn.textContent = L.paused ? "Resume" : "Pause";
    stepBtn.hidden = !L.paused || L.status !== "running";
    player.figure.dataset.paused = String(Boolean(L.paused));
    player.figure.dataset.batches = String(L.batches);
    if (player.hintEl) { player.hintEl.textContent = hintText(player); player.hintEl.hidden = !player.hintEl.textContent; }
    clearBtn.hidden = player.params.dataset !== "draw";
    clearBtn.disabled = running || !L.drawn.length;
    player.figure.classList.toggle("sim__draw-on", player.params.dataset === "draw" && !running);
  };
  return el("div", { class: "sim__control sim__actions" }, startBtn, pauseBtn, stepBtn, stopBtn, clearBtn);
}

function lossPanel(ctx, rect, L, col, plannedSteps) {
  panel(ctx, rect, col);
  label(ctx, "Loss", rect.x + 8, rect.y + 6, col, { weight: 600 });
  const plot = { x: rect.x + 40, y: rect.y + 28, w: rect.w - 52, h: rect.h - 58 };
  const total = L.steps || plannedSteps;
  const values = L.losses;
  const top = values.length ? Math.max(...values.slice(0, 40), ...L.snapshots.map((s) => s.loss)) * 1.05 : 3;
  const X = (step) => plot.x + (step / total) * plot.w;
  const Y = (v) => plot.y + plot.h - (Math.min(v, top) / top) * plot.h;
  ctx.save();
  ctx.strokeStyle = col.grid;
  ctx.beginPath();
  for (let k = 0; k <= 4; k++) { const y = Math.round(plot.y + (k / 4) * plot.h) + 0.5; ctx.moveTo(plot.x, y); ctx.lineTo(plot.x + plot.w, y); }
  ctx.stroke();
  ctx.restore();
  for (let k = 0; k <= 4; k++) label(ctx, fmt(top * (1 - k / 4), 1), plot.x - 5, plot.y + (k / 4) * plot.h, col, { align: "right", baseline: "middle", colour: col.muted, halo: false, size: 11 });
  label(ctx, `step (of ${total})`, plot.x + plot.w / 2, plot.y + plot.h + 8, col, { align: "center", colour: col.muted, halo: false, size: 11 });
  if (!values.length) {
    label(ctx, "The loss of every step appears here.", plot.x + plot.w / 2, plot.y + plot.h / 2, col, { align: "center", colour: col.muted });
    return;
  }
  ctx.save();
  ctx.strokeStyle = col.data;
  ctx.globalAlpha = 0.8;
  ctx.lineWidth = 1;
  ctx.beginPath();
  values.forEach((v, i) => { const x = X(i + 1), y = Y(v); if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y); });
  ctx.stroke();
  ctx.globalAlpha = 1;
  ctx.strokeStyle = col.b;
  ctx.lineWidth = 2.2;
  ctx.beginPath();
  L.snapshots.forEach((s, i) => { const x = X(s.step), y = Y(s.loss); if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y); });
  ctx.stroke();
  ctx.restore();
  legend(ctx, [{ colour: col.data, text: "each step", kind: "line" }, { colour: col.b, text: "average", kind: "line" }], plot.x + plot.w - 170, plot.y + 30, 170, col, 11);
}

export default {
  label: "Live training: the loss, the velocity field and samples of a model training now",
  timeline: false,
  load: null,
  controls: [
    { type: "select", name: "dataset", label: "Train on", options: [
      ["moons", "Two moons"], ["two_clusters", "Two clusters"], ["8gaussians", "Eight Gaussians"],
      ["checkerboard", "Checkerboard"], ["spirals", "Two spirals"], ["draw", "Points you draw"],
    ] },
    { type: "select", name: "steps", label: "Training steps", parse: (v) => Number.parseInt(v, 10), options: [[500, "500"], [1500, "1500"], [3000, "3000"], [5000, "5000"]] },
    { type: "custom", build: buildActions },
  ],
  defaults: { dataset: "moons", steps: 1500, seed: 0 },
  height: (w) => (stacked(w) ? Math.round(w * 1.75) : Math.round(Math.min(w * 0.5, 360))),

  setup(player) {
    player.live = { status: "idle", drawn: [], es: null, job: null };
    reset(player);
    setupDrawing(player);
    player.hintEl = el("p", { class: "sim__hint", role: "status", hidden: true });
    player.stage.after(player.hintEl);
    player.figure.dataset.state = "ready";
    // the stream closes with the page; the server cancels the job when it does
    window.addEventListener("pagehide", () => {
      const L = live(player);
      const job = L.job;
      closeStream(player);
      if (job && L.status === "running") {
        try { fetch(`/api/sims/live-training/${job.job}`, { method: "DELETE", keepalive: true, credentials: "same-origin" }); } catch { /* best effort */ }
      }
    });
    render(player);
  },

  changed(player) {
    if (live(player).status !== "running") live(player).message = null;
    render(player);
  },

  draw(ctx, s) {
    const player = s.player;
    const L = live(player);
    const col = s.colours;
    const rects = panels(s.width, s.height, 2);
    lossPanel(ctx, rects[0], L, col, Number(player.params.steps));
    const rect = rects[1];
    panel(ctx, rect, col);
    const view = new View(rect.x, rect.y + 22, rect.w, rect.h - 22, BOX, 8);
    ctx.save();
    clip(ctx, rect);
    axesCross(ctx, view, col);
    const drawing = player.params.dataset === "draw";
    if (drawing && L.drawn.length) points(ctx, view, L.drawn.flat(), 0, L.drawn.length, 1.6, col.data, 0.8);
    else if (L.target) points(ctx, view, L.target.data, 0, L.target.shape[0], 1.5, col.data, 0.6);
    if (L.field) {
      const spacing = (BOX[1] - BOX[0]) / 14;
      arrows(ctx, view, L.grid.data, L.field.data, col.a, { unit: spacing / 4, maxLen: spacing * view.scale * 1.2, width: 1.2, alpha: 0.8 });
    }
    if (L.batch) batchPicture(ctx, view, L.batch, col);
    else if (L.samples) points(ctx, view, L.samples.data, 0, L.samples.shape[0], 2.1, col.b, 0.9);
    ctx.restore();
    if (L.batch) {
      label(ctx, `Minibatch ${L.batches}: 48 of its ${L.batch.batch} pairs`, rect.x + 8, rect.y + 6, col, { weight: 600 });
      legend(ctx, [{ colour: col.grid, text: "pair x₀–x₁", kind: "line" }, { colour: col.b, text: "xₜ (size: its loss)", kind: "dot" },
        { colour: col.c, text: "target uₜ(xₜ | x₁)", kind: "line" }, { colour: col.a, text: "network v_{θ}", kind: "line" }], rect.x + 5, rect.y + rect.h - 5, rect.w - 10, col);
      return;
    }
    label(ctx, drawing && !L.samples ? "Draw your data here (press and drag)" : "Field at t = 0.5 and samples", rect.x + 8, rect.y + 6, col, { weight: 600 });
    const items = [];
    if (L.field) items.push({ colour: col.a, text: "v_{θ}(x, 0.5)", kind: "line" });
    if (L.samples) items.push({ colour: col.b, text: "samples", kind: "dot" });
    if (L.target || (drawing && L.drawn.length)) items.push({ colour: col.data, text: drawing ? "your points" : "data", kind: "square" });
    else if (!drawing) label(ctx, "The data, the field and samples appear here.", rect.x + rect.w / 2, rect.y + rect.h / 2, col, { align: "center", baseline: "middle", colour: col.muted });
    if (items.length) legend(ctx, items, rect.x + 5, rect.y + rect.h - 5, rect.w - 10, col);
  },

  summary(s) {
    const player = s.player;
    const L = live(player);
    const what = player.params.dataset === "draw" ? `the ${L.drawn.length} points you drew` : DATASET_NAMES[player.params.dataset];
    const last = L.snapshots[L.snapshots.length - 1];
    const first = L.snapshots[0];
    const rate = last && last.elapsed > 0 ? `, ${Math.round(last.step / last.elapsed)} steps per second` : "";
    if (L.message) return L.message;
    if (L.batch && L.paused) {
      const b = L.batch;
      return `Paused at step ${b.step}. Minibatch ${L.batches} shown: ${b.batch} noise–data pairs, each at its own time t, with xₜ = (1 − t) x₀ + t x₁ and target uₜ(xₜ | x₁) = x₁ − x₀. ` +
        `Its loss, the mean of the pairs' squared errors between the network's output and that target, was ${fmt(b.loss, 3)} before this one optimizer step and ${fmt(b.loss_after, 3)} after it.`;
    }
    if (L.paused) return "Paused. Press Next minibatch to train one minibatch in the open, or Resume.";
    if (L.status === "idle") return `Not training. Choose the data (${what}) and press Start training.`;
    if (L.status === "starting") return `Starting to train on ${what}…`;
    if (!last) return `Training on ${what}: waiting for the first snapshot…`;
    const progress = `step ${last.step} of ${L.steps}, loss ${fmt(last.loss)} (first ${fmt(first.loss)})${rate}; ${L.samples.shape[0]} samples from the current model.`;
    if (L.status === "running") return `Training on ${what}: ${progress}`;
    if (L.status === "done") return `Finished training on ${what}: ${progress}`;
    return `Stopped training on ${what} at ${progress}`;
  },

  table(s) {
    const L = live(s.player);
    if (L.batch) {
      const b = L.batch, p = (a, i) => `(${fmt(a.data[2 * i])}, ${fmt(a.data[2 * i + 1])})`;
      return {
        caption: `Minibatch ${L.batches}: the first 16 of its ${b.batch} pairs`,
        columns: ["pair", "x₀ (noise)", "x₁ (data)", "t", "xₜ", "target uₜ(xₜ | x₁)", "network v_{θ}(xₜ, t)", "loss"],
        rows: Array.from({ length: 16 }, (_, i) => [i + 1, p(b.x0, i), p(b.x1, i), fmt(b.t[i]), p(b.xt, i), p(b.ut, i), p(b.v, i), fmt(b.pl.data[i], 3)]),
      };
    }
    return {
      caption: "The loss at each snapshot (average over the steps since the previous one)",
      columns: ["step", "loss", "seconds"],
      rows: L.snapshots.map((r) => [r.step, fmt(r.loss, 3), fmt(r.elapsed, 1)]),
      empty: "No snapshots yet: press Start training (or Next minibatch) and each snapshot's loss appears here.",
    };
  },
};
