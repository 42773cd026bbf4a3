import { deflateSync } from 'node:zlib';
import pngjs from 'pngjs';
import { describe, expect, it } from 'vitest';
import { crc32, decodePng, encodePng, imageGrid, readPngHeader, tensorToImages, type RgbaImage } from '../src/io/png';
import { codeOf } from './helpers/errors.js';

/** A PNG written by pngjs itself (not by our encoder), RGBA input, the given output color type. */
function pngjsBytes(
  width: number,
  height: number,
  rgba: Uint8Array,
  colorType: 0 | 2 | 6 = 6,
  bitDepth: 8 | 16 = 8,
): Uint8Array {
  let data = Buffer.from(rgba);
  if (bitDepth === 16) {
    // pngjs expects 16-bit input for 16-bit output: scale each byte b to b·257
    const wide = Buffer.alloc(rgba.length * 2);
    for (let i = 0; i < rgba.length; i++) wide.writeUInt16BE(rgba[i] * 257, 2 * i);
    data = wide;
  }
  return new Uint8Array(pngjs.PNG.sync.write({ width, height, data }, { colorType, inputColorType: 6, bitDepth }));
}

/**
 * A PNG written from scratch (filter 0 on every row, zlib deflate): any color type, bit depth and Adam7
 * interlacing, which pngjs cannot write. `value(x, y, c)` gives each sample at the file's bit depth.
 */
function rawPng(
  width: number,
  height: number,
  colorType: 0 | 2 | 4 | 6,
  bitDepth: 1 | 2 | 4 | 8 | 16,
  interlace: 0 | 1,
  value: (x: number, y: number, c: number) => number,
): Uint8Array {
  const channels = { 0: 1, 2: 3, 4: 2, 6: 4 }[colorType];
  const passes = interlace
    ? [
        [0, 0, 8, 8],
        [4, 0, 8, 8],
        [0, 4, 4, 8],
        [2, 0, 4, 4],
        [0, 2, 2, 4],
        [1, 0, 2, 2],
        [0, 1, 1, 2],
      ]
    : [[0, 0, 1, 1]];
  const rows: number[] = [];
  for (const [xs, ys, dx, dy] of passes) {
    for (let y = ys; y < height; y += dy) {
      if (xs >= width) break;
      rows.push(0); // filter type None
      let acc = 0,
        nbits = 0;
      for (let x = xs; x < width; x += dx) {
        for (let c = 0; c < channels; c++) {
          const v = value(x, y, c);
          if (bitDepth === 16) rows.push(v >> 8, v & 255);
          else if (bitDepth === 8) rows.push(v);
          else {
            acc = (acc << bitDepth) | v;
            nbits += bitDepth;
            if (nbits === 8) {
              rows.push(acc);
              acc = 0;
              nbits = 0;
            }
          }
        }
      }
      if (nbits) rows.push(acc << (8 - nbits));
    }
  }
  const chunk = (type: string, data: Uint8Array) => {
    const out = new Uint8Array(12 + data.length);
    const dv = new DataView(out.buffer);
    dv.setUint32(0, data.length);
    out.set(new TextEncoder().encode(type), 4);
    out.set(data, 8);
    dv.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
    return out;
  };
  const ihdr = new Uint8Array(13);
  new DataView(ihdr.buffer).setUint32(0, width);
  new DataView(ihdr.buffer).setUint32(4, height);
  ihdr.set([bitDepth, colorType, 0, 0, interlace], 8);
  const parts = [
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.from(rows))),
    chunk('IEND', new Uint8Array(0)),
  ];
  return new Uint8Array(Buffer.concat(parts));
}

describe('tensorToImages', () => {
  it('maps [−1, 1] to round((x+1)·127.5), clamps, replicates gray, sets alpha 255', () => {
    const x = new Float32Array([-1, 1, 0, -0.5, 2, -3]); // (1, 1, 2, 3)
    const { images, nonFinite } = tensorToImages(x, [1, 1, 2, 3]);
    expect(nonFinite).toBe(0);
    const bytes = [0, 255, 128, 64, 255, 0]; // 127.5 → 128, 63.75 → 64
    expect(Array.from(images[0].data)).toEqual(bytes.flatMap((b) => [b, b, b, 255]));
  });

  it('reads channels planar (N, C, H, W) into interleaved RGBA', () => {
    const x = new Float32Array([-1, 1, /* G */ 1, -1, /* B */ 0, 0]); // (1, 3, 1, 2)
    const [im] = tensorToImages(x, [1, 3, 1, 2]).images;
    expect(Array.from(im.data)).toEqual([0, 255, 128, 255, 255, 0, 128, 255]);
  });

  it('a NaN or Inf is an error naming the image and pixel, or clamped and counted on request', () => {
    const x = new Float32Array(2 * 4).fill(0); // (2, 1, 2, 2)
    x[4 + 3] = NaN;
    expect(() => tensorToImages(x, [2, 1, 2, 2])).toThrow(/image 1, pixel \(x 1, y 1\), channel 0 is NaN/);
    x[0] = Infinity;
    const r = tensorToImages(x, [2, 1, 2, 2], { nonFinite: 'clamp' });
    expect(r.nonFinite).toBe(2);
    expect(r.images[0].data[0]).toBe(255);
    expect(r.images[1].data[12]).toBe(0);
  });

  it('rejects shapes that are not (N, 1|3, H, W)', () => {
    expect(codeOf(() => tensorToImages(new Float32Array(8), [1, 2, 2, 2]))).toBe('SHAPE_MISMATCH');
    expect(codeOf(() => tensorToImages(new Float32Array(7), [1, 1, 2, 4]))).toBe('SHAPE_MISMATCH');
  });
});

