// Images out, in every runtime: tensors in [−1, 1] → 8-bit RGBA images (the shape of the DOM's ImageData),
// grids of them, and PNG bytes. No `node:` import and no pngjs: deflate is fflate's (pure JS), so this
// file works the same in Node, Deno, Bun, browsers and edge workers. (Decoding PNG datasets is png.ts,
// Node only.)
import { zlibSync } from 'fflate';
import { DdpmError } from '../errors.js';

/** An 8-bit RGBA image, row-major, 4 bytes per pixel: the layout of the DOM's ImageData. */
export interface RgbaImage {
  width: number;
  height: number;
  data: Uint8ClampedArray; // (height, width, 4)
}

export interface ToImagesOptions {
  /**
   * 'error' (default): a NaN or ±Inf is a NON_FINITE error naming the image and pixel. 'clamp': +Inf → 255,
   * −Inf and NaN → 0, and the count is returned.
   */
  nonFinite?: 'error' | 'clamp';
}

/**
 * x (N, C, H, W) in [−1, 1], C = 1 (gray, replicated to R, G, B) or 3 (RGB), to N RGBA images with alpha
 * 255: byte = round((x + 1)·127.5), clamped to [0, 255].
 */
export function tensorToImages(
  x: Float32Array,
  shape: readonly number[],
  o: ToImagesOptions = {},
): { images: RgbaImage[]; nonFinite: number } {
  if (shape.length !== 4 || shape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new DdpmError(
      'SHAPE_MISMATCH',
      `tensorToImages: shape must be (N, C, H, W) with positive sizes, found [${shape}]`,
    );
  }
  const [N, C, H, W] = shape;
  if (C !== 1 && C !== 3)
    throw new DdpmError('SHAPE_MISMATCH', `tensorToImages: C must be 1 (gray) or 3 (RGB), found ${C}`);
  if (x.length !== N * C * H * W)
    throw new DdpmError('SHAPE_MISMATCH', `tensorToImages: ${x.length} values for shape [${shape}] (${N * C * H * W})`);
  const policy = o.nonFinite ?? 'error';
  if (policy !== 'error' && policy !== 'clamp')
    throw new DdpmError(
      'INVALID_ARGUMENT',
      `tensorToImages: nonFinite must be 'error' or 'clamp', found ${String(policy)}`,
    );
  let nonFinite = 0;
  const images: RgbaImage[] = [];
  const HW = H * W;
  for (let n = 0; n < N; n++) {
    const data = new Uint8ClampedArray(4 * HW); // (H, W, 4)
    for (let p = 0; p < HW; p++) {
      for (let k = 0; k < 3; k++) {
        const c = C === 1 ? 0 : k;
        const v = x[(n * C + c) * HW + p];
        let byte: number;
        if (Number.isFinite(v)) byte = Math.round((v + 1) * 127.5);
        else {
          if (policy === 'error') {
            throw new DdpmError(
              'NON_FINITE',
              `image ${n}, pixel (x ${p % W}, y ${Math.floor(p / W)}), channel ${c} is ${v}; a non-finite value is not written as a pixel`,
            );
          }
          if (C === 1 ? k === 0 : true) nonFinite++;
          byte = v === Infinity ? 255 : 0;
        }
        data[4 * p + k] = byte; // Uint8ClampedArray clamps to [0, 255]
      }
      data[4 * p + 3] = 255;
    }
    images.push({ width: W, height: H, data });
  }
  return { images, nonFinite };
}

export interface GridOptions {
  /** Images per row. Default: ceil(√n), a square-ish grid. */
  cols?: number;
  /** Pixels between images and around the border. Default 2. */
  padding?: number;
  /** Gray level (opaque) of the padding. Default 0 (black). */
  background?: number;
}

/**
 * Lays images of one size out in rows of `cols`, with `padding` pixels of `background` (gray level,
 * opaque) between them and around the border: width cols·w + (cols + 1)·padding.
 * imageGrid(images, cols, padding, background) is the same call with positional arguments.
 */
