// Worked examples with numbers you can drag ({explore} elements, course/explorables.py): each
// [[name]] of the text is a slider (drag it sideways, or focus it and use the arrow keys), each
// [[=name]] an output; the model below recomputes the outputs and redraws the small figure.

const SVG = "http://www.w3.org/2000/svg";
const f2 = (x) => (Math.abs(x) < 0.005 ? 0 : x).toFixed(2).replace("-", "−");
const vec = (p) => `(${f2(p[0])}, ${f2(p[1])})`;

function svg(name, attrs = {}, text = "") {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}

// a square box around the points, and a mapper from it to a W x H picture
function fit(points, W, H, pad = 18) {
  const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
  const s = Math.min((W - 2 * pad) / (x1 - x0 || 1), (H - 2 * pad) / (y1 - y0 || 1));
  const cx = W / 2 - ((x0 + x1) / 2) * s, cy = H / 2 + ((y0 + y1) / 2) * s;
  return (p) => [cx + p[0] * s, cy - p[1] * s];
}

function arrow(g, from, to, cls) {
  const [ax, ay] = from, [bx, by] = to, a = Math.atan2(by - ay, bx - ax), h = 7;
  g.append(svg("line", { x1: ax, y1: ay, x2: bx, y2: by, class: cls }));
  const head = `${bx},${by} ${bx - h * Math.cos(a - 0.4)},${by - h * Math.sin(a - 0.4)} ${bx - h * Math.cos(a + 0.4)},${by - h * Math.sin(a + 0.4)}`;
  g.append(svg("polygon", { points: head, class: `${cls} xp-head` }));
}

const normalCdf = (z) => {  // Abramowitz and Stegun 7.1.26 (error below 1.5e-7)
  const x = Math.abs(z) / Math.SQRT2, t = 1 / (1 + 0.3275911 * x);
  const erf = 1 - t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))) * Math.exp(-x * x);
  return z >= 0 ? (1 + erf) / 2 : (1 - erf) / 2;
};
// the toolkit's timesteps.shift(t, s) (data at t = 1): sigma' = s sigma / (1 + (s - 1) sigma)
const shift = (t, s) => 1 - (s * (1 - t)) / (1 + (s - 1) * (1 - t));
const logitNormal = (t) => Math.exp(-0.5 * Math.log(t / (1 - t)) ** 2) / (Math.sqrt(2 * Math.PI) * t * (1 - t));
const shiftedDensity = (t, s) => logitNormal(shift(t, 1 / s)) * s / (s - (s - 1) * (1 - t)) ** 2;

const MODELS = {
  lerp: {
    outputs: ({ t }, { x_0, x_1 }) => {
      const x = [0, 1].map((k) => (1 - t) * x_0[k] + t * x_1[k]);
      return { one_minus_t: f2(1 - t), x_t: vec(x), u: vec([x_1[0] - x_0[0], x_1[1] - x_0[1]]), point: x };
    },
    draw(g, { t }, { x_0, x_1 }, out) {
      const m = fit([x_0, x_1, [0, 0]], 240, 150);
      const [a, b, p, o] = [m(x_0), m(x_1), m(out.point), m([0, 0])];
      g.append(svg("line", { x1: o[0] - 200, y1: o[1], x2: o[0] + 200, y2: o[1], class: "xp-axis" }), svg("line", { x1: o[0], y1: o[1] - 200, x2: o[0], y2: o[1] + 200, class: "xp-axis" }));
      g.append(svg("line", { x1: a[0], y1: a[1], x2: b[0], y2: b[1], class: "xp-path" }));
      g.append(svg("circle", { cx: a[0], cy: a[1], r: 4, class: "xp-end" }), svg("text", { x: a[0] - 6, y: a[1] + 16, class: "xp-label" }, "x₀"));
      g.append(svg("circle", { cx: b[0], cy: b[1], r: 4, class: "xp-end" }), svg("text", { x: b[0] - 6, y: b[1] - 9, class: "xp-label" }, "x₁"));
      g.append(svg("circle", { cx: p[0], cy: p[1], r: 6, class: "xp-point" }), svg("text", { x: p[0] + 9, y: p[1] + 16, class: "xp-label xp-label--point" }, `xₜ (t = ${f2(t)})`));
    },
  },
  "sd3-shift": {
    outputs: ({ alpha }) => ({
      t_half: f2(shift(0.5, alpha)),
      share_noisy: `${Math.round(100 * normalCdf(Math.log(shift(0.5, 1 / alpha) / (1 - shift(0.5, 1 / alpha)))))}%`,
    }),
    draw(g, { alpha }) {
      const W = 240, H = 150, pad = 16, top = 3.2;
      const X = (t) => pad + t * (W - 2 * pad), Y = (d) => H - pad - (Math.min(d, top) / top) * (H - 2 * pad);
      const curve = (f) => Array.from({ length: 99 }, (_, i) => { const t = (i + 1) / 100; return `${X(t).toFixed(1)},${Y(f(t)).toFixed(1)}`; }).join(" ");
      g.append(svg("line", { x1: pad, y1: H - pad, x2: W - pad, y2: H - pad, class: "xp-axis" }));
      g.append(svg("polyline", { points: curve(logitNormal), class: "xp-base" }));
      g.append(svg("polyline", { points: curve((t) => shiftedDensity(t, alpha)), class: "xp-path" }));
      const h = shift(0.5, alpha);
      g.append(svg("line", { x1: X(h), y1: pad, x2: X(h), y2: H - pad, class: "xp-mark" }));
      g.append(svg("text", { x: pad, y: H - 2, class: "xp-label" }, "t = 0 (noise)"), svg("text", { x: W - pad, y: H - 2, class: "xp-label", "text-anchor": "end" }, "t = 1"));
      g.append(svg("text", { x: X(h) + 4, y: pad + 8, class: "xp-label xp-label--point" }, `½ → ${f2(h)}`));
    },
  },
  cfg: {
    outputs: ({ w }, { v_uncond: u, v_cond: c }) => {
      const d = [c[0] - u[0], c[1] - u[1]], v = [u[0] + w * d[0], u[1] + w * d[1]];
      return { v: vec(v), diff: vec(d), speed: f2(Math.hypot(...v)), guided: v };
    },
    draw(g, { w }, { v_uncond: u, v_cond: c }, out) {
      const far = [u[0] + 6 * (c[0] - u[0]), u[1] + 6 * (c[1] - u[1])];
      const m = fit([[0, 0], u, c, far, out.guided], 240, 150);
      const o = m([0, 0]);
      g.append(svg("line", { x1: m(u)[0], y1: m(u)[1], x2: m(far)[0], y2: m(far)[1], class: "xp-base" }));
      arrow(g, o, m(u), "xp-vec xp-vec--u");
      arrow(g, o, m(c), "xp-vec xp-vec--c");
      arrow(g, o, m(out.guided), "xp-vec xp-vec--w");
      g.append(svg("text", { x: m(u)[0] + 5, y: m(u)[1] + 14, class: "xp-label" }, "w = 0"), svg("text", { x: m(c)[0] + 5, y: m(c)[1] + 14, class: "xp-label" }, "w = 1"));
      g.append(svg("text", { x: m(out.guided)[0] + 6, y: m(out.guided)[1] - 6, class: "xp-label xp-label--point" }, `w = ${f2(w)}`));
    },
  },
};

