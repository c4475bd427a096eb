// The chapter's progress bar, updated in place from a response's X-Chapter-Progress header
// ("done/total"). Shared by app.js (answers) and editor.js (Build-It submissions).

export function updateChapterProgress(header) {
  if (!header) return;
  const [done, total] = header.split("/").map(Number);
  const box = document.querySelector("[data-chapter-progress]");
  if (!box || Number.isNaN(done)) return;
  const bar = box.querySelector("progress");
  if (bar) { bar.max = total; bar.value = done; }
  const text = box.querySelector("[data-progress-text]");
  if (text) text.textContent = `${done} of ${total} exercise${total === 1 ? "" : "s"} done`;
}
