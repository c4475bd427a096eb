// Starts every simulation on the page: each figure[data-sim] gets the player and its simulation's
// module (static/sims/<name>.js). Loaded by the simulation elements' template.

import { Player } from "./player.js";

async function start(figure) {
  if (figure.dataset.simStarted) return;
  figure.dataset.simStarted = "1";
  try {
    const module = await import(`./${figure.dataset.sim}.js`);
    figure.player = new Player(figure, module.default);
    figure.dispatchEvent(new Event("sim:started"));
  } catch (error) {
    const app = figure.querySelector("[data-sim-app]");
    const note = document.createElement("p");
    note.className = "sim__status is-error";
    note.textContent = `This simulation could not start: ${error.message}`;
    app.replaceChildren(note);
    figure.dataset.state = "error";
  }
}

for (const figure of document.querySelectorAll("figure[data-sim]")) start(figure);
