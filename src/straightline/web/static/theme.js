// Light or dark: the page follows prefers-color-scheme until the reader picks one with the
// header's toggle; the choice is kept in localStorage. A classic script loaded in <head> right
// after the style sheets, so the chosen theme is in place before the first paint (no flash): it
// switches every `@media (prefers-color-scheme: dark)` rule of the page's own style sheets on
// ("all") or off ("not all"), so the CSS keeps one set of dark colours.
(function () {
  "use strict";
  var KEY = "straightline-theme";
  var original = new WeakMap();
  var system = window.matchMedia("(prefers-color-scheme: dark)");

  function stored() {
    try { var v = localStorage.getItem(KEY); return v === "light" || v === "dark" ? v : null; } catch (e) { return null; }
  }

  function flip(rules, choice) {
    for (var i = 0; i < rules.length; i++) {
      var rule = rules[i];
      if (rule.media && rule.cssRules) {
        if (!original.has(rule)) original.set(rule, rule.media.mediaText);
        var text = original.get(rule);
        if (/prefers-color-scheme:\s*dark/.test(text)) rule.media.mediaText = choice === "dark" ? "all" : choice === "light" ? "not all" : text;
        flip(rule.cssRules, choice);
      }
    }
  }

  function apply() {
    var choice = stored();
    var root = document.documentElement;
    for (var i = 0; i < document.styleSheets.length; i++) {
      var rules = null;
      try { rules = document.styleSheets[i].cssRules; } catch (e) { rules = null; }
      if (rules) flip(rules, choice);
    }
    var dark = choice ? choice === "dark" : system.matches;
    root.dataset.theme = dark ? "dark" : "light";
    root.style.colorScheme = dark ? "dark" : "light";
    var button = document.querySelector("[data-theme-toggle]");
    if (button) {
      button.setAttribute("aria-pressed", String(dark));
      button.title = dark ? "Dark theme on: switch to light" : "Light theme on: switch to dark";
    }
    document.dispatchEvent(new Event("themechange"));
  }

  function toggle() {
    var dark = document.documentElement.dataset.theme === "dark";
    try { localStorage.setItem(KEY, dark ? "light" : "dark"); } catch (e) { /* private mode: this page only */ }
    apply();
  }

  apply();
  system.addEventListener("change", apply);
  document.addEventListener("DOMContentLoaded", function () {
    apply();  // style sheets in the body (inline SVG) too
    var button = document.querySelector("[data-theme-toggle]");
    if (button) { button.hidden = false; button.addEventListener("click", toggle); }
  });
})();
