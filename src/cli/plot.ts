// Small pictures for the ddpm command: a scatter plot of 2-D samples (PNG) and the loss curve (SVG).
import type { RgbaImage } from '../io/png.js';

/** Points (n, 2) drawn as white dots on black over [−range, range]², y up; points outside are dropped. */
export function scatterImage(points: Float32Array, size = 400, range = 3): RgbaImage {
  const data = new Uint8ClampedArray(4 * size * size); // (size, size, 4)
  for (let i = 3; i < data.length; i += 4) data[i] = 255;
  const px = (v: number) => Math.floor(((v + range) / (2 * range)) * size);
  for (let i = 0; 2 * i + 1 < points.length; i++) {
    const x = px(points[2 * i]), y = size - 1 - px(points[2 * i + 1]);
    for (let dy = 0; dy < 2; dy++) for (let dx = 0; dx < 2; dx++) {
      const u = x + dx, v = y + dy;
      if (u >= 0 && u < size && v >= 0 && v < size) data.fill(255, 4 * (v * size + u), 4 * (v * size + u) + 3);
    }
  }
  return { width: size, height: size, data };
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
  const W = 640, H = 360, L = 60, R = 20, T = 20, B = 40;
  const head = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">\n<rect width="${W}" height="${H}" fill="white"/>\n`;
  if (pts.length === 0) return `${head}<text x="${W / 2}" y="${H / 2}" text-anchor="middle">no loss recorded yet</text>\n</svg>\n`;
  const x0 = Math.min(...pts.map((p) => p[0])), x1 = Math.max(x0 + 1, ...pts.map((p) => p[0]));
  const ly = pts.map((p) => Math.log10(p[1]));
  const y0 = Math.floor(Math.min(...ly)), y1 = Math.max(y0 + 1, Math.ceil(Math.max(...ly)));
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
