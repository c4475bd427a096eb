// Shared helpers of the simulations: the API's arrays, colours from CSS, a world-to-canvas view,
// and small drawing routines. No dependencies; every number drawn comes from the server.

// --- the API's arrays: {shape, scale, data: base64 little-endian int16}; value = int / scale ------

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export function decode(arr) {
  const bin = atob(arr.data);
  const n = bin.length >> 1;
  const out = new Float32Array(n);
  const s = arr.scale;
  if (LITTLE_ENDIAN) {
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    const ints = new Int16Array(bytes.buffer);
    for (let i = 0; i < n; i++) out[i] = ints[i] / s;
  } else {
    for (let i = 0; i < n; i++) {
      let v = bin.charCodeAt(2 * i) | (bin.charCodeAt(2 * i + 1) << 8);
      if (v > 32767) v -= 65536;
      out[i] = v / s;
    }
  }
  return { shape: arr.shape, data: out };
}

// --- numbers ----------------------------------------------------------------------------------------

export function fmt(x, digits = 2) {
  if (x === null || x === undefined || Number.isNaN(x)) return "–";
  if (Math.abs(x) >= 1e5) return x.toExponential(1).replace("e+", "×10^");
  const text = x.toFixed(digits);
  return /^-0\.?0*$/.test(text) ? text.slice(1) : text;
}

// the floor band of a W2 measurement q ({floor_low, floor_high}): "0.09–0.16"
export function floorBand(q, digits = 2) {
  return `${fmt(q.floor_low, digits)}–${fmt(q.floor_high, digits)}`;
}

export function fmtT(t) {
  return `t = ${Number(t).toFixed(2)}`;
}

export function plural(n, word, many = `${word}s`) {
  return `${n} ${n === 1 ? word : many}`;
}

export const DATASET_NAMES = {
  two_clusters: "two clusters",
  moons: "two moons",
  "8gaussians": "eight Gaussians",
  checkerboard: "a checkerboard",
  spirals: "two spirals",
};

export const COUPLING_NAMES = { independent: "independent pairs", exact_ot: "optimal-transport pairs" };

// --- colours: CSS variables on the figure, so dark mode and high contrast follow the page ---------

const COLOUR_VARS = {
  bg: "--sim-bg", panel: "--sim-panel", ink: "--sim-ink", muted: "--sim-muted", grid: "--sim-grid",
  data: "--sim-data", a: "--sim-a", b: "--sim-b", c: "--sim-c", d: "--sim-d", e: "--sim-e",
  paper: "--sim-paper", pen: "--sim-pen",
};

export function readColours(element) {
  const style = getComputedStyle(element);
  const out = {};
  for (const [key, name] of Object.entries(COLOUR_VARS)) out[key] = style.getPropertyValue(name).trim() || "#888888";
  out.font = style.getPropertyValue("--sim-font").trim() || "system-ui, sans-serif";
  return out;
}

// --- a view: a world box fitted into a rectangle of the canvas, same scale on both axes -----------

export class View {
  constructor(x, y, w, h, box, pad = 6) {
    const [x0, x1, y0, y1] = box;
    this.x = x; this.y = y; this.w = w; this.h = h;
    this.scale = Math.min((w - 2 * pad) / (x1 - x0), (h - 2 * pad) / (y1 - y0));
    this.cx = x + w / 2 - ((x0 + x1) / 2) * this.scale;
    this.cy = y + h / 2 + ((y0 + y1) / 2) * this.scale;
  }
  px(wx) { return this.cx + wx * this.scale; }
  py(wy) { return this.cy - wy * this.scale; }
  wx(px) { return (px - this.cx) / this.scale; }
  wy(py) { return (this.cy - py) / this.scale; }
  inside(wx, wy) {
    const px = this.px(wx), py = this.py(wy);
    return px >= this.x && px <= this.x + this.w && py >= this.y && py <= this.y + this.h;
  }
}

// One or two panels side by side, stacked on narrow canvases.
export function panels(width, height, count, gap = 10) {
  if (count === 1) return [{ x: 0, y: 0, w: width, h: height }];
  if (width >= 520) {
    const w = (width - gap * (count - 1)) / count;
    return Array.from({ length: count }, (_, i) => ({ x: i * (w + gap), y: 0, w, h: height }));
  }
  const h = (height - gap * (count - 1)) / count;
  return Array.from({ length: count }, (_, i) => ({ x: 0, y: i * (h + gap), w: width, h }));
}

