// Predict-then-reveal (a {predict} element, course/predictions.py): the simulation it names is
// held back (player.hold) until the learner commits a guess; the guess is saved as the element's
// state; then the simulation plays with the rule's settings and a sentence compares the guess
// with what the model did, computed from the simulation's own result by the rule below.

import { updateChapterProgress } from "../progress.js";
import { View, floorBand, fmt } from "./core.js";

const pt = (p) => `(${fmt(p[0])}, ${fmt(p[1])})`;

function centre(flat, from, n) {
  let x = 0, y = 0, s = 0;
  for (let i = 0; i < n; i++) { x += flat[(from + i) * 2]; y += flat[(from + i) * 2 + 1]; }
  x /= n; y /= n;
  for (let i = 0; i < n; i++) s += Math.hypot(flat[(from + i) * 2] - x, flat[(from + i) * 2 + 1] - y);
  return { x, y, spread: s / n };
}

// Each rule: the settings the simulation plays with, and reveal(player, guess, text) ->
// {outcome, sentence}; `text(outcome)` is the option's wording.
const RULES = {
  "ot-straightens": {
    params: { coupling: "exact_ot" },
    async reveal(player, guess, text) {
      const at = (coupling) => player.fetchData(player.apiParams({ ...player.params, coupling }));
      const [ind, ot] = await Promise.all([at("independent"), at("exact_ot")]);
      const a = ind.learned.euler_error, b = ot.learned.euler_error, ratio = b / a;
      const outcome = ratio < 0.8 ? "smaller" : ratio > 1.25 ? "larger" : "same";
      const steps = player.params.steps;
      return { outcome, sentence: `With ${steps} Euler step${steps === 1 ? "" : "s"} the learned flow lands ${fmt(a, 3)} from its exact end point ` +
        `with independent pairs and ${fmt(b, 3)} with optimal-transport pairs (${fmt(ratio)} times as much). ${text(outcome)}` };
    },
  },
  "field-at-zero": {
    params: { t: 0 },
    async reveal(player, guess, text) {
      const d = await player.fetchData(player.apiParams({ ...player.params, t: 0 }));
      const p = d.pts.data, v = d.vel.data, n = p.length / 2;
      const ends = new Float32Array(p.length);
      let outward = 0;
      for (let k = 0; k < p.length; k++) ends[k] = p[k] + v[k];
      for (let k = 0; k < p.length; k += 2) outward += p[k] * v[k] + p[k + 1] * v[k + 1];
      const m = centre(ends, 0, n);
      const outcome = m.spread < 0.5 ? "one-point" : outward > 0 ? "outward" : "nearest-data";
      return { outcome, sentence: `At t = 0 the arrow from each grid point x ends at x + v(x, 0); those ends lie on average ${fmt(m.spread)} ` +
        `from one point, ${pt([m.x, m.y])}, the data's mean, across a grid ${fmt(2 * d.params.extent, 0)} wide. ${text(outcome)}` };
    },
  },
  "one-step-landing": {
    params: { steps: 1 },
    async reveal(player, guess) {
      const d = await player.fetchData(player.apiParams({ ...player.params, steps: 1 }));
      const [F, n] = d.path.shape;
      const end = centre(d.path.data, (F - 1) * n, n), data = centre(d.target.data, 0, d.target.shape[0]);
      const [gx, gy] = guess.split(",").map(Number);
      const miss = Math.hypot(gx - end.x, gy - end.y);
      const outcome = miss < 0.5 ? "close" : "far";
      return { outcome, sentence: `Your point ${pt([gx, gy])} is ${fmt(miss)} from the centre of where one Euler step put the particles, ${pt([end.x, end.y])}. ` +
        `They land within ${fmt(end.spread)} of it on average, next to the data's mean ${pt([data.x, data.y])}, while the data itself spreads ${fmt(data.spread)} ` +
        `around its mean: one step from pure noise goes to the average of the data, not onto it (W2 ${fmt(d.quality.w2)}, ${d.quality.words}).` };
    },
  },
  "one-step-floor-round": {
    params: {},
    async reveal(player, guess, text) {
      const d = player.data || await player.fetchData(player.apiParams());
      const rows = d.rounds;
      const first = rows.find((r) => r.round > 0 && r.one_step.w2 <= r.one_step.floor_high);
      const outcome = first ? String(first.round) : "never";
      const list = rows.map((r) => `round ${r.round}: ${fmt(r.one_step.w2, 3)}`).join(", ");
      const band = floorBand(rows[0].one_step, 3);
      return { outcome, sentence: `One-step W2 to the data, ${list}; two samples of the data land ${band} apart. ${text(outcome)}` };
    },
  },
};

function optionLabel(form, outcome) {
  const input = form.querySelector(`input[name="guess"][value="${CSS.escape(outcome)}"]`);
  const label = input && form.querySelector(`label[for="${CSS.escape(input.id)}"] .option__text`);
  return (label ? label.textContent.trim() : outcome).replace(/\.$/, "");
}

function whenPlayer(figure) {
  if (figure.player) return Promise.resolve(figure.player);
  return new Promise((resolve) => figure.addEventListener("sim:started", () => resolve(figure.player), { once: true }));
}

