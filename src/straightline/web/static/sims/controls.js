// Control descriptions shared by the simulations (see player.js for the types).

export const dataset = () => ({
  type: "select", name: "dataset", label: "Data",
  options: [["two_clusters", "Two clusters"], ["moons", "Two moons"], ["8gaussians", "Eight Gaussians"]],
});

// `taughtIn`: the chapter that teaches optimal-transport pairs, named on the option when a
// chapter before it shows the control.
export const coupling = (taughtIn = null) => ({
  type: "radio", name: "coupling", label: "Training pairs",
  options: [
    ["independent", "Independent"],
    ["exact_ot", taughtIn === null ? "Optimal transport" : `Optimal transport (taught in Chapter ${taughtIn})`],
  ],
});

export const seed = (label = "New noise") => ({ type: "seed", name: "seed", label });

export const steps = (label = "Euler steps", max = 100) => ({
  type: "range", name: "steps", label, min: 1, max, step: 1,
});

export const particles = (options = [200, 500, 1000, 2000]) => ({
  type: "select", name: "particles", label: "Particles", parse: (v) => Number.parseInt(v, 10),
  options: options.map((n) => [n, String(n)]),
});