export function stacked(width) {
  return width < 520;
}

// --- drawing ------------------------------------------------------------------------------------------

export function panel(ctx, rect, colours, title) {
  ctx.save();
  ctx.fillStyle = colours.panel;
  ctx.fillRect(rect.x, rect.y, rect.w, rect.h);
  ctx.strokeStyle = colours.grid;
  ctx.lineWidth = 1;
  ctx.strokeRect(rect.x + 0.5, rect.y + 0.5, rect.w - 1, rect.h - 1);
  ctx.restore();
  if (title) label(ctx, title, rect.x + 8, rect.y + 7, colours, { weight: 600 });
}

export function axesCross(ctx, view, colours) {
  ctx.save();
  ctx.strokeStyle = colours.grid;
  ctx.lineWidth = 1;
  ctx.beginPath();
  const x = Math.round(view.px(0)) + 0.5, y = Math.round(view.py(0)) + 0.5;
  ctx.moveTo(view.x, y); ctx.lineTo(view.x + view.w, y);
  ctx.moveTo(x, view.y); ctx.lineTo(x, view.y + view.h);
  ctx.stroke();
  ctx.restore();
}

export function clip(ctx, rect) {
  ctx.beginPath();
  ctx.rect(rect.x, rect.y, rect.w, rect.h);
  ctx.clip();
}

// text may hold subscripts written "_{θ}": they are drawn smaller and lowered, as math is
export function label(ctx, text, x, y, colours, { colour, align = "left", baseline = "top", size = 12, weight = 400, halo = true } = {}) {
  ctx.save();
  ctx.textAlign = "left";
  ctx.textBaseline = baseline;
  const pieces = String(text).split(/_\{([^}]*)\}/).map((t, i) => ({ t, sub: i % 2 === 1 }));
  const font = (p) => `${weight} ${p.sub ? Math.round(size * 0.72) : size}px ${colours.font}`;
  const widths = pieces.map((p) => { ctx.font = font(p); return ctx.measureText(p.t).width; });
  const total = widths.reduce((a, b) => a + b, 0);
  let left = align === "right" || align === "end" ? x - total : align === "center" ? x - total / 2 : x;
  pieces.forEach((p, i) => {
    ctx.font = font(p);
    const dy = p.sub ? size * 0.3 : 0;
    if (halo) {
      ctx.lineWidth = 3;
      ctx.strokeStyle = colours.panel;
      ctx.lineJoin = "round";
      ctx.strokeText(p.t, left, y + dy);
    }
    ctx.fillStyle = colour || colours.ink;
    ctx.fillText(p.t, left, y + dy);
    left += widths[i];
  });
  ctx.restore();
}

// points: xs is a flat Float32Array of (x, y) pairs; draws n points starting at pair `start`
export function points(ctx, view, xs, start, n, radius, colour, alpha = 1) {
  ctx.save();
  ctx.globalAlpha = alpha;
  ctx.fillStyle = colour;
  const d = radius * 2;
  for (let i = 0; i < n; i++) {
    const k = (start + i) * 2;
    const px = view.px(xs[k]), py = view.py(xs[k + 1]);
    if (radius <= 1.6) ctx.fillRect(px - radius, py - radius, d, d);
    else { ctx.beginPath(); ctx.arc(px, py, radius, 0, 2 * Math.PI); ctx.fill(); }
  }
  ctx.restore();
}

// trails of particles through frames [0, upto] of a [F, N, 2] array (flat), for particles 0..count-1
export function trails(ctx, view, frames, nParticles, upto, count, colour, alpha = 0.35, width = 1) {
  ctx.save();
  ctx.globalAlpha = alpha;
  ctx.strokeStyle = colour;
  ctx.lineWidth = width;
  ctx.lineJoin = "round";
  ctx.beginPath();
  for (let i = 0; i < count; i++) {
    for (let f = 0; f <= upto; f++) {
      const k = (f * nParticles + i) * 2;
      const px = view.px(frames[k]), py = view.py(frames[k + 1]);
      if (f === 0) ctx.moveTo(px, py); else ctx.lineTo(px, py);
    }
  }
  ctx.stroke();
  ctx.restore();
}

