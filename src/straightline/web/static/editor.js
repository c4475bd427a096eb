// Understand Flow Matching: the Build-It editor, submissions in place, and the simulation canvas.
//
// Without this script the Build-It form still works: a plain POST, a redirect back, the result
// rendered by the server. With it:
// - the code box gets line numbers (a gutter that follows the scrolling), Tab / Shift+Tab indent
//   and dedent (Escape, then Tab, leaves the box: keyboard users are never trapped), Enter keeps
//   the indentation, Ctrl/Cmd+Enter submits, and "Reset to starter code" (after a confirmation);
// - a submission is sent with fetch; while it is graded the live region says so; the results,
//   the element's status and the "run it in the simulation" section are replaced in place and
//   the code box is left alone (its undo history and caret stay);
// - "Run it in the simulation" fetches the run (JSON) and draws it on a canvas.

import { updateChapterProgress } from "./progress.js";

const FRAGMENT_HEADER = "X-Straightline-Fragment";
const INDENT = "    ";

// --- the code box -----------------------------------------------------------------------------

function lineCount(text) {
  let n = 1;
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) n++;
  return n;
}

function errorLine(editor) {
  const section = editor.closest("[data-element]");
  const button = section && section.querySelector("[data-goto-line]");
  return button ? Number(button.dataset.gotoLine) : 0;
}

function renderGutter(editor) {
  const textarea = editor.querySelector("textarea");
  const lines = editor.querySelector(".editor__lines");
  if (!textarea || !lines) return;
  const n = lineCount(textarea.value);
  const bad = errorLine(editor);
  if (Number(lines.dataset.count) !== n || Number(lines.dataset.bad || 0) !== bad) {
    const parts = [];
    for (let i = 1; i <= n; i++) parts.push(i === bad ? `<span class="is-error">${i}</span>` : String(i));
    lines.innerHTML = parts.join("\n");
    lines.dataset.count = String(n);
    lines.dataset.bad = String(bad);
  }
  syncScroll(editor);
}

function syncScroll(editor) {
  const textarea = editor.querySelector("textarea");
  const lines = editor.querySelector(".editor__lines");
  if (textarea && lines) lines.style.transform = `translateY(${-textarea.scrollTop}px)`;
}

// Insert text through the browser's editing commands so Ctrl+Z undoes it; fall back to setRangeText.
function insertText(textarea, text) {
  textarea.focus();
  let done = false;
  try { done = document.execCommand("insertText", false, text); } catch { done = false; }
  if (!done) {
    textarea.setRangeText(text, textarea.selectionStart, textarea.selectionEnd, "end");
    textarea.dispatchEvent(new Event("input", { bubbles: true }));
  }
}

function lineStart(value, pos) {
  return value.lastIndexOf("\n", pos - 1) + 1;
}

function indentLines(textarea, dedent) {
  const { value, selectionStart: start, selectionEnd: end } = textarea;
  const multi = value.slice(start, end).includes("\n");
  if (!dedent && !multi) { insertText(textarea, INDENT); return; }
  const from = lineStart(value, start);
  const to = end > start && value[end - 1] === "\n" ? end - 1 : end;
  const lines = value.slice(from, to).split("\n");
  let removedFirst = 0;
  const changed = lines.map((line, i) => {
    if (!dedent) return INDENT + line;
    const n = Math.min(INDENT.length, line.match(/^ */)[0].length);
    if (i === 0) removedFirst = n;
    return line.slice(n);
  });
  const replacement = changed.join("\n");
  if (replacement === value.slice(from, to)) return;
  textarea.setSelectionRange(from, to);
  insertText(textarea, replacement);
  if (multi) {
    textarea.setSelectionRange(from, from + replacement.length);
  } else {
    const caret = Math.max(from, start - removedFirst);
    textarea.setSelectionRange(caret, caret);
  }
}

