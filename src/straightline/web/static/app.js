// Understand Flow Matching: progressive enhancement for the course pages.
// Without this script every form still works (plain POST, redirect back). With it, a form marked
// data-enhance is sent with fetch and the server answers with the element's new HTML, which
// replaces the old one in place; focus moves to what was revealed.

import { updateChapterProgress } from "./progress.js";

const FRAGMENT_HEADER = "X-Straightline-Fragment";

function parseFragment(html) {
  const template = document.createElement("template");
  template.innerHTML = html.trim();
  return template.content.firstElementChild;
}

function countWords(text) {
  const words = text.match(/[\p{L}\p{N}]+(?:['’_-][\p{L}\p{N}]+)*/gu);
  return words ? words.length : 0;
}

function updateWordCount(textarea) {
  const min = Number(textarea.dataset.minWords || 0);
  const output = textarea.form && textarea.form.querySelector(`output[for="${CSS.escape(textarea.id)}"]`);
  if (!output) return;
  const n = countWords(textarea.value);
  output.hidden = false;
  output.textContent = n >= min ? `${n} words` : `${n} of at least ${min} words`;
  output.classList.toggle("is-enough", n >= min);
}

// A long display formula: its one-line version where it fits, else the version broken into rows.
function layoutMath(root) {
  for (const box of root.querySelectorAll(".math-display[data-breakable]")) {
    if (!box.getClientRects().length) continue; // hidden (a closed <details>): laid out when opened
    box.dataset.layout = "wide";
    if (box.scrollWidth > box.clientWidth + 1) box.dataset.layout = "broken";
  }
}

let mathLayoutPending = 0;
window.addEventListener("resize", () => {
  cancelAnimationFrame(mathLayoutPending);
  mathLayoutPending = requestAnimationFrame(() => layoutMath(document));
});
document.addEventListener("toggle", (event) => { if (event.target.open) layoutMath(event.target); }, true);

function enhance(root) {
  layoutMath(root);
  for (const textarea of root.querySelectorAll("textarea[data-min-words]")) updateWordCount(textarea);
  // let keyboard users scroll code and formulas that are wider than the page
  for (const box of root.querySelectorAll(".math-display, table")) {
    if (box.scrollWidth > box.clientWidth + 1 && !box.hasAttribute("tabindex")) {
      box.tabIndex = 0;
      if (!box.hasAttribute("role")) box.setAttribute("role", "region");
      if (!box.hasAttribute("aria-label")) box.setAttribute("aria-label", box.matches("table") ? "table, scrolls sideways" : "formula, scrolls sideways");
    }
  }
}

function swap(oldNode, newNode) {
  newNode.classList.add("is-new");
  oldNode.replaceWith(newNode);
  enhance(newNode);
  const target = newNode.querySelector("[data-focus]") || newNode.querySelector("[aria-invalid='true']") || newNode.querySelector(".field-error");
  if (target) {
    if (!target.matches("textarea, input, button, a, [tabindex]")) target.tabIndex = -1;
    target.focus({ preventScroll: true });
    target.scrollIntoView({ block: "nearest" });
  }
}

async function refreshElement(id) {
  const node = document.getElementById(id);
  if (!node) return;
  const response = await fetch(`/elements/${encodeURIComponent(id)}`, {
    headers: { [FRAGMENT_HEADER]: "1", Accept: "text/html" },
    credentials: "same-origin",
  });
  if (!response.ok) return;
  const fresh = parseFragment(await response.text());
  if (fresh) { fresh.classList.add("is-new"); node.replaceWith(fresh); enhance(fresh); }
}

function showRequestError(element, form, html) {
  for (const old of element.querySelectorAll(".request-error")) old.remove();
  const note = parseFragment(html) || Object.assign(document.createElement("p"), { className: "field-error request-error", textContent: "That did not work; please try again." });
  form.after(note);
  note.tabIndex = -1;
  note.focus();
}

async function submitEnhanced(form, submitter) {
  const element = form.closest("[data-element]");
  const body = new URLSearchParams(new FormData(form, submitter));
  element.setAttribute("aria-busy", "true");
  for (const button of form.querySelectorAll("button")) button.disabled = true;
  let response;
  try {
    response = await fetch(form.action, {
      method: "POST",
      body,
      headers: { [FRAGMENT_HEADER]: "1", Accept: "text/html" },
      credentials: "same-origin",
    });
  } catch {
    // the server could not be reached: let the browser submit normally so nothing is silently lost
    form.dataset.enhance = "off";
    element.removeAttribute("aria-busy");
    for (const button of form.querySelectorAll("button")) button.disabled = false;
    form.requestSubmit(submitter || undefined);
    return;
  }
  const html = await response.text();
  element.removeAttribute("aria-busy");
  if (response.headers.get("X-Straightline-Error") === "1" || !(response.headers.get("content-type") || "").includes("text/html")) {
    for (const button of form.querySelectorAll("button")) button.disabled = false;
    showRequestError(element, form, html);
    return;
  }
  const fresh = parseFragment(html);
  if (!fresh) return;
  swap(element, fresh);
  updateChapterProgress(response.headers.get("X-Chapter-Progress"));
  const refresh = response.headers.get("X-Refresh-Elements");
  if (refresh) for (const id of refresh.split(" ")) await refreshElement(id);
}

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.matches("form[data-enhance]:not([data-enhance='off'])")) return;
  if (!window.fetch || !form.closest("[data-element]")) return;
  event.preventDefault();
  submitEnhanced(form, event.submitter);
});

document.addEventListener("input", (event) => {
  const target = event.target;
  if (target instanceof HTMLTextAreaElement && target.dataset.minWords) updateWordCount(target);
});

enhance(document);