export function imageGrid(
  images: readonly RgbaImage[],
  colsOrOptions: number | GridOptions = {},
  padding = 2,
  background = 0,
): RgbaImage {
  const o: GridOptions =
    typeof colsOrOptions === 'number' ? { cols: colsOrOptions, padding, background } : colsOrOptions;
  if (!Array.isArray(images) || images.length === 0) throw new DdpmError('INVALID_ARGUMENT', 'imageGrid: no images');
  const cols = o.cols ?? Math.ceil(Math.sqrt(images.length));
  const pad = o.padding ?? 2;
  const bg = o.background ?? 0;
  if (!Number.isInteger(cols) || cols < 1)
    throw new DdpmError('INVALID_ARGUMENT', `imageGrid: cols must be an integer >= 1, found ${cols}`);
  if (!Number.isInteger(pad) || pad < 0)
    throw new DdpmError('INVALID_ARGUMENT', `imageGrid: padding must be an integer >= 0, found ${pad}`);
  const { width: w, height: h } = images[0];
  images.forEach((im, i) => {
    if (im.width !== w || im.height !== h)
      throw new DdpmError('SHAPE_MISMATCH', `imageGrid: image ${i} is ${im.width}×${im.height}, image 0 is ${w}×${h}`);
  });
  const c = Math.min(cols, images.length);
  const rows = Math.ceil(images.length / c);
  const width = c * w + (c + 1) * pad;
  const height = rows * h + (rows + 1) * pad;
  const data = new Uint8ClampedArray(4 * width * height); // (height, width, 4)
  data.fill(bg);
  for (let i = 3; i < data.length; i += 4) data[i] = 255;
  images.forEach((im, i) => {
    const x0 = pad + (i % c) * (w + pad);
    const y0 = pad + Math.floor(i / c) * (h + pad);
    for (let y = 0; y < h; y++) data.set(im.data.subarray(4 * y * w, 4 * (y + 1) * w), 4 * ((y0 + y) * width + x0));
  });
  return { width, height, data };
}

/** Nearest-neighbour enlargement by an integer factor (28-pixel digits are small on a screen). */
export function scaleImage(image: RgbaImage, k: number): RgbaImage {
  if (!Number.isInteger(k) || k < 1 || k > 64)
    throw new DdpmError('INVALID_ARGUMENT', `scale must be an integer in [1, 64], found ${k}`);
  if (k === 1) return image;
  const { width: w, height: h, data: src } = image;
  const W = w * k;
  const data = new Uint8ClampedArray(4 * W * h * k);
  const src32 = new Uint32Array(src.buffer, src.byteOffset, w * h);
  const dst32 = new Uint32Array(data.buffer);
  for (let y = 0; y < h * k; y++) {
    const row = Math.floor(y / k) * w;
    for (let x = 0; x < W; x++) dst32[y * W + x] = src32[row + Math.floor(x / k)];
  }
  return { width: W, height: h * k, data };
}

export interface ToPngOptions {
  /** Several images: lay them out with imageGrid (true: ceil(√n) columns, or its options). Default true. */
  grid?: boolean | GridOptions;
  /** Integer nearest-neighbour enlargement, applied last. Default 1. */
  scale?: number;
}

/**
 * PNG bytes of an image, or of images laid out as a grid: gray (color type 0) when every pixel has
 * R = G = B and alpha 255, RGB (2) when only alpha is constant 255, RGBA (6) otherwise. Each row's filter
 * is the one of the five with the smallest sum of |bytes| (libpng's heuristic), deflate level 9: the same
 * image gives the same bytes in every runtime.
 */
export function toPng(images: RgbaImage | readonly RgbaImage[], o: ToPngOptions = {}): Uint8Array {
  let image: RgbaImage;
  if (Array.isArray(images)) {
    if (images.length === 0) throw new DdpmError('INVALID_ARGUMENT', 'toPng: no images');
    if (o.grid === false && images.length > 1)
      throw new DdpmError(
        'INVALID_ARGUMENT',
        `toPng: ${images.length} images with grid: false; pass one image or grid: true`,
      );
    image = images.length === 1 && !o.grid ? images[0] : imageGrid(images, typeof o.grid === 'object' ? o.grid : {});
  } else image = images as RgbaImage;
  return encodeRgba(scaleImage(image, o.scale ?? 1));
}

