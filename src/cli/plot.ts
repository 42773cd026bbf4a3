// Small pictures for the ddpm command: a scatter plot of 2-D samples and a labelled trajectory strip (PNG),
// and the loss curve (SVG).
import { DdpmError } from '../errors.js';
import { imageGrid, type RgbaImage } from '../io/png.js';
import { GLYPH_HEIGHT, drawText, setGray, textWidth } from './font.js';

// Layout of the scatter plot (pixels): the plot square, and margins for the tick labels.
const AXIS = { left: 24, right: 8, top: 16, bottom: 16, tick: 3 } as const;
const AXIS_GRAY = 160;
const ZERO_GRAY = 64;

/**
 * Points (n, 2) drawn as white dots on black over [−range, range]², y up, in a size×size image with axes:
 * a frame on the left and bottom with a labelled tick at every integer (every `step`-th for wide ranges),
 * and faint lines through the origin. Points outside the square are dropped.
 */
export function scatterImage(points: Float32Array, size = 400, range = 3): RgbaImage {
  const data = new Uint8ClampedArray(4 * size * size); // (size, size, 4)
  for (let i = 3; i < data.length; i += 4) data[i] = 255;
  const img = { width: size, height: size, data };
  const P = size - AXIS.left - AXIS.right; // the plot square's side
  const [x0, y0] = [AXIS.left, AXIS.top]; // its top-left pixel
  const frac = (v: number) => Math.floor(((v + range) / (2 * range)) * P); // 0 … P−1 inside the range
  const col = (v: number) => x0 + frac(v);
  const row = (v: number) => y0 + P - 1 - frac(v);
  const inside = (u: number, v: number) => u >= x0 && u < x0 + P && v >= y0 && v < y0 + P;

  // faint lines through the origin, under the points
  for (let k = 0; k < P; k++) {
    setGray(img, col(0), y0 + k, ZERO_GRAY);
    setGray(img, x0 + k, row(0), ZERO_GRAY);
  }
  // the frame: left and bottom edges just outside the square, with ticks and labels
  for (let k = -1; k <= P; k++) {
    setGray(img, x0 - 1, y0 + k, AXIS_GRAY);
    setGray(img, x0 + k, y0 + P, AXIS_GRAY);
  }
  const step = Math.max(1, Math.ceil((2 * range) / 8));
  for (let v = Math.ceil(-range / step) * step; v <= range; v += step) {
    const label = String(v);
    const [cx, ry] = [Math.min(col(v), x0 + P - 1), Math.max(row(v), y0)];
    for (let k = 1; k <= AXIS.tick; k++) {
      setGray(img, cx, y0 + P + k, AXIS_GRAY);
      setGray(img, x0 - 1 - k, ry, AXIS_GRAY);
    }
    drawText(img, label, cx - Math.floor(textWidth(label) / 2), y0 + P + AXIS.tick + 3, AXIS_GRAY);
    drawText(img, label, x0 - AXIS.tick - 3 - textWidth(label), ry - Math.floor(GLYPH_HEIGHT / 2), AXIS_GRAY);
  }
  for (let i = 0; 2 * i + 1 < points.length; i++) {
    const u0 = col(points[2 * i]);
    const v0 = row(points[2 * i + 1]);
    if (!(Math.abs(points[2 * i]) <= range && Math.abs(points[2 * i + 1]) <= range)) continue;
    for (let dy = 0; dy < 2; dy++) {
      for (let dx = 0; dx < 2; dx++) if (inside(u0 + dx, v0 + dy)) setGray(img, u0 + dx, v0 + dy, 255);
    }
  }
  return img;
}

/** One column of a trajectory strip: x_t and the predicted x̂_0 after sampling step `step` (timestep t). */
export interface TrajectoryFrame {
  step: number;
  t: number;
  xt: RgbaImage;
  x0: RgbaImage;
}

/**
 * A strip of x_t (top row) over x̂_0 (bottom row), one column per frame, under a band labelling each
 * column with its step (first line) and timestep (`t=…`, second line; just the number in narrow cells). Cells are laid out as imageGrid
 * lays them out, `padding` pixels apart; labels are centred on their column.
 */