export function arrow(ctx, x0, y0, x1, y1, head = 4) {
  const dx = x1 - x0, dy = y1 - y0;
  const len = Math.hypot(dx, dy);
  ctx.moveTo(x0, y0);
  ctx.lineTo(x1, y1);
  if (len < 1.5) return;
  const h = Math.min(head, len * 0.45);
  const ux = dx / len, uy = dy / len;
  ctx.moveTo(x1, y1);
  ctx.lineTo(x1 - h * ux + h * 0.55 * uy, y1 - h * uy - h * 0.55 * ux);
  ctx.moveTo(x1, y1);
  ctx.lineTo(x1 - h * ux - h * 0.55 * uy, y1 - h * uy + h * 0.55 * ux);
}

// a field of arrows: pts and vel flat (x, y) arrays; `unit` world units of arrow per unit of speed
export function arrows(ctx, view, pts, vel, colour, { unit, maxLen, width = 1.2, alpha = 1 }) {
  ctx.save();
  ctx.strokeStyle = colour;
  ctx.globalAlpha = alpha;
  ctx.lineWidth = width;
  ctx.lineCap = "round";
  ctx.beginPath();
  for (let k = 0; k < pts.length; k += 2) {
    let vx = vel[k] * unit * view.scale, vy = -vel[k + 1] * unit * view.scale;
    const len = Math.hypot(vx, vy);
    if (len > maxLen) { vx *= maxLen / len; vy *= maxLen / len; }
    const x0 = view.px(pts[k]), y0 = view.py(pts[k + 1]);
    arrow(ctx, x0 - vx / 2, y0 - vy / 2, x0 + vx / 2, y0 + vy / 2, Math.max(3, Math.min(6, maxLen * 0.35)));
  }
  ctx.stroke();
  ctx.restore();
}

// mean and standard deviation of each coordinate of n points starting at pair `start`
export function moments(xs, start, n) {
  let mx = 0, my = 0;
  for (let i = 0; i < n; i++) { mx += xs[(start + i) * 2]; my += xs[(start + i) * 2 + 1]; }
  mx /= n; my /= n;
  let vx = 0, vy = 0;
  for (let i = 0; i < n; i++) {
    const dx = xs[(start + i) * 2] - mx, dy = xs[(start + i) * 2 + 1] - my;
    vx += dx * dx; vy += dy * dy;
  }
  return { mx, my, sx: Math.sqrt(vx / n), sy: Math.sqrt(vy / n) };
}

// The point nearest to (x, y) among points 0 .. count - 1, where at(i) gives point i as [x, y]:
// { index, distance }, with index null when no point lies closer than `within`. Picking a particle
// under the pointer (linked.js, in pixels) or under a click (flowmap-jumps.js, in data units).
export function nearest(count, at, x, y, within = Infinity) {
  let index = null, distance = within;
  for (let i = 0; i < count; i++) {
    const [px, py] = at(i), d = Math.hypot(px - x, py - y);
    if (d < distance) { distance = d; index = i; }
  }
  return { index, distance };
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") node.textContent = v;
    else if (k === "html") node.innerHTML = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

// Table rows for about 5 x 5 of the points of a g x g grid (every stride-th row and column):
// row(k, i) for the point's offset k = 2 i in a flat [g * g, 2] array and its index i.
export function gridRows(g, row) {
  const stride = Math.max(1, Math.round((g - 1) / 4));
  const rows = [];
  for (let r = 0; r < g; r += stride) {
    for (let q = 0; q < g; q += stride) rows.push(row((r * g + q) * 2, r * g + q));
  }
  return rows;
}

// "v_{θ}(x, t)" as text nodes and <sub> elements, for a column heading
function withSubscripts(text) {
  return String(text).split(/_\{([^}]*)\}/).map((t, i) => (i % 2 === 1 ? el("sub", { text: t }) : t)).filter((n) => n !== "");
}

// A small table: {caption, columns: [...], rows: [[...]], note, empty}; `empty` is the one row shown
// while there are no rows yet (a table is never drawn without a body)
export function table({ caption, columns, rows, note, empty }) {
  const t = el("table", { class: "sim__table" });
  if (caption) t.append(el("caption", { text: caption }));
  const head = el("tr");
  for (const c of columns) head.append(el("th", { scope: "col" }, ...withSubscripts(c)));
  t.append(el("thead", {}, head));
  const body = el("tbody");
  for (const row of rows) {
    const tr = el("tr");
    row.forEach((cell, i) => tr.append(el(i === 0 ? "th" : "td", i === 0 ? { scope: "row", text: String(cell) } : { text: String(cell) })));
    body.append(tr);
  }
  if (!rows.length) body.append(el("tr", {}, el("td", { colspan: String(columns.length), class: "sim__empty", text: empty || "Nothing measured yet." })));
  t.append(body);
  const box = el("div", { class: "sim__table-scroll", tabindex: "0", role: "region", "aria-label": caption || "data table" }, t);
  if (note) return el("div", {}, box, el("p", { class: "sim__note", text: note }));
  return box;
}

