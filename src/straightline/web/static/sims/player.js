// The canvas player every simulation shares.
//
// A simulation module describes its controls and how to draw one frame; the player builds the
// figure around it: the controls, the canvas, a time line (play/pause, step buttons, a scrubber),
// keyboard control (Space plays or pauses, arrows step, Home/End jump) when the figure has focus,
// a reduced-motion mode (no autoplay), colours from CSS variables (dark mode), a live text
// summary, a data table for screen readers, and the state (controls, seed, frame) in the URL:
// #sim=<element id>&steps=20&seed=3 restores it on load.
//
// spec = {
//   controls: [{type: select|radio|range|checks|toggle|seed, name, label, ...}],
//   defaults: {...}                 API parameters the page starts from (the chapter's win)
//   timeline: true|false            frames over time (default true)
//   frameParam: {name, values}      a frame is an API parameter value (e.g. t): one request per frame
//   prepare(body) -> data           decode the API's answer once
//   frames(data) -> count, time(data, i) -> t, initialFrame(data) -> i
//   height(width) -> px
//   draw(ctx, state), summary(state) -> text, measure(state) -> text|node, table(state) -> {caption, columns, rows}
//   setup(player)                   extra wiring (live training, linked views, the SO(3) camera)
//   overlay(ctx, state)             drawn over the frame (linked views: the particle pointed at)
//   onKey(event, player) -> bool    keys of the picture handled before the time line's
//   presets: [{label, params}]      "Try this" buttons beside the controls
//   autoplay: true|false            play once when first scrolled into view (never under reduced motion)
// }
//
// A prediction (predict.js) can hold a player before it plays: `hold(note, {showStart})` hides the
// result (controls, time line and text disabled; the canvas blank or at its first frame) until
// `release()`. A figure with data-hold="1" starts held.

import { el, fmtT, readColours, table as tableNode } from "./core.js";

const reducedMotion = matchMedia("(prefers-reduced-motion: reduce)");
const darkScheme = matchMedia("(prefers-color-scheme: dark)");
const ICONS = {
  play: '<svg viewBox="0 0 16 16" aria-hidden="true" focusable="false"><path d="M4 2.5v11l9-5.5z" fill="currentColor"/></svg>',
  pause: '<svg viewBox="0 0 16 16" aria-hidden="true" focusable="false"><path d="M3.5 2.5h3v11h-3zM9.5 2.5h3v11h-3z" fill="currentColor"/></svg>',
  back: '<svg viewBox="0 0 16 16" aria-hidden="true" focusable="false"><path d="M3 2.5h2v11H3zM14 2.5v11L6 8z" fill="currentColor"/></svg>',
  fwd: '<svg viewBox="0 0 16 16" aria-hidden="true" focusable="false"><path d="M11 2.5h2v11h-2zM2 2.5v11L10 8z" fill="currentColor"/></svg>',
};
const CACHE_LIMIT = 80;

export class Player {
  constructor(figure, spec) {
    this.figure = figure;
    this.spec = spec;
    this.name = figure.dataset.sim;
    this.elementId = figure.dataset.simElement;
    let chapterParams = {};
    try { chapterParams = JSON.parse(figure.dataset.params || "{}"); } catch { chapterParams = {}; }
    this.defaults = { ...(spec.defaults || {}), ...chapterParams };
    this.params = { ...this.defaults };
    this.controls = spec.controls || [];
    this.data = null;
    this.frame = 0;
    this.pendingFrame = null;
    this.playing = false;
    this.loads = 0;
    this.cache = new Map();
    this.hasTimeline = spec.timeline !== false;
    this.colours = readColours(figure);
    this.build();
    if (figure.dataset.hold === "1") this.hold(figure.dataset.holdNote || "Make your prediction first.", { showStart: figure.dataset.holdStart === "1" });
    this.fromHash(true);
    this.syncControls();
    const recolour = () => { this.colours = readColours(figure); this.render(); };
    darkScheme.addEventListener("change", recolour);
    document.addEventListener("themechange", recolour);
    window.addEventListener("hashchange", () => { if (this.fromHash(false)) { this.syncControls(); this.load(); } });
    if (spec.setup) spec.setup(this);
    new ResizeObserver(() => this.resize()).observe(this.stage);
    this.resize();
    if (spec.load !== null) this.load();
    if (spec.autoplay && !reducedMotion.matches && this.hasTimeline && !this.restored) this.autoplayWhenVisible();
  }