function newlineWithIndent(textarea) {
  const { value, selectionStart: start } = textarea;
  const line = value.slice(lineStart(value, start), start);
  let indent = line.match(/^[ \t]*/)[0];
  if (/:\s*(#.*)?$/.test(line)) indent += INDENT;
  insertText(textarea, "\n" + indent);
}

function onKeydown(event) {
  const textarea = event.target;
  if (!(textarea instanceof HTMLTextAreaElement) || !textarea.closest("[data-editor]")) return;
  if (event.key === "Escape") { textarea.dataset.escaped = "1"; return; }
  if (event.key === "Tab") {
    if (textarea.dataset.escaped === "1" || event.ctrlKey || event.altKey || event.metaKey) {
      delete textarea.dataset.escaped;  // let the browser move the focus
      return;
    }
    event.preventDefault();
    indentLines(textarea, event.shiftKey);
    return;
  }
  if (event.key !== "Shift") delete textarea.dataset.escaped;
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    textarea.form && textarea.form.requestSubmit();
    return;
  }
  if (event.key === "Enter" && !event.shiftKey && !event.altKey && !event.isComposing) {
    event.preventDefault();
    newlineWithIndent(textarea);
  }
}

function gotoLine(section, n) {
  const textarea = section.querySelector("[data-editor] textarea");
  if (!textarea) return;
  const lines = textarea.value.split("\n");
  const k = Math.max(1, Math.min(n, lines.length));
  let start = 0;
  for (let i = 0; i < k - 1; i++) start += lines[i].length + 1;
  textarea.focus();
  textarea.setSelectionRange(start, start + lines[k - 1].length);
  const lineHeight = parseFloat(getComputedStyle(textarea).lineHeight) || 20;
  textarea.scrollTop = Math.max(0, (k - 3) * lineHeight);
  textarea.scrollIntoView({ block: "nearest" });
}

function resetCode(section) {
  const textarea = section.querySelector("[data-editor] textarea");
  if (!textarea) return;
  if (!window.confirm("Replace your code with the starter code? (Your last submission stays saved; Ctrl+Z undoes this.)")) return;
  textarea.focus();
  textarea.select();
  insertText(textarea, textarea.dataset.starter || "");
  textarea.setSelectionRange(0, 0);
  textarea.scrollTop = 0;
}

// --- submissions and runs ---------------------------------------------------------------------

function parseFragment(html) {
  const template = document.createElement("template");
  template.innerHTML = html.trim();
  return template.content.firstElementChild;
}

function replacePart(section, fresh, selector, after) {
  const next = fresh.querySelector(selector);
  const old = section.querySelector(selector);
  if (old && next) old.replaceWith(next);
  else if (old) old.remove();
  else if (next) {
    const anchor = section.querySelector(after);
    if (anchor) anchor.after(next);
  }
  return next;
}

function showError(anchor, id, message) {
  const section = anchor.closest("[data-element]");
  for (const old of section.querySelectorAll(".request-error")) old.remove();
  const note = document.createElement("p");
  note.className = "field-error request-error";
  note.id = id;
  note.setAttribute("role", "alert");
  note.textContent = message;
  anchor.after(note);
}

function clearErrors(section) {
  for (const old of section.querySelectorAll(".request-error, .field-error")) old.remove();
  const textarea = section.querySelector("[data-editor] textarea");
  if (textarea) textarea.removeAttribute("aria-invalid");
}

async function submitCode(form) {
  const section = form.closest("[data-element]");
  const live = form.querySelector("[data-live]");
  const button = form.querySelector("[data-submit]");
  if (form.dataset.busy === "1") return;
  form.dataset.busy = "1";
  clearErrors(section);
  const results = section.querySelector("[data-results]");
  if (results) { results.setAttribute("aria-busy", "true"); results.classList.add("is-grading"); }
  if (button) button.disabled = true;
  if (live) live.textContent = "Grading your code…";
  let response;
  try {
    response = await fetch(form.action, {
      method: "POST",
      body: new URLSearchParams(new FormData(form)),
      headers: { [FRAGMENT_HEADER]: "1", Accept: "text/html" },
      credentials: "same-origin",
    });
  } catch {
    // the server could not be reached: submit the form normally so nothing is silently lost
    delete form.dataset.busy;
    form.dataset.plain = "1";
    form.submit();
    return;
  }
  const html = await response.text();
  delete form.dataset.busy;
  if (button) button.disabled = false;
  if (results) { results.removeAttribute("aria-busy"); results.classList.remove("is-grading"); }
  if (response.headers.get("X-Straightline-Error") === "1" || !response.ok) {
    const holder = document.createElement("div");
    holder.innerHTML = html;
    const message = holder.textContent.trim() || `The submission failed (HTTP ${response.status}); please try again.`;
    showError(form.querySelector("[data-editor]"), `${section.id}-error`, message);
    if (live) live.textContent = "";
    return;
  }
  const fresh = parseFragment(html);
  if (!fresh) return;
  section.dataset.status = fresh.dataset.status || section.dataset.status;
  const head = section.querySelector(".el__head");
  const freshHead = fresh.querySelector(".el__head");
  if (head && freshHead) head.replaceWith(freshHead);
  const newResults = replacePart(section, fresh, "[data-results]", "[data-buildit-form]");
  const run = replacePart(section, fresh, "[data-run]", "[data-results]");
  if (run) enhanceSection(section);
  updateChapterProgress(response.headers.get("X-Chapter-Progress"));
  if (newResults) {
    newResults.classList.add("is-new");
    const verdict = newResults.querySelector("[data-verdict]");
    const passed = verdict && verdict.dataset.verdict === "passed";
    if (live) live.textContent = verdict ? `${verdict.textContent.trim().replace(/\s+/g, " ")}.${passed ? "" : " The first problem is shown below."}` : "Graded.";
    for (const goto of newResults.querySelectorAll("[data-goto-line]")) goto.hidden = false;
  }
  const editor = form.querySelector("[data-editor]");
  if (editor) renderGutter(editor);
}

async function runSimulation(form) {
  const section = form.closest("[data-element]");
  const live = form.querySelector("[data-run-live]");
  const button = form.querySelector("[data-run-button]");
  if (form.dataset.busy === "1") return;
  form.dataset.busy = "1";
  for (const old of section.querySelectorAll("[data-run] .request-error, [data-run] .field-error")) old.remove();
  if (button) button.disabled = true;
  const training = Boolean(section.querySelector("[data-loss-canvas]"));
  const name = form.dataset.exercise || "function";
  if (live) live.textContent = training ? `Training a small model with your ${name}…` : `Running your ${name}…`;
  let response, body;
  try {
    response = await fetch(form.action, {
      method: "POST",
      body: new URLSearchParams(new FormData(form)),
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    });
    body = await response.json();
  } catch {
    delete form.dataset.busy;
    if (button) button.disabled = false;
    if (live) live.textContent = "";
    showError(form, `${section.id}-run-error`, "The server could not be reached; please try again.");
    return;
  }
  delete form.dataset.busy;
  if (button) button.disabled = false;
  if (!response.ok) {
    if (live) live.textContent = "";
    showError(form, `${section.id}-run-error`, (body && body.error && body.error.message) || `The run failed (HTTP ${response.status}).`);
    return;
  }
  const run = body.run;
  showRun(section, run);
  if (live) live.textContent = run.ok ? `Done. W2 to the data: yours ${fmt(run.w2)}, the toolkit's ${fmt(run.w2_reference)}.` : run.message;
}

function fmt(x, digits = 3) {
  return typeof x === "number" && Number.isFinite(x) ? x.toFixed(digits) : "—";
}

function showRun(section, run) {
  const summary = section.querySelector("[data-run-summary]");
  if (summary) {
    summary.hidden = false;
    summary.replaceChildren();
    const p = document.createElement("p");
    p.className = "buildit__run-message" + (run.ok ? "" : " is-error");
    p.textContent = run.message;
    summary.append(p);
    if (run.ok) {
      const dl = document.createElement("dl");
      dl.className = "buildit__numbers";
      const band = `${fmt(run.w2_floor)} (10–90 %: ${fmt(run.w2_floor_low)}–${fmt(run.w2_floor_high)})`;
      const rows = [["W2 to the data: yours", run.w2], ["W2: the toolkit's", run.w2_reference], ["W2: two draws of the data", band]];
      if (run.mode === "train") rows.push(["final loss: yours", run.final_loss], ["final loss: the toolkit's", run.final_loss_reference]);
      for (const [label, value] of rows) {
        const div = document.createElement("div");
        const dt = document.createElement("dt");
        const dd = document.createElement("dd");
        dt.textContent = label;
        dd.textContent = typeof value === "string" ? value : fmt(value);
        div.append(dt, dd);
        dl.append(div);
      }
      summary.append(dl);
    }
  }
  const figure = section.querySelector("[data-plot]");
  if (!figure) return;
  if (!run.ok && !(run.data && run.data.length)) { figure.hidden = true; return; }
  figure.hidden = false;
  plots.set(figure, run);
  drawFigure(figure);
}

// --- the canvas -------------------------------------------------------------------------------

const plots = new WeakMap();
const BOUNDS = { x0: -4.5, x1: 4.5 };

function colours(canvas) {
  const css = getComputedStyle(canvas);
  const get = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
  return {
    bg: get("--plot-bg", "#ffffff"),
    axis: get("--plot-axis", "#d0ccc4"),
    data: get("--plot-data", "#8a8f98"),
    learner: get("--plot-learner", "#1f56c7"),
    reference: get("--plot-reference", "#c2410c"),
    text: get("--plot-text", "#59616c"),
  };
}

function fitCanvas(canvas, aspect) {
  const width = Math.max(200, Math.round(canvas.clientWidth || canvas.parentElement.clientWidth || 640));
  const height = Math.round(width / aspect);
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  canvas.style.height = `${height}px`;
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  return { ctx, width, height };
}

function drawScatter(canvas, run) {
  const { ctx, width, height } = fitCanvas(canvas, scatterAspect(canvas));
  const c = colours(canvas);
  const scale = width / (BOUNDS.x1 - BOUNDS.x0);
  const X = (x) => (x - BOUNDS.x0) * scale;
  const Y = (y) => height / 2 - y * scale;
  ctx.fillStyle = c.bg;
  ctx.fillRect(0, 0, width, height);
  ctx.strokeStyle = c.axis;
  ctx.lineWidth = 1;
  ctx.beginPath();
  ctx.moveTo(0, Y(0)); ctx.lineTo(width, Y(0));
  ctx.moveTo(X(0), 0); ctx.lineTo(X(0), height);
  ctx.stroke();
  const dot = (p, r) => { ctx.moveTo(X(p[0]) + r, Y(p[1])); ctx.arc(X(p[0]), Y(p[1]), r, 0, 2 * Math.PI); };
  ctx.fillStyle = c.data;
  ctx.globalAlpha = 0.45;
  ctx.beginPath();
  for (const p of run.data || []) dot(p, 1.6);
  ctx.fill();
  ctx.globalAlpha = 0.35;
  ctx.strokeStyle = c.learner;
  ctx.beginPath();
  for (const path of run.paths || []) {
    path.forEach((p, i) => (i ? ctx.lineTo(X(p[0]), Y(p[1])) : ctx.moveTo(X(p[0]), Y(p[1]))));
  }
  ctx.stroke();
  ctx.globalAlpha = 0.8;
  ctx.strokeStyle = c.reference;
  ctx.lineWidth = 1.2;
  ctx.beginPath();
  for (const p of run.reference || []) dot(p, 3.2);
  ctx.stroke();
  ctx.globalAlpha = 0.9;
  ctx.fillStyle = c.learner;
  ctx.beginPath();
  for (const p of run.learner || []) dot(p, 2);
  ctx.fill();
  ctx.globalAlpha = 1;
  const what = run.mode === "train" ? "samples of the network trained with your loss" : "particles moved by your euler_sample";
  canvas.setAttribute(
    "aria-label",
    `Scatter plot of the two-clusters data (grey), your ${what} (filled, with the paths of the first 64), ` +
      `and the toolkit's (rings). W2 to the data: yours ${fmt(run.w2)}, the toolkit's ${fmt(run.w2_reference)}.`,
  );
}

function scatterAspect(canvas) {
  return canvas.clientWidth < 480 ? 1.4 : 2;
}

function drawLosses(canvas, run) {
  const { ctx, width, height } = fitCanvas(canvas, canvas.clientWidth < 480 ? 2.4 : 4);
  const c = colours(canvas);
  ctx.fillStyle = c.bg;
  ctx.fillRect(0, 0, width, height);
  const series = [[run.losses || [], c.learner, []], [run.reference_losses || [], c.reference, [5, 4]]];
  const smooth = (xs) => xs.map((_, i) => {
    const w = xs.slice(Math.max(0, i - 9), i + 1).filter((v) => typeof v === "number");
    return w.length ? w.reduce((a, b) => a + b, 0) / w.length : null;
  });
  const all = series.flatMap(([xs]) => smooth(xs)).filter((v) => typeof v === "number" && Number.isFinite(v));
  if (!all.length) return;
  const lo = Math.min(...all), hi = Math.max(...all);
  const n = Math.max(...series.map(([xs]) => xs.length), 2);
  const pad = 8;
  const X = (i) => pad + (i / (n - 1)) * (width - 2 * pad);
  const Y = (v) => height - pad - ((v - lo) / (hi - lo || 1)) * (height - 2 * pad - 14);
  ctx.fillStyle = c.text;
  ctx.font = "12px system-ui, sans-serif";
  ctx.fillText(`training loss (smoothed, from ${fmt(hi, 2)} to ${fmt(lo, 2)}): yours solid, the toolkit's dashed`, pad, 14);
  for (const [xs, colour, dash] of series) {
    ctx.strokeStyle = colour;
    ctx.setLineDash(dash);
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    smooth(xs).forEach((v, i) => { if (v !== null) (i ? ctx.lineTo(X(i), Y(v)) : ctx.moveTo(X(i), Y(v))); });
    ctx.stroke();
  }
  ctx.setLineDash([]);
  canvas.setAttribute("aria-label", `Training loss per step: yours ends at ${fmt(run.final_loss)}, the toolkit's at ${fmt(run.final_loss_reference)}.`);
}

function drawFigure(figure) {
  const run = plots.get(figure);
  if (!run || figure.hidden) return;
  const scatter = figure.querySelector("[data-canvas]");
  if (scatter) drawScatter(scatter, run);
  const losses = figure.querySelector("[data-loss-canvas]");
  if (losses) drawLosses(losses, run);
}

function redrawAll() {
  for (const figure of document.querySelectorAll("[data-plot]")) drawFigure(figure);
}

// --- wiring -----------------------------------------------------------------------------------

function enhanceSection(section) {
  for (const editor of section.querySelectorAll("[data-editor]")) {
    const gutter = editor.querySelector(".editor__gutter");
    if (gutter) gutter.hidden = false;
    editor.classList.add("has-gutter");
    renderGutter(editor);
  }
  for (const button of section.querySelectorAll("[data-reset], [data-goto-line]")) button.hidden = false;
}

function enhance(root) {
  for (const section of root.querySelectorAll(".el--build-it")) enhanceSection(section);
}

document.addEventListener("keydown", onKeydown);
document.addEventListener("input", (event) => {
  const editor = event.target instanceof HTMLTextAreaElement && event.target.closest("[data-editor]");
  if (editor) renderGutter(editor);
});
document.addEventListener("scroll", (event) => {
  const editor = event.target instanceof HTMLTextAreaElement && event.target.closest("[data-editor]");
  if (editor) syncScroll(editor);
}, true);
document.addEventListener("focusout", (event) => {
  if (event.target instanceof HTMLTextAreaElement) delete event.target.dataset.escaped;
});
document.addEventListener("click", (event) => {
  const target = event.target instanceof Element ? event.target : null;
  const section = target && target.closest(".el--build-it");
  if (!section) return;
  if (target.closest("[data-reset]")) resetCode(section);
  const goto = target.closest("[data-goto-line]");
  if (goto) gotoLine(section, Number(goto.dataset.gotoLine));
});
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || form.dataset.plain === "1" || !window.fetch) return;
  if (form.matches("[data-buildit-form]")) { event.preventDefault(); submitCode(form); }
  else if (form.matches("[data-run-form]")) { event.preventDefault(); runSimulation(form); }
});

new MutationObserver((records) => {
  for (const record of records) {
    for (const node of record.addedNodes) {
      if (node instanceof HTMLElement && (node.matches(".el--build-it") || node.querySelector(".el--build-it"))) {
        enhance(node.matches(".el--build-it") ? node.parentElement || node : node);
      }
    }
  }
}).observe(document.documentElement, { childList: true, subtree: true });

let resizeTimer = 0;
window.addEventListener("resize", () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(redrawAll, 150); });
window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", redrawAll);

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", () => enhance(document));
else enhance(document);