// A legend: items [{colour, text, kind: "dot" | "line" | "dash" | "ring"}], laid out left to right,
// wrapping inside maxWidth; anchored at its bottom-left corner (x, y).
export function legend(ctx, items, x, y, maxWidth, colours, size = 12) {
  ctx.save();
  ctx.font = `400 ${size}px ${colours.font}`;
  const rows = [[]];
  let rowWidth = 0;
  for (const item of items) {
    const w = 18 + ctx.measureText(String(item.text).replace(/_\{([^}]*)\}/g, "$1")).width + 14;
    if (rowWidth + w > maxWidth && rows[rows.length - 1].length) { rows.push([]); rowWidth = 0; }
    rows[rows.length - 1].push({ ...item, w });
    rowWidth += w;
  }
  const lineH = size + 6;
  const height = rows.length * lineH + 6;
  const width = Math.min(maxWidth, Math.max(...rows.map((r) => r.reduce((a, i) => a + i.w, 0))) + 8);
  ctx.globalAlpha = 0.85;
  ctx.fillStyle = colours.panel;
  ctx.fillRect(x, y - height, width, height);
  ctx.globalAlpha = 1;
  rows.forEach((row, r) => {
    let cx = x + 6;
    const cy = y - height + 3 + r * lineH + lineH / 2;
    for (const item of row) {
      ctx.fillStyle = item.colour;
      ctx.strokeStyle = item.colour;
      ctx.lineWidth = 2;
      ctx.setLineDash(item.kind === "dash" ? [4, 3] : []);
      if (item.kind === "line" || item.kind === "dash") {
        ctx.beginPath(); ctx.moveTo(cx, cy); ctx.lineTo(cx + 14, cy); ctx.stroke();
      } else if (item.kind === "ring") {
        ctx.beginPath(); ctx.arc(cx + 7, cy, 4, 0, 2 * Math.PI); ctx.stroke();
      } else if (item.kind === "square") {
        ctx.fillRect(cx + 3, cy - 4, 8, 8);
      } else {
        ctx.beginPath(); ctx.arc(cx + 7, cy, 3.5, 0, 2 * Math.PI); ctx.fill();
      }
      ctx.setLineDash([]);
      label(ctx, item.text, cx + 18, cy + 0.5, colours, { baseline: "middle", size, halo: false });
      cx += item.w;
    }
  });
  ctx.restore();
}

// --- colour arithmetic and heat maps ------------------------------------------------------------------

// [r, g, b] of any CSS colour (the canvas parses it)
export function rgbOf(colour) {
  const probe = document.createElement("canvas").getContext("2d");
  probe.fillStyle = colour;
  const text = probe.fillStyle;  // #rrggbb or rgba(...)
  if (text.startsWith("#")) return [1, 3, 5].map((i) => Number.parseInt(text.slice(i, i + 2), 16));
  const m = text.match(/\d+(\.\d+)?/g) || [128, 128, 128];
  return m.slice(0, 3).map(Number);
}

// A g x g grid of values (row 0 = lowest y, flat) covering [-extent, extent]^2, shaded from the panel
// colour (at lo and below) to `colour` (at hi), drawn in the view.
export function heatmap(ctx, view, values, g, extent, colours, colour, lo, hi) {
  const image = new ImageData(g, g);
  const from = rgbOf(colours.panel), to = rgbOf(colour);
  for (let row = 0; row < g; row++) {
    for (let q = 0; q < g; q++) {
      const w = Math.max(0, Math.min(1, (values[row * g + q] - lo) / (hi - lo)));
      const k = ((g - 1 - row) * g + q) * 4;
      for (let c = 0; c < 3; c++) image.data[k + c] = Math.round(from[c] + (to[c] - from[c]) * w);
      image.data[k + 3] = 255;
    }
  }
  const off = document.createElement("canvas");
  off.width = g; off.height = g;
  off.getContext("2d").putImageData(image, 0, 0);
  const step = (2 * extent) / (g - 1);
  ctx.save();
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(off, view.px(-extent - step / 2), view.py(extent + step / 2), (2 * extent + step) * view.scale, (2 * extent + step) * view.scale);
  ctx.restore();
}