  // --- holding the result back until a prediction is committed ---------------------------------------

  hold(note, { showStart = false } = {}) {
    this.pause();
    this.held = { showStart };
    this.veil = this.veil || el("p", { class: "sim__veil", role: "note" });
    this.veil.textContent = note;
    if (!this.veil.isConnected) this.stage.prepend(this.veil);
    for (const part of this.heldParts()) { part.inert = true; part.classList.add("is-held"); }
    this.figure.dataset.held = "true";
    this.render();
  }

  release() {
    if (!this.held) return;
    this.held = null;
    this.veil?.remove();
    for (const part of this.heldParts()) { part.inert = false; part.classList.remove("is-held"); }
    this.figure.dataset.held = "false";
    this.render();
  }

  heldParts() {
    return [this.presetBox, this.controlBox, this.timebox, this.summaryEl, this.measureEl, this.details, this.link.parentElement].filter(Boolean);
  }

  // --- structure -----------------------------------------------------------------------------------

  build() {
    const app = this.figure.querySelector("[data-sim-app]");
    const id = this.elementId;
    this.controlBox = el("div", { class: "sim__controls" });
    for (const c of this.controls) this.controlBox.append(this.buildControl(c));
    this.canvas = el("canvas", {
      class: "sim__canvas", tabindex: "0", role: "img",
      "aria-label": `${this.spec.label || "Simulation"}. ${this.hasTimeline ? "Space plays or pauses; the arrow keys step through time." : ""}`.trim(),
      "aria-describedby": `${id}-summary`,
    });
    this.status = el("p", { class: "sim__status", role: "status", hidden: true });
    this.stage = el("div", { class: "sim__stage" }, this.canvas, this.status);
    this.ctx = this.canvas.getContext("2d");
    const parts = [this.controlBox, this.stage];
    if (this.spec.presets) parts.unshift(this.buildPresets(this.spec.presets));
    if (this.hasTimeline) parts.push(this.buildTimeline());
    this.summaryEl = el("p", { class: "sim__summary", id: `${id}-summary`, "aria-live": "polite" });
    this.measureEl = el("div", { class: "sim__measure" });
    this.tableBox = el("div", { class: "sim__table-box" });
    this.details = el("details", { class: "sim__data" }, el("summary", { text: "Numbers behind the picture (table)" }), this.tableBox);
    this.details.addEventListener("toggle", () => this.updateTable());
    this.link = el("a", { class: "sim__link", href: `#sim=${id}` , text: "Link to these settings" });
    this.copied = el("span", { class: "sim__copied", role: "status" });
    this.link.addEventListener("click", () => this.copyLink());
    parts.push(this.summaryEl, this.measureEl, this.details, el("p", { class: "sim__share" }, this.link, this.copied));
    app.append(...parts);
    this.figure.classList.add("is-live");
    this.figure.addEventListener("keydown", (event) => this.onKey(event));
  }

  buildPresets(presets) {
    const box = el("div", { class: "sim__presets", role: "group", "aria-label": "Try these settings" }, el("span", { text: "Try this:" }));
    for (const preset of presets) {
      const b = el("button", { type: "button", class: "sim__preset", text: preset.label });
      b.addEventListener("click", () => this.applyPreset(preset.params));
      box.append(b);
    }
    this.presetBox = box;
    return box;
  }

  applyPreset(params) {
    Object.assign(this.params, params);
    this.syncControls();
    this.writeHash();
    this.figure.addEventListener("sim:loaded", () => { if (this.hasTimeline) { this.setFrame(0, false); this.play(); } }, { once: true });
    this.load();
  }

