import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pngjs from 'pngjs';
import { afterAll, describe, expect, it } from 'vitest';
import { loadImageFolder } from '../src/io/image-folder';
import { crc32 } from '../src/io/png';
import { expectRejection as rejects } from './helpers/errors.js';

const root = mkdtempSync(join(tmpdir(), 'ddpm-image-folder-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A PNG written by pngjs: pixel(x, y) → [r, g, b]. */
function png(w: number, h: number, pixel: (x: number, y: number) => number[], colorType: 0 | 2 = 2): Buffer {
  const data = Buffer.alloc(4 * w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data.set([...pixel(x, y), 255], 4 * (y * w + x));
  return pngjs.PNG.sync.write({ width: w, height: h, data }, { colorType, inputColorType: 6 });
}

const f32 = Math.fround;
const grayPixel = (x: number, y: number) => Array(3).fill((x * 16 + y * 40) % 256);
const colorPixel = (x: number, y: number) => [x * 30, y * 50, 200];

let n = 0;
function folder(files: Record<string, Buffer | string>): string {
  const dir = join(root, `f${n++}`);
  mkdirSync(dir);
  for (const [name, bytes] of Object.entries(files)) writeFileSync(join(dir, name), bytes);
  return dir;
}

describe('loadImageFolder', () => {
  it('reads gray PNGs as (N, 1, H, W) = byte/127.5 − 1, files sorted by name, other files ignored', async () => {
    const dir = folder({
      'b.png': png(4, 3, grayPixel, 0),
      'a.png': png(4, 3, (x, y) => grayPixel(y, x)),
      'notes.txt': 'hello',
    });
    const f = await loadImageFolder(dir);
    expect([f.N, f.C, f.H, f.W]).toEqual([2, 1, 3, 4]);
    expect(f.files.map((p) => p.slice(dir.length + 1))).toEqual(['a.png', 'b.png']);
    for (let y = 0; y < 3; y++)
      for (let x = 0; x < 4; x++) {
        expect(f.images[y * 4 + x]).toBe(f32(grayPixel(y, x)[0] / 127.5 - 1));
        expect(f.images[12 + y * 4 + x]).toBe(f32(grayPixel(x, y)[0] / 127.5 - 1));
      }
    expect(f.skipped).toEqual([]);
  });

  it('converts channels: color → 1 by BT.601 luma, gray → 3 by replication; mixed folders default to 3', async () => {
    const dir = folder({ 'c.png': png(2, 2, colorPixel), 'g.png': png(2, 2, grayPixel) });
    const three = await loadImageFolder(dir);
    expect(three.C).toBe(3);
    // g.png, pixel (1, 0) in R, G, B planes
    expect([0, 1, 2].map((c) => three.images[12 + c * 4 + 1])).toEqual(
      Array(3).fill(f32(grayPixel(1, 0)[0] / 127.5 - 1)),
    );
    const one = await loadImageFolder(dir, { channels: 1 });
    const [r, g, b] = colorPixel(1, 1);
    expect(one.images[3]).toBe(f32(Math.round(0.299 * r + 0.587 * g + 0.114 * b) / 127.5 - 1));
    expect(one.images[4 + 1]).toBe(f32(grayPixel(1, 0)[0] / 127.5 - 1));
  });

  it('reports truncated, bad-CRC, non-PNG and over-limit files: fail names the file, skip lists and counts them', async () => {
    const good = png(4, 4, grayPixel, 0);
    const badCrc = Buffer.from(good);
    badCrc[badCrc.indexOf('IDAT') + 5] ^= 0x40;
    const huge = Buffer.from(good);
    huge.writeUInt32BE(50_000, 16);
    huge.writeUInt32BE(50_000, 20);
    huge.writeUInt32BE(crc32(huge.subarray(12, 29)), 29);
    const files = {
      '0-good.png': good,
      '1-truncated.png': good.subarray(0, good.length - 30),
      '2-crc.png': badCrc,
      '3-text.png': 'not an image',
      '4-huge.png': huge,
      '5-good.png': good,
    };
    const dir = folder(files);
    await rejects(loadImageFolder(dir), 'FORMAT', /1-truncated\.png: truncated/);
    const f = await loadImageFolder(dir, { policy: 'skip' });
    expect(f.N).toBe(2);
    expect(f.skipped.map((s) => [s.file.slice(dir.length + 1), s.reason.split(' ').slice(0, 2).join(' ')])).toEqual([
      ['1-truncated.png', 'truncated: chunk'],
      ['2-crc.png', 'CRC mismatch'],
      ['3-text.png', 'not a'],
      ['4-huge.png', 'declared size'],
    ]);
    // the file size limit is checked before the file is read
    await rejects(
      loadImageFolder(folder({ 'a.png': good }), { limits: { maxSide: 4096, maxPixels: 2 ** 24, maxFileBytes: 20 } }),
      'FORMAT',
      /a\.png: \d+ bytes exceeds the limit of 20/,
    );
  });

  it('a size that differs from the first image or the model is an error naming the file, under either policy', async () => {
    const dir = folder({ 'a.png': png(4, 4, grayPixel), 'b.png': png(4, 5, grayPixel) });
    for (const policy of ['skip', 'fail'] as const)
      await rejects(loadImageFolder(dir, { policy }), 'SHAPE_MISMATCH', /b\.png: 4×5, expected 4×4 \(as .*a\.png\)/);
    await rejects(
      loadImageFolder(folder({ 'a.png': png(4, 4, grayPixel) }), { size: { width: 28, height: 28 } }),
      'SHAPE_MISMATCH',
      /a\.png: 4×4, expected 28×28 \(the model\)/,
    );
  });

  it('an empty folder, a folder without PNGs, a missing folder and a folder of only bad files are errors', async () => {
    await rejects(loadImageFolder(folder({})), 'FORMAT', /holds no \.png files/);
    await rejects(loadImageFolder(folder({ 'x.jpg': 'jpeg?' })), 'FORMAT', /holds no \.png files/);
    await rejects(loadImageFolder(join(root, 'missing')), 'IO', /missing: cannot read the image folder/);
    await rejects(
      loadImageFolder(folder({ 'a.png': 'junk', 'b.png': 'junk' }), { policy: 'skip' }),
      'FORMAT',
      /no readable PNG files \(2 skipped; first: .*a\.png: not a PNG file/,
    );
  });
});
