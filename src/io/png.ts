// Images in and out: tensors in [−1, 1] ↔ 8-bit RGBA images (the shape of the DOM's ImageData), PNG
// bytes through pngjs's synchronous API, and the IHDR header read by hand so a file's declared size can be
// checked before anything is inflated (libpng's user limits do the same).
import { inflateSync } from 'node:zlib';
import pngjs from 'pngjs';
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
export function tensorToImages(x: Float32Array, shape: readonly number[], o: ToImagesOptions = {}): { images: RgbaImage[]; nonFinite: number } {
  if (shape.length !== 4 || shape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new DdpmError('SHAPE_MISMATCH', `tensorToImages: shape must be (N, C, H, W) with positive sizes, found [${shape}]`);
  }
  const [N, C, H, W] = shape;
  if (C !== 1 && C !== 3) throw new DdpmError('SHAPE_MISMATCH', `tensorToImages: C must be 1 (gray) or 3 (RGB), found ${C}`);
  if (x.length !== N * C * H * W) throw new DdpmError('SHAPE_MISMATCH', `tensorToImages: ${x.length} values for shape [${shape}] (${N * C * H * W})`);
  const policy = o.nonFinite ?? 'error';
  if (policy !== 'error' && policy !== 'clamp') throw new DdpmError('INVALID_ARGUMENT', `tensorToImages: nonFinite must be 'error' or 'clamp', found ${String(policy)}`);
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
            throw new DdpmError('NON_FINITE', `image ${n}, pixel (x ${p % W}, y ${Math.floor(p / W)}), channel ${c} is ${v}; a non-finite value is not written as a pixel`);
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

/**
 * Lays images of one size out in rows of `cols`, with `padding` pixels of `background` (gray level,
 * opaque) between them and around the border: width cols·w + (cols + 1)·padding.
 */
export function imageGrid(images: readonly RgbaImage[], cols: number, padding = 2, background = 0): RgbaImage {
  if (images.length === 0) throw new DdpmError('INVALID_ARGUMENT', 'imageGrid: no images');
  if (!Number.isInteger(cols) || cols < 1) throw new DdpmError('INVALID_ARGUMENT', `imageGrid: cols must be an integer >= 1, found ${cols}`);
  if (!Number.isInteger(padding) || padding < 0) throw new DdpmError('INVALID_ARGUMENT', `imageGrid: padding must be an integer >= 0, found ${padding}`);
  const { width: w, height: h } = images[0];
  images.forEach((im, i) => {
    if (im.width !== w || im.height !== h) throw new DdpmError('SHAPE_MISMATCH', `imageGrid: image ${i} is ${im.width}×${im.height}, image 0 is ${w}×${h}`);
  });
  const c = Math.min(cols, images.length);
  const rows = Math.ceil(images.length / c);
  const width = c * w + (c + 1) * padding;
  const height = rows * h + (rows + 1) * padding;
  const data = new Uint8ClampedArray(4 * width * height); // (height, width, 4)
  data.fill(background);
  for (let i = 3; i < data.length; i += 4) data[i] = 255;
  images.forEach((im, i) => {
    const x0 = padding + (i % c) * (w + padding);
    const y0 = padding + Math.floor(i / c) * (h + padding);
    for (let y = 0; y < h; y++) data.set(im.data.subarray(4 * y * w, 4 * (y + 1) * w), 4 * ((y0 + y) * width + x0));
  });
  return { width, height, data };
}

/**
 * PNG bytes of an image: gray (color type 0) when every pixel has R = G = B and alpha 255, RGB (2) when
 * only alpha is constant 255, RGBA (6) otherwise. Fixed filter and deflate settings: the same image gives
 * the same bytes.
 */
export function encodePng(image: RgbaImage): Uint8Array {
  const { width, height, data } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || data.length !== 4 * width * height) {
    throw new DdpmError('SHAPE_MISMATCH', `encodePng: a ${width}×${height} RGBA image needs ${4 * width * height} bytes, found ${data.length}`);
  }
  let gray = true, opaque = true;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i + 3] !== 255) opaque = false;
    if (data[i] !== data[i + 1] || data[i] !== data[i + 2]) gray = false;
  }
  const colorType = !opaque ? 6 : gray ? 0 : 2;
  const buf = Buffer.from(data.buffer, data.byteOffset, data.length);
  const bytes = pngjs.PNG.sync.write({ width, height, data: buf }, { colorType, inputColorType: 6, bitDepth: 8, deflateLevel: 9, filterType: -1 });
  return new Uint8Array(bytes); // a copy: small Buffers are views into Node's shared pool
}

