// Shared by the digit simulations (digit-emerging, guided-digits): 8 x 8 images as tiles on the
// canvas, a grid of every sample at the shown frame, and the first sample's pixels as a table.

import { decode, fmt, fmtT } from "./core.js";

function mix(a, b, w) {
  return a.map((v, i) => Math.round(v + (b[i] - v) * w));
}

// one 8x8 image (64 values, about -1 = background .. 1 = ink) as a tile of size px
export function tile(ctx, pixels, offset, x, y, size, paper, pen) {
  const cell = size / 8;
  for (let r = 0; r < 8; r++) {
    for (let q = 0; q < 8; q++) {
      const v = pixels[offset + r * 8 + q];
      const w = Math.max(0, Math.min(1, (v + 1) / 2));
      const [R, G, B] = mix(paper, pen, w);
      ctx.fillStyle = `rgb(${R},${G},${B})`;
      ctx.fillRect(Math.floor(x + q * cell), Math.floor(y + r * cell), Math.ceil(cell), Math.ceil(cell));
    }
  }
}

// Every sample at the shown frame, `cols` to a row of tiles of size `cell`, centred, from `top`.
export function sampleGrid(ctx, s, { cols, cell, gap, top }, paper, pen) {
  const { data: d, frame } = s;
  const [, n] = d.images.shape;
  const gx = (s.width - (cols * cell + (cols - 1) * gap)) / 2;
  for (let i = 0; i < n; i++) {
    const x = gx + (i % cols) * (cell + gap);
    const y = top + Math.floor(i / cols) * (cell + gap);
    tile(ctx, d.images.data, (frame * n + i) * 64, x, y, cell, paper, pen);
  }
}

// The player fields of a digit simulation: its images decoded, one frame per saved time.
export const DIGIT_FRAMES = {
  prepare: (body) => ({ ...body, images: decode(body.frames) }),
  frames: (d) => d.ts.length,
  time: (d, i) => d.ts[i],
  initialFrame: (d) => d.ts.length - 1,
};

// The first sample's 8 x 8 pixels at the shown frame, as the player's data table.
export function firstImageTable(s) {
  const { data: d, frame } = s;
  const [, n] = d.images.shape;
  const rows = [];
  for (let r = 0; r < 8; r++) {
    const row = [`row ${r + 1}`];
    for (let q = 0; q < 8; q++) row.push(fmt(d.images.data[frame * n * 64 + r * 8 + q], 1));
    rows.push(row);
  }
  return {
    caption: `The first sample's 8 × 8 pixels at ${fmtT(s.t)} (-1 background, 1 ink)`,
    columns: ["", ...Array.from({ length: 8 }, (_, q) => `col ${q + 1}`)],
    rows,
  };
}
