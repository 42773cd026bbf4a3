// The CLI's pictures: the 3×5 label font, the scatter plot's axes, labelled trajectory strips, --scale.
import { describe, expect, it } from 'vitest';
import { drawText, textWidth } from '../src/cli/font.js';
import { scatterImage, trajectoryStrip } from '../src/cli/plot.js';
import type { RgbaImage } from '../src/io/png.js';
import { scaleImage as upscaleNearest } from '../src/io/image.js';
import { codeOf } from './helpers/errors.js';

function blank(width: number, height: number, gray = 0): RgbaImage {
  const data = new Uint8ClampedArray(4 * width * height).fill(gray);
  for (let i = 3; i < data.length; i += 4) data[i] = 255;
  return { width, height, data };
}
const gray = (im: RgbaImage, x: number, y: number) => im.data[4 * (y * im.width + x)];
/** The w×h block at (x, y) as rows of '#' (lit) and '.'. */
function block(im: RgbaImage, x: number, y: number, w: number, h: number): string[] {
  return Array.from({ length: h }, (_, r) =>
    Array.from({ length: w }, (_, c) => (gray(im, x + c, y + r) > 0 ? '#' : '.')).join(''),
  );
}
/** Bounding box of the lit pixels inside a region. */
function litBox(im: RgbaImage, x0: number, y0: number, x1: number, y1: number) {
  let [minX, minY, maxX, maxY] = [Infinity, Infinity, -Infinity, -Infinity];
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      if (gray(im, x, y) === 0) continue;
      [minX, minY, maxX, maxY] = [Math.min(minX, x), Math.min(minY, y), Math.max(maxX, x), Math.max(maxY, y)];
    }
  }
  return { minX, minY, maxX, maxY };
}

// Digits as they should look (3×5): the font's specification, written out independently here.
const ONE = ['.#.', '##.', '.#.', '.#.', '###'];
const SEVEN = ['###', '..#', '..#', '..#', '..#'];
const MINUS = ['...', '...', '###', '...', '...'];

describe('label font', () => {
  it('draws 3×5 glyphs one pixel apart, scaled as blocks', () => {
    const im = blank(12, 6);
    drawText(im, '17', 1, 0);
    expect(block(im, 1, 0, 3, 5)).toEqual(ONE);
    expect(block(im, 5, 0, 3, 5)).toEqual(SEVEN);
    expect(block(im, 4, 0, 1, 5)).toEqual(['.', '.', '.', '.', '.']); // the gap
    expect(textWidth('17')).toBe(7);
    const big = blank(6, 10);
    drawText(big, '-', 0, 0, 255, 2);
    expect(block(big, 0, 0, 6, 10)).toEqual(MINUS.flatMap((r) => [r, r]).map((r) => [...r].map((c) => c + c).join('')));
  });

  it('clips at the image edge and refuses characters it has no glyph for', () => {
    const im = blank(2, 2);
    drawText(im, '8', -1, -1);
    expect(block(im, 0, 0, 2, 2)).toEqual(['.#', '##']);
    expect(codeOf(() => drawText(im, 'A', 0, 0))).toBe('INVALID_ARGUMENT');
  });
});

describe('scatterImage', () => {
  const size = 400;

  it('puts each point in the plot square, y up, over faint lines through the origin', () => {
    const im = scatterImage(new Float32Array([0, 0, 2.5, -2.5]), size, 3);
    expect([im.width, im.height]).toEqual([size, size]);
    // find the origin lines: the column and the row that are dim gray along most of the plot
    const dimCols = [...Array(size).keys()].filter((x) =>
      [100, 150, 250, 300].every((y) => gray(im, x, y) > 0 && gray(im, x, y) < 128),
    );
    const dimRows = [...Array(size).keys()].filter((y) =>
      [100, 150, 250, 300].every((x) => gray(im, x, y) > 0 && gray(im, x, y) < 128),
    );
    expect(dimCols).toHaveLength(1);
    expect(dimRows).toHaveLength(1);
    const [ox, oy] = [dimCols[0], dimRows[0]];
    // (0, 0) is a white 2×2 dot at the origin; (2.5, −2.5) is right of and below it
    expect(block(im, ox, oy, 2, 2)).toEqual(['##', '##']);
    expect(gray(im, ox, oy)).toBe(255);
    const white: [number, number][] = [];
    for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) if (gray(im, x, y) === 255) white.push([x, y]);
    const far = white.filter(([x, y]) => x > ox + 100 && y > oy + 100);
    expect(far).toHaveLength(4);
    // 2.5 of the half-range 3 from the origin, both ways (the square's half side is (size − 32) / 2 px)
    const half = (size - 32) / 2;
    expect(Math.abs(far[0][0] - ox - (2.5 / 3) * half)).toBeLessThanOrEqual(1);
    expect(Math.abs(far[0][1] - oy - (2.5 / 3) * half)).toBeLessThanOrEqual(1);
  });

  it('has a left and a bottom axis with ticks labelled −3 … 3', () => {
    const im = scatterImage(new Float32Array(0), size, 3);
    // the axes: one long bright-gray column on the left and one row at the bottom
    const axisCol = [...Array(60).keys()].find((x) => [50, 200, 350].every((y) => gray(im, x, y) >= 128));
    const axisRow = [...Array(size).keys()].reverse().find((y) => [50, 200, 350].every((x) => gray(im, x, y) >= 128));
    expect(axisCol).toBeDefined();
    expect(axisRow).toBeDefined();
    // below the bottom axis: 7 labels; the leftmost reads "-3", the rightmost "3"
    const below = { y0: axisRow! + 2, y1: size };
    const labelCols = [...Array(size).keys()].filter((x) =>
      [...Array(below.y1 - below.y0).keys()].some(
        (d) => gray(im, x, below.y0 + d) >= 128 && gray(im, x, below.y0 + d - 1) === 0,
      ),
    );
    const groups = labelCols.reduce<number[][]>((g, x) => {
      if (g.length && x - g[g.length - 1].at(-1)! <= 2) g[g.length - 1].push(x);
      else g.push([x]);
      return g;
    }, []);
    expect(groups).toHaveLength(7);
    const first = litBox(im, groups[0][0], below.y0 + 3, groups[0].at(-1)! + 1, size);
    expect(first.maxX - first.minX + 1).toBe(textWidth('-3'));
    expect(block(im, first.minX, first.minY, 3, 5)).toEqual(MINUS);
    // left of the left axis: labels too, one per tick
    const leftRows = [...Array(size).keys()].filter((y) =>
      [...Array(axisCol! - 3).keys()].some((x) => gray(im, x, y) >= 128),
    );
    expect(leftRows.length).toBe(7 * 5);
  });
});