describe('imageGrid', () => {
  const solid = (v: number, w = 2, h = 3): RgbaImage => ({
    width: w,
    height: h,
    data: new Uint8ClampedArray(4 * w * h).fill(v),
  });

  it('places image i at column i % cols, row ⌊i / cols⌋ with padding between and around', () => {
    const g = imageGrid([solid(10), solid(20), solid(30)], 2, 1, 5);
    expect([g.width, g.height]).toEqual([2 * 2 + 3, 2 * 3 + 3]);
    const at = (x: number, y: number) => g.data[4 * (y * g.width + x)];
    expect(at(0, 0)).toBe(5); // border
    expect(at(1, 1)).toBe(10); // image 0 top-left
    expect(at(3, 1)).toBe(5); // gap between columns
    expect(at(4, 1)).toBe(20); // image 1
    expect(at(1, 5)).toBe(30); // image 2, second row
    expect(at(4, 5)).toBe(5); // empty cell
    expect(g.data[4 * 5 + 3]).toBe(255);
  });

  it('refuses images of different sizes', () => {
    expect(codeOf(() => imageGrid([solid(1), solid(1, 3, 3)], 2))).toBe('SHAPE_MISMATCH');
  });
});

describe('encodePng / decodePng', () => {
  const rgba = (w: number, h: number, seed: number, gray = false) => {
    const d = new Uint8ClampedArray(4 * w * h);
    let s = seed;
    for (let i = 0; i < w * h; i++) {
      for (let k = 0; k < 3; k++) d[4 * i + k] = gray && k > 0 ? d[4 * i] : (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
      d[4 * i + 3] = 255;
    }
    return { width: w, height: h, data: d };
  };

  it('round-trips RGB and gray images exactly, choosing the color type', () => {
    for (const [im, type] of [
      [rgba(7, 5, 1), 2],
      [rgba(3, 9, 2, true), 0],
    ] as const) {
      const bytes = encodePng(im);
      expect(readPngHeader(bytes, 'x.png').colorType).toBe(type);
      // decoded by pngjs directly, not by our decoder
      expect(Buffer.compare(pngjs.PNG.sync.read(Buffer.from(bytes)).data, Buffer.from(im.data))).toBe(0);
      expect(Array.from(decodePng(bytes, 'x.png').data)).toEqual(Array.from(im.data));
    }
  });

  it('keeps alpha when it is not opaque', () => {
    const im = rgba(4, 4, 3);
    im.data[7] = 17;
    const bytes = encodePng(im);
    expect(readPngHeader(bytes, 'a.png').colorType).toBe(6);
    expect(decodePng(bytes, 'a.png').data[7]).toBe(17);
  });

  it('is deterministic: the same image gives the same bytes', () => {
    const a = encodePng(rgba(16, 16, 4));
    const b = encodePng({ ...rgba(16, 16, 4) });
    expect(Buffer.compare(Buffer.from(a), Buffer.from(b))).toBe(0);
  });

  it('decodes 16-bit and gray files written by other encoders to 8-bit RGBA', () => {
    const im = rgba(5, 3, 5);
    const d16 = decodePng(pngjsBytes(5, 3, im.data as unknown as Uint8Array, 6, 16), 'deep.png');
    expect(Array.from(d16.data)).toEqual(Array.from(im.data));
    const g = rgba(5, 3, 6, true);
    const d0 = decodePng(pngjsBytes(5, 3, g.data as unknown as Uint8Array, 0), 'gray.png');
    expect(d0.header.colorType).toBe(0);
    expect(Array.from(d0.data)).toEqual(Array.from(g.data));
  });

  it('decodes interlaced and low-bit-depth files (written by a plain reference encoder)', () => {
    for (const [w, h] of [
      [13, 7],
      [1, 1],
      [9, 3],
      [5, 11],
    ]) {
      const rgb = (x: number, y: number, c: number) => (x * 37 + y * 11 + c * 101) % 256;
      for (const interlace of [0, 1] as const) {
        const d = decodePng(rawPng(w, h, 2, 8, interlace, rgb), 'rgb.png');
        for (let y = 0; y < h; y++)
          for (let x = 0; x < w; x++)
            for (let c = 0; c < 3; c++) expect(d.data[4 * (y * w + x) + c]).toBe(rgb(x, y, c));
        const wide = decodePng(
          rawPng(w, h, 6, 16, interlace, (x, y, c) => (c === 3 ? 65535 : 257 * rgb(x, y, c))),
          'rgba16.png',
        );
        expect(wide.data[4 * (w * h - 1) + 2]).toBe(rgb(w - 1, h - 1, 2));
        const bit = decodePng(
          rawPng(w, h, 0, 1, interlace, (x, y) => (x + y) % 2),
          'bit.png',
        );
        for (let y = 0; y < h; y++)
          for (let x = 0; x < w; x++) expect(bit.data[4 * (y * w + x)]).toBe((x + y) % 2 ? 255 : 0);
      }
    }
  });

  it('reports a bad signature, a truncated file, a bad CRC and an unsupported header, naming the file', () => {
    const good = encodePng(rgba(8, 8, 7));
    expect(() => decodePng(new TextEncoder().encode('hello world, not a png'), 'f.png')).toThrow(
      /^f\.png: not a PNG file/,
    );
    expect(() => decodePng(good.slice(0, 20), 'f.png')).toThrow(/^f\.png: truncated \(20 bytes/);
    expect(() => decodePng(good.slice(0, good.length - 20), 'f.png')).toThrow(
      /^f\.png: truncated: chunk 'IDAT' at byte 33/,
    );
    expect(() => decodePng(good.slice(0, good.length - 12), 'f.png')).toThrow(
      /^f\.png: truncated at byte \d+ \(no IEND/,
    );
    const crc = good.slice();
    crc[Buffer.from(crc).indexOf('IDAT') + 6] ^= 0xff; // inside the IDAT data
    expect(() => decodePng(crc, 'f.png')).toThrow(/^f\.png: CRC mismatch in chunk 'IDAT' at byte 33/);
    // a valid container around bad compressed data: pngjs's inflate error, named
    const idat = Buffer.from(good).indexOf('IDAT');
    const junk = good.slice();
    const jv = new DataView(junk.buffer);
    const len = jv.getUint32(idat - 4);
    junk.fill(0x55, idat + 4, idat + 4 + len);
    jv.setUint32(idat + 4 + len, crc32(junk.subarray(idat, idat + 4 + len)));
    expect(() => decodePng(junk, 'f.png')).toThrow(/^f\.png: bad compressed image data/);
    const depth = good.slice();
    depth[24] = 3; // bit depth 3 does not exist; fix the IHDR CRC so the field itself is what fails
    new DataView(depth.buffer).setUint32(29, crc32(depth.subarray(12, 29)));
    expect(() => decodePng(depth, 'f.png')).toThrow(/^f\.png: unsupported color type 2 with bit depth 3/);
    // a header that promises more rows than the data holds
    const tall = good.slice();
    new DataView(tall.buffer).setUint32(20, 9);
    new DataView(tall.buffer).setUint32(29, crc32(tall.subarray(12, 29)));
    expect(() => decodePng(tall, 'f.png')).toThrow(
      /^f\.png: the image data inflates to 200 bytes, a 8×9 image \(color type 2, 8-bit\) needs 225/,
    );
  });

  it('checks declared dimensions before decoding', () => {
    const huge = encodePng(rgba(2, 2, 8)).slice();
    const dv = new DataView(huge.buffer);
    dv.setUint32(16, 100_000);
    dv.setUint32(20, 100_000);
    dv.setUint32(29, crc32(huge.subarray(12, 29)));
    expect(() => decodePng(huge, 'big.png')).toThrow(
      /^big\.png: declared size 100000×100000 exceeds the limit of 4096/,
    );
    dv.setUint32(16, 4096);
    dv.setUint32(20, 4096 + 0);
    dv.setUint32(29, crc32(huge.subarray(12, 29)));
    expect(() => decodePng(huge, 'big.png', { maxSide: 4096, maxPixels: 2 ** 20, maxFileBytes: 2 ** 26 })).toThrow(
      /16777216 pixels, limit 1048576/,
    );
    expect(() => decodePng(huge, 'big.png', { maxSide: 4096, maxPixels: 2 ** 24, maxFileBytes: 10 })).toThrow(
      /exceeds the limit of 10/,
    );
  });
});