  buildControl(c) {
    const id = `${this.elementId}-${c.name || c.type}`;
    const set = (value) => this.set(c.name, value);
    if (c.type === "select") {
      const select = el("select", { id, name: c.name });
      for (const [value, text] of c.options) select.append(el("option", { value: String(value), text }));
      select.addEventListener("change", () => set(c.parse ? c.parse(select.value) : select.value));
      c.sync = () => { select.value = String(this.params[c.name] ?? ""); };
      return el("div", { class: "sim__control" }, el("label", { for: id, text: c.label }), select);
    }
    if (c.type === "radio") {
      const box = el("fieldset", { class: "sim__control sim__radios" }, el("legend", { text: c.label }));
      const inputs = [];
      for (const [value, text] of c.options) {
        const input = el("input", { type: "radio", name: id, id: `${id}-${value}`, value: String(value) });
        input.addEventListener("change", () => { if (input.checked) set(value); });
        inputs.push(input);
        box.append(el("span", { class: "sim__radio" }, input, el("label", { for: `${id}-${value}`, text })));
      }
      c.sync = () => { for (const input of inputs) input.checked = input.value === String(this.params[c.name]); };
      return box;
    }
    if (c.type === "range") {
      const input = el("input", { type: "range", id, name: c.name, min: c.min, max: c.max, step: c.step || 1 });
      const out = el("output", { for: id, class: "sim__value" });
      const parse = c.step && c.step < 1 ? Number.parseFloat : (v) => Number.parseInt(v, 10);
      const show = () => { out.textContent = c.format ? c.format(parse(input.value)) : input.value; input.setAttribute("aria-valuetext", out.textContent); };
      let timer = null;
      input.addEventListener("input", () => {
        show();
        clearTimeout(timer);
        timer = setTimeout(() => set(parse(input.value)), 90);
      });
      c.sync = () => { input.value = String(this.params[c.name]); show(); };
      return el("div", { class: "sim__control sim__control--range" }, el("label", { for: id, text: c.label }), input, out);
    }
    if (c.type === "checks") {
      const box = el("fieldset", { class: "sim__control sim__checks" }, el("legend", { text: c.label }));
      const inputs = [];
      for (const [value, text] of c.options) {
        const input = el("input", { type: "checkbox", id: `${id}-${value}`, value });
        input.addEventListener("change", () => set(inputs.filter((i) => i.checked).map((i) => i.value)));
        inputs.push(input);
        box.append(el("span", { class: "sim__check" }, input, el("label", { for: `${id}-${value}`, text })));
      }
      c.sync = () => { const on = new Set(this.params[c.name] || []); for (const i of inputs) i.checked = on.has(i.value); };
      return box;
    }
    if (c.type === "toggle") {
      const input = el("input", { type: "checkbox", id });
      input.addEventListener("change", () => set(input.checked ? c.on : c.off));
      c.sync = () => { input.checked = this.params[c.name] === c.on; };
      return el("div", { class: "sim__control sim__check" }, input, el("label", { for: id, text: c.label }));
    }
    if (c.type === "seed") {
      const out = el("output", { class: "sim__value", "aria-live": "polite" });
      const button = el("button", { type: "button", class: "btn btn--secondary sim__btn-text", text: c.label || "New noise" });
      button.addEventListener("click", () => set((Number(this.params.seed) || 0) + 1));
      c.sync = () => { out.textContent = `seed ${this.params.seed || 0}`; };
      c.name = "seed";
      return el("div", { class: "sim__control sim__seed" }, button, out);
    }
    if (c.type === "custom") return c.build(this);
    throw new Error(`unknown control ${c.type}`);
  }

