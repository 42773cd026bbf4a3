// PNG files in (datasets, Node, Deno, Bun): the IHDR header read by hand so a file's declared size can be
// checked before anything is inflated (libpng's user limits do the same), then pngjs's synchronous
// decoder. Images out (tensorToImages, imageGrid, toPng) are image.ts, safe in every runtime; they are
// re-exported here for existing imports.
import { inflateSync } from 'node:zlib';
import pngjs from 'pngjs';
import { DdpmError } from '../errors.js';
import { crc32, toPng, type RgbaImage } from './image.js';

export {
  tensorToImages,
  imageGrid,
  scaleImage,
  toPng,
  crc32,
  type RgbaImage,
  type ToImagesOptions,
  type GridOptions,
  type ToPngOptions,
} from './image.js';

/** PNG bytes of one image: toPng (image.ts, fflate's deflate, every runtime). */
export function encodePng(image: RgbaImage): Uint8Array {
  return toPng(image);
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

/** Reads and checks the signature and the IHDR chunk (first 33 bytes), without decoding anything. */
export function readPngHeader(bytes: Uint8Array, file: string): PngHeader {
  if (bytes.length < 8 || SIGNATURE.some((b, i) => bytes[i] !== b))
    throw new DdpmError('FORMAT', `${file}: not a PNG file (bad signature)`);
  if (bytes.length < 33)
    throw new DdpmError('FORMAT', `${file}: truncated (${bytes.length} bytes; the PNG header needs 33)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const type = String.fromCharCode(...bytes.subarray(12, 16));
  if (dv.getUint32(8) !== 13 || type !== 'IHDR')
    throw new DdpmError(
      'FORMAT',
      `${file}: the first chunk must be a 13-byte IHDR, found ${dv.getUint32(8)}-byte '${type}'`,
    );
  const crc = crc32(bytes.subarray(12, 29));
  if (crc !== dv.getUint32(29))
    throw new DdpmError(
      'FORMAT',
      `${file}: IHDR CRC mismatch (stored ${dv.getUint32(29).toString(16)}, computed ${crc.toString(16)})`,
    );
  const h: PngHeader = {
    width: dv.getUint32(16),
    height: dv.getUint32(20),
    bitDepth: bytes[24],
    colorType: bytes[25],
    interlace: bytes[28],
  };
  if (h.width === 0 || h.height === 0) throw new DdpmError('FORMAT', `${file}: zero size ${h.width}×${h.height}`);
  if (!DEPTHS[h.colorType]?.includes(h.bitDepth))
    throw new DdpmError('FORMAT', `${file}: unsupported color type ${h.colorType} with bit depth ${h.bitDepth}`);
  if (bytes[26] !== 0 || bytes[27] !== 0 || h.interlace > 1)
    throw new DdpmError(
      'FORMAT',
      `${file}: unsupported compression/filter/interlace method ${bytes[26]}/${bytes[27]}/${h.interlace}`,
    );
  return h;
}

/** Throws FORMAT when the declared size exceeds the limits. */
export function checkPngLimits(h: PngHeader, file: string, limits: PngLimits = PNG_LIMITS): void {
  if (h.width > limits.maxSide || h.height > limits.maxSide)
    throw new DdpmError(
      'FORMAT',
      `${file}: declared size ${h.width}×${h.height} exceeds the limit of ${limits.maxSide} per side`,
    );
  if (h.width * h.height > limits.maxPixels)
    throw new DdpmError(
      'FORMAT',
      `${file}: declared size ${h.width}×${h.height} has ${h.width * h.height} pixels, limit ${limits.maxPixels}`,
    );
}

const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
/** Adam7 passes: x start, y start, x step, y step. */
const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
];

/** Bytes of filtered scanlines (a filter byte per row) the image's IDAT data must inflate to. */
function scanlineBytes(h: PngHeader): number {
  const bits = CHANNELS[h.colorType] * h.bitDepth;
  const rows = (w: number, hh: number) => (w > 0 && hh > 0 ? hh * (1 + Math.ceil((w * bits) / 8)) : 0);
  if (h.interlace === 0) return rows(h.width, h.height);
  return ADAM7.reduce(
    (sum, [xs, ys, dx, dy]) => sum + rows(Math.ceil((h.width - xs) / dx), Math.ceil((h.height - ys) / dy)),
    0,
  );
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
    if (at + 12 > bytes.length)
      throw new DdpmError('FORMAT', `${file}: truncated at byte ${bytes.length} (no IEND chunk)`);
    const length = dv.getUint32(at);
    const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    const end = at + 12 + length;
    if (length > 2 ** 31 - 1 || end > bytes.length)
      throw new DdpmError(
        'FORMAT',
        `${file}: truncated: chunk '${type}' at byte ${at} needs ${length + 12} bytes, ${bytes.length - at} left`,
      );
    const crc = crc32(bytes.subarray(at + 4, at + 8 + length));
    if (crc !== dv.getUint32(at + 8 + length))
      throw new DdpmError(
        'FORMAT',
        `${file}: CRC mismatch in chunk '${type}' at byte ${at} (stored ${dv.getUint32(at + 8 + length).toString(16)}, computed ${crc.toString(16)})`,
      );
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
    throw new DdpmError(
      'FORMAT',
      `${file}: the image data inflates to ${inflated.length} bytes, a ${header.width}×${header.height} image (color type ${header.colorType}, ${header.bitDepth}-bit${header.interlace ? ', interlaced' : ''}) needs ${want}`,
    );
  }
}

/**
 * Decodes PNG bytes to RGBA (any bit depth, palette, gray or interlaced image; 16-bit channels are scaled
 * to 8). The header is checked against `limits` first, then the chunks and the compressed data
 * (checkPngData); a truncated file, a bad CRC or bad compressed data is a FORMAT error naming `file`.
 */
export function decodePng(
  bytes: Uint8Array,
  file: string,
  limits: PngLimits = PNG_LIMITS,
): RgbaImage & { header: PngHeader } {
  if (bytes.length > limits.maxFileBytes)
    throw new DdpmError('FORMAT', `${file}: ${bytes.length} bytes exceeds the limit of ${limits.maxFileBytes}`);
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
    throw new DdpmError(
      'FORMAT',
      `${file}: decoded ${png.width}×${png.height} (${png.data.length} bytes) does not match its header ${header.width}×${header.height}`,
    );
  }
  return {
    width: png.width,
    height: png.height,
    data: new Uint8ClampedArray(png.data.buffer, png.data.byteOffset, png.data.length),
    header,
  };
}