describe('trajectoryStrip', () => {
  it('lays x_t over x̂_0 under a band with each column labelled by its step and t', () => {
    const w = 28;
    const cell = (v: number) => blank(w, w, v);
    const frames = [
      { step: 1, t: 7, xt: cell(10), x0: cell(20) },
      { step: 7, t: 1, xt: cell(30), x0: cell(40) },
    ];
    const im = trajectoryStrip(frames, 2);
    const band = 2 + 5 + 1 + 5;
    expect([im.width, im.height]).toEqual([2 * w + 3 * 2, band + 2 * w + 3 * 2]);
    // the cells, where imageGrid puts them, below the band
    expect(gray(im, 2, band + 2)).toBe(10);
    expect(gray(im, 2 + w + 2, band + 2)).toBe(30);
    expect(gray(im, 2, band + 2 + w + 2)).toBe(20);
    expect(gray(im, 2 + w + 2 + w - 1, band + 2 + w + 2 + w - 1)).toBe(40);
    // column 0 reads "1" over "t=7", column 1 "7" over "t=1", each centred on its cell
    const centre = (i: number) => 2 + i * (w + 2) + w / 2;
    const columns = [
      { i: 0, step: ONE, t: SEVEN },
      { i: 1, step: SEVEN, t: ONE },
    ];
    for (const { i, step, t } of columns) {
      const [x0, x1] = [2 + i * (w + 2), 2 + i * (w + 2) + w];
      const top = litBox(im, x0, 0, x1, 7);
      expect(block(im, top.minX, 2, 3, 5)).toEqual(step);
      expect(Math.abs((top.minX + top.maxX) / 2 - centre(i))).toBeLessThanOrEqual(1);
      const bottom = litBox(im, x0, 8, x1, 13);
      expect(bottom.maxX - bottom.minX + 1).toBe(textWidth('t=1'));
      expect(block(im, bottom.maxX - 2, 8, 3, 5)).toEqual(t);
      expect(Math.abs((bottom.minX + bottom.maxX) / 2 - centre(i))).toBeLessThanOrEqual(1);
    }
  });

  it('drops the t= where it would run into the next column', () => {
    const cell = (v: number) => blank(6, 6, v);
    const im = trajectoryStrip([
      { step: 1, t: 7, xt: cell(10), x0: cell(20) },
      { step: 2, t: 1, xt: cell(30), x0: cell(40) },
    ]);
    const left = litBox(im, 0, 8, 2 + 6 + 1, 13);
    expect(left.maxX - left.minX + 1).toBe(3);
    expect(block(im, left.minX, 8, 3, 5)).toEqual(SEVEN);
  });

  it('refuses an empty strip', () => {
    expect(codeOf(() => trajectoryStrip([]))).toBe('INVALID_ARGUMENT');
  });
});

describe('scaleImage (--scale K)', () => {
  it('repeats every pixel as a k×k block', () => {
    const im: RgbaImage = { width: 2, height: 1, data: new Uint8ClampedArray([1, 2, 3, 4, 5, 6, 7, 8]) };
    const up = upscaleNearest(im, 3);
    expect([up.width, up.height]).toEqual([6, 3]);
    for (let y = 0; y < 3; y++) {
      for (let x = 0; x < 6; x++) {
        expect([...up.data.subarray(4 * (y * 6 + x), 4 * (y * 6 + x) + 4)]).toEqual(
          x < 3 ? [1, 2, 3, 4] : [5, 6, 7, 8],
        );
      }
    }
    expect(upscaleNearest(im, 1).data).toEqual(im.data);
  });

  it('refuses factors that are not integers in [1, 64]', () => {
    const im = blank(1, 1);
    for (const k of [0, -1, 1.5, 65, Number.NaN]) expect(codeOf(() => upscaleNearest(im, k))).toBe('INVALID_ARGUMENT');
  });
});