  buildTimeline() {
    const id = this.elementId;
    const button = (act, text) => {
      const b = el("button", { type: "button", class: "sim__icon", "data-act": act, "aria-label": text, title: text, html: ICONS[act] });
      return b;
    };
    this.backBtn = button("back", "Step back");
    this.playBtn = button("play", "Play");
    this.fwdBtn = button("fwd", "Step forward");
    this.backBtn.addEventListener("click", () => this.step(-1));
    this.fwdBtn.addEventListener("click", () => this.step(1));
    this.playBtn.addEventListener("click", () => this.toggle());
    this.scrub = el("input", { type: "range", class: "sim__scrub", id: `${id}-time`, min: 0, max: 0, step: 1, value: 0, "aria-label": "Time" });
    this.scrub.addEventListener("input", () => { this.pause(); this.setFrame(Number(this.scrub.value), true); });
    this.timeOut = el("output", { class: "sim__time", for: `${id}-time` });
    const row = el("div", { class: "sim__timeline" }, this.backBtn, this.playBtn, this.fwdBtn, this.scrub, this.timeOut);
    const box = el("div", { class: "sim__timebox" }, row);
    this.timebox = box;
    if (this.spec.marks) {
      const marks = el("div", { class: "sim__marks", role: "group", "aria-label": "Jump to a time" });
      for (const t of this.spec.marks) {
        const b = el("button", { type: "button", class: "sim__mark", text: `t = ${t}` });
        b.addEventListener("click", () => { this.pause(); this.setFrame(this.frameAt(t), true); });
        marks.append(b);
      }
      box.append(marks);
    }
    box.append(el("p", { class: "sim__keys", text: "Keys, with the picture selected: Space plays or pauses, ← and → step, Home and End jump to the ends." }));
    return box;
  }

  // the link's address goes to the clipboard too; "Copied" (or how to copy it by hand) says so
  async copyLink() {
    this.link.href = `#${this.hashParams().toString()}`;  // the settings shown now (the default follows)
    const url = new URL(this.link.getAttribute("href"), location.href).href;
    let text = "Copied: paste it to share these settings.";
    try { await navigator.clipboard.writeText(url); } catch { text = "The address bar now holds the link to these settings: copy it from there."; }
    this.copied.textContent = text;
    clearTimeout(this.copiedTimer);
    this.copiedTimer = setTimeout(() => { this.copied.textContent = ""; }, 6000);
  }

  syncControls() {
    for (const c of this.controls) if (c.sync) c.sync();
  }

  // --- state and URL -------------------------------------------------------------------------------

  set(name, value) {
    if (name) this.params[name] = value;
    this.syncControls();
    this.writeHash();
    if (this.spec.changed) this.spec.changed(this, name, value);
    this.load();
  }

  controlNames() {
    return this.controls.map((c) => c.name).filter(Boolean);
  }

  hashParams() {
    const q = new URLSearchParams({ sim: this.elementId });
    for (const name of this.controlNames()) {
      const v = this.params[name];
      if (v === undefined || v === null) continue;
      q.set(name, Array.isArray(v) ? v.join(",") : String(v));
    }
    if (this.hasTimeline && this.data) q.set("frame", String(this.frame));
    return q;
  }

  writeHash() {
    const hash = `#${this.hashParams().toString()}`;
    this.link.href = hash;
    if (this.applyingHash) return;
    history.replaceState(history.state, "", hash);
  }

  // Restore controls from #sim=<this element>&...; whether the hash was ours.
  fromHash(initial) {
    const q = new URLSearchParams(location.hash.slice(1));
    if (q.get("sim") !== this.elementId) return false;
    for (const c of this.controls) {
      if (!c.name || !q.has(c.name)) continue;
      const raw = q.get(c.name);
      const value = this.parseControl(c, raw);
      if (value !== undefined) this.params[c.name] = value;
    }
    if (q.has("frame")) this.pendingFrame = Math.max(0, Number.parseInt(q.get("frame"), 10) || 0);
    this.restored = true;
    if (initial) requestAnimationFrame(() => this.figure.closest("section")?.scrollIntoView({ block: "start" }));
    return true;
  }

  parseControl(c, raw) {
    if (c.type === "select" || c.type === "radio") {
      const match = c.options.find(([v]) => String(v) === raw);
      return match ? match[0] : undefined;
    }
    if (c.type === "range" || c.type === "seed") {
      const v = Number(raw);
      if (!Number.isFinite(v)) return undefined;
      if (c.type === "seed") return Number.isInteger(v) && v >= 0 && v < 2 ** 31 ? v : undefined;
      return v >= c.min && v <= c.max ? v : undefined;
    }
    if (c.type === "checks") {
      const known = new Set(c.options.map(([v]) => v));
      return raw.split(",").filter((v) => known.has(v));
    }
    if (c.type === "toggle") return raw === String(c.on) ? c.on : raw === String(c.off) ? c.off : undefined;
    return undefined;
  }