// a point prediction: a click on the held picture (the simulation's box) fills the guess field
function pointPicker(form, player, box) {
  const input = form.querySelector("input[name='guess']");
  let mark = null;
  const view = () => new View(0, 0, player.size.w, player.size.h, box);
  player.onDrawn = (ctx) => {
    if (!mark) return;
    const v = view();
    ctx.save();
    ctx.strokeStyle = player.colours.ink; ctx.lineWidth = 2.5;
    const x = v.px(mark[0]), y = v.py(mark[1]);
    ctx.beginPath(); ctx.moveTo(x - 9, y - 9); ctx.lineTo(x + 9, y + 9); ctx.moveTo(x + 9, y - 9); ctx.lineTo(x - 9, y + 9); ctx.stroke();
    ctx.restore();
  };
  const fromInput = () => {
    const parts = input.value.split(",").map(Number);
    mark = parts.length === 2 && parts.every(Number.isFinite) ? parts : null;
    player.render();
  };
  input.addEventListener("input", fromInput);
  player.canvas.addEventListener("click", (event) => {
    if (!player.held) return;
    const r = player.canvas.getBoundingClientRect(), v = view();
    const x = Math.max(box[0], Math.min(box[1], v.wx(event.clientX - r.left)));
    const y = Math.max(box[2], Math.min(box[3], v.wy(event.clientY - r.top)));
    input.value = `${x.toFixed(2)},${y.toFixed(2)}`;
    fromInput();
  });
  if (input.value) fromInput();
}

async function showReveal(form, player, rule, guess) {
  const out = form.closest("[data-element]").querySelector("[data-reveal]");
  const own = form.dataset.kind === "point" ? "" : `You predicted “${optionLabel(form, guess)}”. `;
  try {
    const { outcome, sentence } = await rule.reveal(player, guess, (o) => `The model's answer: “${optionLabel(form, o)}”.`);
    const verdict = form.dataset.kind === "point" ? "" : outcome === guess ? "Your prediction matched. " : "Not what you predicted. ";
    out.textContent = `${verdict}${own}${sentence}`;
    out.dataset.outcome = outcome;
  } catch (error) {
    out.textContent = `The simulation could not be compared with your prediction: ${error.message}`;
  }
  out.hidden = false;
}

async function revealAndPlay(form, player, rule, guess, fresh) {
  player.release();
  if (fresh && Object.keys(rule.params).length) {
    Object.assign(player.params, rule.params);
    player.syncControls();
    player.writeHash();
    player.load();
  }
  if (fresh) {
    const go = () => { player.setFrame(0, false); player.play(); };
    if (player.figure.dataset.state === "ready" && !Object.keys(rule.params).length) go();
    else player.figure.addEventListener("sim:loaded", go, { once: true });
  }
  await showReveal(form, player, rule, guess);
}

async function commit(form, player, rule) {
  const body = new URLSearchParams(new FormData(form));
  const response = await fetch(form.action, { method: "POST", body, headers: { Accept: "application/json" }, credentials: "same-origin" });
  const answer = await response.json().catch(() => null);
  const error = form.querySelector("[data-predict-error]");
  if (!response.ok) {
    error.textContent = answer?.error?.message || `The server answered ${response.status}.`;
    error.hidden = false;
    return;
  }
  error.hidden = true;
  const guess = answer.state.guess;
  form.dataset.guess = guess;
  for (const input of form.querySelectorAll("input, button")) input.disabled = true;
  const element = form.closest("[data-element]");
  element.dataset.status = "done";
  const status = element.querySelector(".el__status");
  if (status) { status.textContent = answer.description; status.className = "el__status status--done"; }
  form.querySelector("button[type=submit]").textContent = "Prediction committed";
  form.querySelector(".el__actions .muted").textContent = "The simulation below now shows what the model does.";
  updateChapterProgress(`${answer.chapter.done}/${answer.chapter.total}`);
  await revealAndPlay(form, player, rule, guess, true);
}

async function start(form) {
  const rule = RULES[form.dataset.rule];
  const figure = document.getElementById(`${form.dataset.predictSim}-sim`);
  if (!rule || !figure) return;
  const committed = form.dataset.guess;
  if (!committed) {
    figure.dataset.hold = "1";
    figure.dataset.holdStart = form.dataset.kind === "point" ? "1" : "0";
    figure.dataset.holdNote = form.dataset.kind === "point"
      ? "Click where you expect the particles to land, then commit your prediction above."
      : "Commit your prediction above to run this simulation.";
  }
  const player = await whenPlayer(figure);
  if (committed) { await revealAndPlay(form, player, rule, committed, false); return; }
  if (!player.held) player.hold(figure.dataset.holdNote, { showStart: figure.dataset.holdStart === "1" });
  if (form.dataset.kind === "point") pointPicker(form, player, JSON.parse(form.dataset.box));
  form.addEventListener("submit", (event) => { event.preventDefault(); commit(form, player, rule); });
}

for (const form of document.querySelectorAll("form[data-predict]")) start(form);