function encodeRgba(image: RgbaImage): Uint8Array {
  const { width, height, data } = image ?? ({} as RgbaImage);
  if (
    !Number.isInteger(width) ||
    !Number.isInteger(height) ||
    width < 1 ||
    height < 1 ||
    !data ||
    data.length !== 4 * width * height
  ) {
    throw new DdpmError(
      'SHAPE_MISMATCH',
      `toPng: a ${width}×${height} RGBA image needs ${4 * width * height} bytes, found ${data?.length}`,
    );
  }
  let gray = true,
    opaque = true;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i + 3] !== 255) opaque = false;
    if (data[i] !== data[i + 1] || data[i] !== data[i + 2]) gray = false;
  }
  const colorType = !opaque ? 6 : gray ? 0 : 2;
  const bpp = colorType === 6 ? 4 : colorType === 2 ? 3 : 1; // bytes per pixel
  const stride = width * bpp;
  // 1. the raw scanlines in the output's color type
  const raw = new Uint8Array(height * stride); // (height, width, bpp)
  for (let p = 0, j = 0; p < width * height; p++) {
    for (let k = 0; k < bpp; k++) raw[j++] = data[4 * p + k];
  }
  // 2. filter each row (PNG spec §9), a filter-type byte first
  const filtered = new Uint8Array(height * (1 + stride));
  const zero = new Uint8Array(stride);
  const candidate = new Uint8Array(stride);
  for (let y = 0; y < height; y++) {
    const row = raw.subarray(y * stride, (y + 1) * stride);
    const up = y > 0 ? raw.subarray((y - 1) * stride, y * stride) : zero;
    let best = -1,
      bestSum = Infinity;
    for (let f = 0; f < 5; f++) {
      filterRow(f, row, up, bpp, candidate);
      let sum = 0;
      for (let i = 0; i < stride; i++) sum += candidate[i] < 128 ? candidate[i] : 256 - candidate[i];
      if (sum < bestSum) {
        bestSum = sum;
        best = f;
      }
    }
    const at = y * (1 + stride);
    filtered[at] = best;
    filterRow(best, row, up, bpp, filtered.subarray(at + 1, at + 1 + stride));
  }
  // 3. chunks: IHDR, one IDAT (zlib stream), IEND
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, width);
  dv.setUint32(4, height);
  ihdr.set([8, colorType, 0, 0, 0], 8); // bit depth 8, deflate, adaptive filtering, no interlace
  const chunks = [
    chunk('IHDR', ihdr),
    chunk('IDAT', zlibSync(filtered, { level: 9 })),
    chunk('IEND', new Uint8Array(0)),
  ];
  const out = new Uint8Array(8 + chunks.reduce((n, c) => n + c.length, 0));
  out.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  let at = 8;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** PNG filter f (0 None, 1 Sub, 2 Up, 3 Average, 4 Paeth) of one row into `out`. */
function filterRow(f: number, row: Uint8Array, up: Uint8Array, bpp: number, out: Uint8Array): void {
  for (let i = 0; i < row.length; i++) {
    const a = i >= bpp ? row[i - bpp] : 0; // left
    const b = up[i]; // above
    const c = i >= bpp ? up[i - bpp] : 0; // above left
    let pred = 0;
    if (f === 1) pred = a;
    else if (f === 2) pred = b;
    else if (f === 3) pred = (a + b) >> 1;
    else if (f === 4) {
      const p = a + b - c;
      const pa = Math.abs(p - a),
        pb = Math.abs(p - b),
        pc = Math.abs(p - c);
      pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }
    out[i] = (row[i] - pred) & 0xff;
  }
}

function chunk(type: string, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + body.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, body.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(body, 8);
  dv.setUint32(8 + body.length, crc32(out.subarray(4, 8 + body.length)));
  return out;
}

let crcTable: Uint32Array | null = null;

/** CRC-32 (ISO 3309, as PNG chunks use). */
export function crc32(bytes: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = crcTable[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