export interface PngHeader {
  width: number;
  height: number;
  bitDepth: number;
  /** 0 gray, 2 RGB, 3 palette, 4 gray + alpha, 6 RGBA. */
  colorType: number;
  interlace: number;
}

/** libpng-style limits checked on the header, before anything is decoded. */
export interface PngLimits {
  maxSide: number;
  maxPixels: number;
  maxFileBytes: number;
}

export const PNG_LIMITS: PngLimits = { maxSide: 4096, maxPixels: 16 * 2 ** 20, maxFileBytes: 64 * 2 ** 20 };

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
/** Bit depths allowed for each color type (PNG spec, table 11.1). */
const DEPTHS: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };

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

/** Reads and checks the signature and the IHDR chunk (first 33 bytes), without decoding anything. */
export function readPngHeader(bytes: Uint8Array, file: string): PngHeader {
  if (bytes.length < 8 || SIGNATURE.some((b, i) => bytes[i] !== b)) throw new DdpmError('FORMAT', `${file}: not a PNG file (bad signature)`);
  if (bytes.length < 33) throw new DdpmError('FORMAT', `${file}: truncated (${bytes.length} bytes; the PNG header needs 33)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const type = String.fromCharCode(...bytes.subarray(12, 16));
  if (dv.getUint32(8) !== 13 || type !== 'IHDR') throw new DdpmError('FORMAT', `${file}: the first chunk must be a 13-byte IHDR, found ${dv.getUint32(8)}-byte '${type}'`);
  const crc = crc32(bytes.subarray(12, 29));
  if (crc !== dv.getUint32(29)) throw new DdpmError('FORMAT', `${file}: IHDR CRC mismatch (stored ${dv.getUint32(29).toString(16)}, computed ${crc.toString(16)})`);
  const h: PngHeader = { width: dv.getUint32(16), height: dv.getUint32(20), bitDepth: bytes[24], colorType: bytes[25], interlace: bytes[28] };
  if (h.width === 0 || h.height === 0) throw new DdpmError('FORMAT', `${file}: zero size ${h.width}×${h.height}`);
  if (!DEPTHS[h.colorType]?.includes(h.bitDepth)) throw new DdpmError('FORMAT', `${file}: unsupported color type ${h.colorType} with bit depth ${h.bitDepth}`);
  if (bytes[26] !== 0 || bytes[27] !== 0 || h.interlace > 1) throw new DdpmError('FORMAT', `${file}: unsupported compression/filter/interlace method ${bytes[26]}/${bytes[27]}/${h.interlace}`);
  return h;
}

/** Throws FORMAT when the declared size exceeds the limits. */
export function checkPngLimits(h: PngHeader, file: string, limits: PngLimits = PNG_LIMITS): void {
  if (h.width > limits.maxSide || h.height > limits.maxSide) throw new DdpmError('FORMAT', `${file}: declared size ${h.width}×${h.height} exceeds the limit of ${limits.maxSide} per side`);
  if (h.width * h.height > limits.maxPixels) throw new DdpmError('FORMAT', `${file}: declared size ${h.width}×${h.height} has ${h.width * h.height} pixels, limit ${limits.maxPixels}`);
}

const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
/** Adam7 passes: x start, y start, x step, y step. */
const ADAM7 = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]];

/** Bytes of filtered scanlines (a filter byte per row) the image's IDAT data must inflate to. */
function scanlineBytes(h: PngHeader): number {
  const bits = CHANNELS[h.colorType] * h.bitDepth;
  const rows = (w: number, hh: number) => (w > 0 && hh > 0 ? hh * (1 + Math.ceil((w * bits) / 8)) : 0);
  if (h.interlace === 0) return rows(h.width, h.height);
  return ADAM7.reduce((sum, [xs, ys, dx, dy]) => sum + rows(Math.ceil((h.width - xs) / dx), Math.ceil((h.height - ys) / dy)), 0);
}

/**
 * Checks the chunks after the header — each inside the file and matching its CRC, up to IEND — and that
 * the IDAT data inflates to exactly the image's scanlines. pngjs checks CRCs too, but its synchronous
 * reader then reports only "unrecognised content at end of stream", and it decodes a corrupt deflate
 * stream to black pixels without complaint.
 */
export function checkPngData(bytes: Uint8Array, header: PngHeader, file: string): void {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const idat: Uint8Array[] = [];
  let at = 8;
  for (;;) {
    if (at + 12 > bytes.length) throw new DdpmError('FORMAT', `${file}: truncated at byte ${bytes.length} (no IEND chunk)`);
    const length = dv.getUint32(at);
    const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    const end = at + 12 + length;
    if (length > 2 ** 31 - 1 || end > bytes.length) throw new DdpmError('FORMAT', `${file}: truncated: chunk '${type}' at byte ${at} needs ${length + 12} bytes, ${bytes.length - at} left`);
    const crc = crc32(bytes.subarray(at + 4, at + 8 + length));
    if (crc !== dv.getUint32(at + 8 + length)) throw new DdpmError('FORMAT', `${file}: CRC mismatch in chunk '${type}' at byte ${at} (stored ${dv.getUint32(at + 8 + length).toString(16)}, computed ${crc.toString(16)})`);
    if (type === 'IDAT') idat.push(bytes.subarray(at + 8, at + 8 + length));
    if (type === 'IEND') break;
    at = end;
  }
  if (idat.length === 0) throw new DdpmError('FORMAT', `${file}: no IDAT (image data) chunk`);
  const want = scanlineBytes(header);
  let inflated: Uint8Array;
  try {
    // maxOutputLength: a stream that inflates past the image's size is refused without being expanded
    inflated = inflateSync(Buffer.concat(idat), { maxOutputLength: want + 1 });
  } catch (e) {
    throw new DdpmError('FORMAT', `${file}: bad compressed image data (${(e as Error).message})`, { cause: e });
  }
  if (inflated.length !== want) {
    throw new DdpmError('FORMAT', `${file}: the image data inflates to ${inflated.length} bytes, a ${header.width}×${header.height} image (color type ${header.colorType}, ${header.bitDepth}-bit${header.interlace ? ', interlaced' : ''}) needs ${want}`);
  }
}

/**
 * Decodes PNG bytes to RGBA (any bit depth, palette, gray or interlaced image; 16-bit channels are scaled
 * to 8). The header is checked against `limits` first, then the chunks and the compressed data
 * (checkPngData); a truncated file, a bad CRC or bad compressed data is a FORMAT error naming `file`.
 */
export function decodePng(bytes: Uint8Array, file: string, limits: PngLimits = PNG_LIMITS): RgbaImage & { header: PngHeader } {
  if (bytes.length > limits.maxFileBytes) throw new DdpmError('FORMAT', `${file}: ${bytes.length} bytes exceeds the limit of ${limits.maxFileBytes}`);
  const header = readPngHeader(bytes, file);
  checkPngLimits(header, file, limits);
  checkPngData(bytes, header, file);
  let png;
  try {
    png = pngjs.PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length), { checkCRC: true });
  } catch (e) {
    throw new DdpmError('FORMAT', `${file}: cannot decode (${(e as Error).message})`, { cause: e });
  }
  if (png.width !== header.width || png.height !== header.height || png.data.length !== 4 * png.width * png.height) {
    throw new DdpmError('FORMAT', `${file}: decoded ${png.width}×${png.height} (${png.data.length} bytes) does not match its header ${header.width}×${header.height}`);
  }
  return { width: png.width, height: png.height, data: new Uint8ClampedArray(png.data.buffer, png.data.byteOffset, png.data.length), header };
}