  // --- data ------------------------------------------------------------------------------------------

  apiParams(params = this.params) {
    const p = this.spec.apiParams ? this.spec.apiParams(params) : params;
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(p)) {
      if (v === undefined) continue;
      q.set(k, v === null ? "" : Array.isArray(v) ? v.join(",") : String(v));
    }
    return q;
  }

  async fetchData(query, signal) {
    const key = query.toString();
    if (this.cache.has(key)) return this.cache.get(key);
    let response;
    for (let tries = 0; ; tries++) {
      response = await fetch(`/api/sims/${this.name}?${key}`, { headers: { Accept: "application/json" }, signal, credentials: "same-origin" });
      // busy (429: this browser's own limit; 503: the server's queue): wait as told, a few times
      const wait = Number(response.headers.get("Retry-After"));
      if (![429, 503].includes(response.status) || !(wait > 0 && wait <= 15) || tries >= 3) break;
      this.showStatus(`The server is busy; trying again in ${wait} s…`);
      await new Promise((resolve) => setTimeout(resolve, wait * 1000));
      if (signal?.aborted) throw new DOMException("aborted", "AbortError");
    }
    let body;
    try { body = await response.json(); } catch { body = null; }
    if (!response.ok) throw new Error(body?.error?.message || `the server answered ${response.status}`);
    const data = this.spec.prepare ? this.spec.prepare(body, this) : body;
    this.cache.set(key, data);
    if (this.cache.size > CACHE_LIMIT) this.cache.delete(this.cache.keys().next().value);
    return data;
  }

  async load() {
    if (this.spec.load === null) return;
    if (this.spec.frameParam) {
      const fp = this.spec.frameParam;
      if (this.pendingFrame !== null) {
        this.params[fp.name] = fp.values[Math.min(this.pendingFrame, fp.values.length - 1)];
        this.pendingFrame = null;
      }
      const i = fp.values.findIndex((v) => Math.abs(v - this.params[fp.name]) < 1e-9);
      if (i >= 0) this.frame = i;
    }
    const query = this.apiParams();
    const seq = ++this.loads;
    this.controller?.abort();
    const controller = new AbortController();
    this.controller = controller;
    const slow = setTimeout(() => this.showStatus("Computing with the trained model…"), 200);
    this.figure.dataset.state = "loading";
    this.figure.setAttribute("aria-busy", "true");
    try {
      const data = await this.fetchData(query, controller.signal);
      if (seq !== this.loads) return;
      this.accept(data);
    } catch (error) {
      if (error.name === "AbortError" || seq !== this.loads) return;
      this.figure.dataset.state = "error";
      this.showStatus(`Could not compute this simulation: ${error.message}`, true);
    } finally {
      clearTimeout(slow);
      if (seq === this.loads) this.figure.removeAttribute("aria-busy");
    }
  }

  accept(data) {
    const previous = this.data;
    this.data = data;
    this.showStatus(null);
    const count = this.frameCount();
    if (this.spec.frameParam) {
      // the frame is the parameter: keep it
    } else if (this.pendingFrame !== null) {
      this.frame = Math.min(this.pendingFrame, count - 1);
    } else if (!previous) {
      this.frame = this.spec.initialFrame ? this.spec.initialFrame(data) : 0;
    } else {
      // keep the time shown: the same t in the new frames
      this.frame = this.frameAt(this.lastT ?? 0);
    }
    this.pendingFrame = null;
    if (this.scrub) this.scrub.max = String(count - 1);
    this.figure.dataset.state = "ready";
    this.figure.dataset.frames = String(count);
    this.setFrame(this.frame, false);
    this.figure.dispatchEvent(new Event("sim:loaded"));
    if (this.spec.frameParam) this.prefetch();
  }

  // with one request per frame, fetch the other frames in the background, nearest first
  async prefetch() {
    const fp = this.spec.frameParam;
    const token = (this.prefetchToken = {});
    const order = fp.values.map((v, i) => i).sort((a, b) => Math.abs(a - this.frame) - Math.abs(b - this.frame));
    for (const i of order) {
      if (this.prefetchToken !== token) return;
      try { await this.fetchData(this.apiParams({ ...this.params, [fp.name]: fp.values[i] })); } catch { return; }
    }
  }

  frameCount() {
    if (this.spec.frameParam) return this.spec.frameParam.values.length;
    if (!this.data || !this.hasTimeline) return 1;
    return this.spec.frames(this.data);
  }

  timeOf(i) {
    if (this.spec.frameParam) return this.spec.frameParam.values[i];
    return this.spec.time ? this.spec.time(this.data, i) : i;
  }

  frameAt(t) {
    const n = this.frameCount();
    let best = 0;
    for (let i = 0; i < n; i++) if (Math.abs(this.timeOf(i) - t) < Math.abs(this.timeOf(best) - t)) best = i;
    return best;
  }

  // --- time ------------------------------------------------------------------------------------------

  setFrame(i, byUser) {
    const n = this.frameCount();
    this.frame = Math.max(0, Math.min(n - 1, i));
    if (this.spec.frameParam) {
      const fp = this.spec.frameParam;
      const value = fp.values[this.frame];
      if (this.params[fp.name] !== value) {
        this.params[fp.name] = value;
        const key = this.apiParams().toString();
        if (this.cache.has(key)) { this.data = this.cache.get(key); } else { this.load(); }
      }
    }
    if (this.data) this.lastT = this.timeOf(this.frame);
    if (this.scrub) {
      this.scrub.value = String(this.frame);
      const t = this.data ? fmtT(this.timeOf(this.frame)) : "";
      this.timeOut.textContent = t;
      this.scrub.setAttribute("aria-valuetext", t);
      this.backBtn.disabled = this.frame === 0;
      this.fwdBtn.disabled = this.frame >= n - 1;
    }
    this.figure.dataset.frame = String(this.frame);
    if (this.data) this.figure.dataset.t = String(this.timeOf(this.frame));
    if (byUser) this.writeHash();
    this.render();
  }

  step(delta) {
    this.pause();
    this.setFrame(this.frame + delta, true);
  }

  toggle() {
    if (this.playing) this.pause(); else this.play();
  }

  play() {
    if (!this.hasTimeline || this.frameCount() < 2 || this.held) return;
    if (this.frame >= this.frameCount() - 1) this.setFrame(0, false);
    this.playing = true;
    this.figure.dataset.playing = "true";
    this.playBtn.innerHTML = ICONS.pause;
    this.playBtn.setAttribute("aria-label", "Pause");
    this.playBtn.title = "Pause";
    this.summaryEl.setAttribute("aria-live", "off");  // no running commentary while it plays
    this.lastTick = performance.now();
    requestAnimationFrame((now) => this.tick(now));
  }

  pause() {
    if (!this.playing) return;
    this.playing = false;
    this.figure.dataset.playing = "false";
    this.playBtn.innerHTML = ICONS.play;
    this.playBtn.setAttribute("aria-label", "Play");
    this.playBtn.title = "Play";
    this.summaryEl.setAttribute("aria-live", "polite");
    this.writeHash();
    this.updateText();
  }

  tick(now) {
    if (!this.playing) return;
    const n = this.frameCount();
    const interval = this.spec.frameMs || Math.max(40, 3200 / n);
    if (now - this.lastTick >= interval && this.figure.dataset.state === "ready") {
      this.lastTick = now;
      if (this.frame >= n - 1) { this.pause(); return; }
      this.setFrame(this.frame + 1, false);
    }
    requestAnimationFrame((t) => this.tick(t));
  }

  autoplayWhenVisible() {
    const observer = new IntersectionObserver((entries) => {
      if (!entries.some((e) => e.isIntersecting)) return;
      observer.disconnect();
      const start = () => { if (!this.playing && this.frame === 0) this.play(); };
      if (this.data) setTimeout(start, 400); else this.figure.addEventListener("sim:ready", start, { once: true });
    }, { threshold: 0.6 });
    observer.observe(this.canvas);
  }

  onKey(event) {
    if (this.held || event.altKey || event.ctrlKey || event.metaKey) return;
    const target = event.target;
    if (this.spec.onKey && (target === this.canvas || target === this.figure) && this.spec.onKey(event, this)) return;
    if (!this.hasTimeline) return;
    const onScrub = target === this.scrub;
    if (!onScrub && target !== this.canvas && target !== this.figure) return;  // controls keep their keys
    if (event.key === " " || event.key === "Spacebar") {
      event.preventDefault();
      this.toggle();
      return;
    }
    if (onScrub) return;  // the scrubber moves itself with the arrows, Home and End
    const big = event.shiftKey ? 10 : 1;
    const moves = { ArrowRight: big, ArrowUp: big, ArrowLeft: -big, ArrowDown: -big };
    if (event.key in moves) { event.preventDefault(); this.step(moves[event.key]); }
    else if (event.key === "Home") { event.preventDefault(); this.pause(); this.setFrame(0, true); }
    else if (event.key === "End") { event.preventDefault(); this.pause(); this.setFrame(this.frameCount() - 1, true); }
  }

  // --- drawing and text --------------------------------------------------------------------------------

  resize() {
    const width = Math.max(200, Math.floor(this.stage.clientWidth));
    const height = Math.round(this.spec.height ? this.spec.height(width) : width * 0.62);
    const dpr = Math.min(window.devicePixelRatio || 1, 2);
    if (this.size && this.size.w === width && this.size.h === height && this.size.dpr === dpr) return;
    this.size = { w: width, h: height, dpr };
    this.canvas.style.height = `${height}px`;
    this.canvas.width = Math.round(width * dpr);
    this.canvas.height = Math.round(height * dpr);
    this.render();
  }

  state() {
    return { data: this.data, frame: this.frame, t: this.data ? this.timeOf(this.frame) : 0, params: this.params,
      colours: this.colours, width: this.size.w, height: this.size.h, player: this };
  }

  render() {
    if (this.pending || !this.size) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      const ctx = this.ctx;
      const { w, h, dpr } = this.size;
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.fillStyle = this.colours.bg;
      ctx.fillRect(0, 0, w, h);
      if (!this.data && this.spec.load !== null) return;
      if (this.held && !this.held.showStart) return;
      const state = this.held ? { ...this.state(), frame: 0, t: this.timeOf(0) } : this.state();
      this.spec.draw(ctx, state);
      if (this.spec.overlay && !this.held) this.spec.overlay(ctx, state);
      if (this.onDrawn) this.onDrawn(ctx, state);
      if (!this.held) this.updateText(state);
      if (!this.drawn) { this.drawn = true; this.figure.dispatchEvent(new Event("sim:ready")); }
      this.figure.dataset.drawn = String((Number(this.figure.dataset.drawn) || 0) + 1);
    });
  }

  updateText(state = this.size && (this.data || this.spec.load === null) ? this.state() : null) {
    if (!state) return;
    const summary = this.spec.summary(state);
    if (this.summaryEl.textContent !== summary) this.summaryEl.textContent = summary;
    if (this.spec.measure) {
      const m = this.spec.measure(state);
      if (typeof m === "string") { if (this.measureEl.textContent !== m) this.measureEl.textContent = m; }
      else if (m && m !== this.measureNode) { this.measureNode = m; this.measureEl.replaceChildren(m); }
    }
    if (this.details.open && !this.playing) this.updateTable(state);
  }

  // (a simulation without a server load, such as live training, has a state without `data`)
  updateTable(state = this.size && (this.data || this.spec.load === null) ? this.state() : null) {
    if (!this.details.open || !state || !this.spec.table) return;
    this.tableBox.replaceChildren(tableNode(this.spec.table(state)));
  }

  showStatus(text, isError = false) {
    this.status.hidden = !text;
    this.status.textContent = text || "";
    this.status.classList.toggle("is-error", Boolean(isError));
  }
}

export function prefersReducedMotion() {
  return reducedMotion.matches;
}