export function trajectoryStrip(frames: readonly TrajectoryFrame[], padding = 2): RgbaImage {
  if (frames.length === 0) throw new DdpmError('INVALID_ARGUMENT', 'trajectoryStrip: no frames');
  const k = frames.length;
  const grid = imageGrid([...frames.map((f) => f.xt), ...frames.map((f) => f.x0)], k, padding);
  const band = padding + 2 * GLYPH_HEIGHT + 1; // two label lines one pixel apart; the grid's padding follows
  const out: RgbaImage = {
    width: grid.width,
    height: band + grid.height,
    data: new Uint8ClampedArray(4 * grid.width * (band + grid.height)),
  };
  for (let i = 3; i < out.data.length; i += 4) out.data[i] = 255;
  out.data.set(grid.data, 4 * band * grid.width);
  const w = frames[0].xt.width;
  frames.forEach((f, i) => {
    const centre = padding + i * (w + padding) + w / 2;
    // 't=' is dropped when it would run into the next column (cells narrower than MNIST's 28 pixels)
    const tLabel = textWidth(`t=${f.t}`) <= w + padding - 1 ? `t=${f.t}` : String(f.t);
    const lines = [String(f.step), tLabel];
    lines.forEach((text, j) =>
      drawText(out, text, Math.round(centre - textWidth(text) / 2), padding + j * (GLYPH_HEIGHT + 1)),
    );
  });
  return out;
}

/**
 * The training loss against the step as an SVG line chart, log-scaled y. Long runs are averaged into at
 * most `maxPoints` bins so the file stays small; non-finite (skipped) steps are left out.
 */
export function lossSvg(steps: number[], losses: number[], maxPoints = 600): string {
  const pts: [number, number][] = [];
  const finite = steps.map((s, i) => [s, losses[i]] as [number, number]).filter(([, l]) => Number.isFinite(l) && l > 0);
  const per = Math.max(1, Math.ceil(finite.length / maxPoints));
  for (let i = 0; i < finite.length; i += per) {
    const bin = finite.slice(i, i + per);
    pts.push([bin.reduce((a, p) => a + p[0], 0) / bin.length, bin.reduce((a, p) => a + p[1], 0) / bin.length]);
  }
  const W = 640,
    H = 360,
    L = 60,
    R = 20,
    T = 20,
    B = 40;
  const head = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">\n<rect width="${W}" height="${H}" fill="white"/>\n`;
  if (pts.length === 0)
    return `${head}<text x="${W / 2}" y="${H / 2}" text-anchor="middle">no loss recorded yet</text>\n</svg>\n`;
  const x0 = Math.min(...pts.map((p) => p[0])),
    x1 = Math.max(x0 + 1, ...pts.map((p) => p[0]));
  const ly = pts.map((p) => Math.log10(p[1]));
  const y0 = Math.floor(Math.min(...ly)),
    y1 = Math.max(y0 + 1, Math.ceil(Math.max(...ly)));
  const sx = (x: number) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const sy = (y: number) => H - B - ((y - y0) / (y1 - y0)) * (H - T - B);
  let svg = head;
  for (let d = y0; d <= y1; d++) {
    svg += `<line x1="${L}" x2="${W - R}" y1="${sy(d).toFixed(1)}" y2="${sy(d).toFixed(1)}" stroke="#ddd"/>`;
    svg += `<text x="${L - 6}" y="${(sy(d) + 4).toFixed(1)}" text-anchor="end">1e${d}</text>\n`;
  }
  svg += `<text x="${L}" y="${H - 12}">step ${Math.round(x0)}</text><text x="${W - R}" y="${H - 12}" text-anchor="end">step ${Math.round(x1)}</text>\n`;
  svg += `<text x="${W / 2}" y="${H - 12}" text-anchor="middle">training loss (log scale)</text>\n`;
  svg += `<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="${pts.map((p, i) => `${sx(p[0]).toFixed(1)},${sy(ly[i]).toFixed(1)}`).join(' ')}"/>\n`;
  return `${svg}</svg>\n`;
}