function decimals(step) {
  return Math.max(0, (String(step).split(".")[1] || "").length);
}

function slider(span, name, spec, onChange) {
  const digits = decimals(spec.step);
  const set = (value) => {
    const snapped = Math.round((Math.min(spec.max, Math.max(spec.min, value)) - spec.min) / spec.step) * spec.step + spec.min;
    spec.value = Number(snapped.toFixed(digits));
    onChange();
  };
  Object.assign(span, { tabIndex: 0, title: "Drag sideways, or use the arrow keys" });
  span.setAttribute("role", "slider");
  span.setAttribute("aria-label", name);
  span.setAttribute("aria-valuemin", spec.min);
  span.setAttribute("aria-valuemax", spec.max);
  span.addEventListener("keydown", (event) => {
    const big = event.shiftKey ? 5 : 1;
    const moves = { ArrowRight: big, ArrowUp: big, ArrowLeft: -big, ArrowDown: -big, PageUp: 10, PageDown: -10 };
    if (event.key in moves) set(spec.value + moves[event.key] * spec.step);
    else if (event.key === "Home") set(spec.min);
    else if (event.key === "End") set(spec.max);
    else return;
    event.preventDefault();
  });
  span.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    span.setPointerCapture(event.pointerId);
    span.focus();
    const start = { x: event.clientX, value: spec.value };
    const perPixel = (spec.max - spec.min) / 200;  // 200 px sweep the whole range
    const move = (e) => set(start.value + (e.clientX - start.x) * perPixel);
    const end = () => { span.removeEventListener("pointermove", move); span.classList.remove("is-dragging"); };
    span.classList.add("is-dragging");
    span.addEventListener("pointermove", move);
    span.addEventListener("pointerup", end, { once: true });
    span.addEventListener("pointercancel", end, { once: true });
  });
  return () => {
    span.textContent = spec.value.toFixed(digits);
    span.setAttribute("aria-valuenow", spec.value);
    span.setAttribute("aria-valuetext", `${name} = ${spec.value.toFixed(digits)}`);
  };
}

function start(root) {
  const config = JSON.parse(root.dataset.explore);
  const model = MODELS[config.model];
  const figure = root.querySelector("[data-explore-figure]");
  const shows = [];
  const update = () => {
    const values = Object.fromEntries(Object.entries(config.vars).map(([k, v]) => [k, v.value]));
    const out = model.outputs(values, config.given);
    for (const show of shows) show();
    for (const node of root.querySelectorAll("[data-out]")) node.textContent = out[node.dataset.out];
    const g = svg("svg", { viewBox: "0 0 240 150", class: "explore__svg" });
    model.draw(g, values, config.given, out);
    figure.replaceChildren(g);
    root.dataset.values = JSON.stringify(values);
  };
  for (const span of root.querySelectorAll("[data-var]")) shows.push(slider(span, span.dataset.var, config.vars[span.dataset.var], update));
  update();
  root.classList.add("is-live");
}

for (const root of document.querySelectorAll("[data-explore]")) start(root);
