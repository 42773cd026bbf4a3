// A folder of PNG files as a training or evaluation set (Node, Deno, Bun).
//
// Every *.png file (by name, sorted by code point; other files are ignored) is read as follows: its size
// on disk and then its IHDR header are checked against the limits before anything is decoded; it is
// decoded to 8-bit RGBA (any PNG bit depth, palette, gray, interlaced); alpha is ignored. Channels: with
// `channels: 3` gray images are replicated to RGB; with `channels: 1` color images become gray by
// ITU-R BT.601 luma, round(0.299·R + 0.587·G + 0.114·B) (as PIL's convert('L')); by default C is 1 when
// every image is gray (R = G = B everywhere) and 3 otherwise. Values are byte/127.5 − 1, so they lie on
// the 256-level grid of [−1, 1] that the variational bound's decoder assumes.
import { DdpmError } from '../errors.js';
import { PNG_LIMITS, checkPngLimits, decodePng, readPngHeader, type PngLimits } from './png.js';
import { fsError, readRegularFile, readRegularFileHead } from './fs.js';
import { checkJsBudget } from '../limits.js';

export interface ImageFolderOptions {
  /** The model's channel count; default: 1 if every image is gray, else 3. */
  channels?: 1 | 3;
  /** Required size (the model's); default: the first readable image's. */
  size?: { width: number; height: number };
  /** A truncated, corrupt (bad CRC, bad data), over-limit or unsupported file: 'fail' (default) throws
   * naming it; 'skip' leaves it out and lists it in `skipped`. */
  policy?: 'skip' | 'fail';
  limits?: PngLimits;
  /** Bytes the decoded set may take outside Wasm memory; checked from the headers before decoding.
   * Default LIMITS.jsBytes (1 GiB). */
  maxBytes?: number;
}

export interface ImageFolder {
  /** (N, C, H, W) in [−1, 1]. */
  images: Float32Array;
  N: number;
  C: number;
  H: number;
  W: number;
  /** The files read, in order (image n came from files[n]). */
  files: string[];
  skipped: { file: string; reason: string }[];
}

export async function loadImageFolder(dir: string, o: ImageFolderOptions = {}): Promise<ImageFolder> {
  const fs = await import('node:fs/promises');
  const { join } = await import('node:path');
  const policy = o.policy ?? 'fail';
  if (policy !== 'skip' && policy !== 'fail')
    throw new DdpmError(
      'INVALID_ARGUMENT',
      `loadImageFolder: policy must be 'skip' or 'fail', found ${String(policy)}`,
    );
  if (o.channels !== undefined && o.channels !== 1 && o.channels !== 3)
    throw new DdpmError('INVALID_ARGUMENT', `loadImageFolder: channels must be 1 or 3, found ${o.channels}`);
  const limits = o.limits ?? PNG_LIMITS;
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (e) {
    const io = fsError(e, dir, 'reading');
    const why =
      (e as NodeJS.ErrnoException)?.code === 'ENOTDIR'
        ? 'it is a file, not a folder'
        : io.message.startsWith(dir)
          ? io.message.slice(dir.length + 2)
          : io.message;
    throw new DdpmError('IO', `${dir}: cannot read the image folder (${why})`, { cause: e });
  }
  names = names.filter((n) => n.toLowerCase().endsWith('.png')).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (names.length === 0) throw new DdpmError('FORMAT', `${dir}: the image folder holds no .png files`);

  let size = o.size ? { ...o.size } : null;
  const skipped: { file: string; reason: string }[] = [];
  const skip = (file: string, e: unknown) => {
    if (!(e instanceof DdpmError))
      e = new DdpmError('FORMAT', `${file}: cannot read (${(e as Error).message})`, { cause: e });
    if (policy === 'fail') throw e;
    const m = (e as DdpmError).message;
    skipped.push({ file, reason: m.startsWith(`${file}: `) ? m.slice(file.length + 2) : m });
  };

  // 1. Headers only: file sizes and IHDRs checked against the limits, image sizes against each other and
  //    the model, and the memory the decoded set will take computed — before anything is decoded. (Eight
  //    4096² PNGs of zeros, 708 KB, used to take 1.1 GB before the error their headers already implied.)
  const headerError = new Map<string, unknown>(); // reported in name order during step 2
  const readable: string[] = [];
  let first: string | null = null;
  for (const name of names) {
    const file = join(dir, name);
    try {
      const { head, size: bytes } = await readRegularFileHead(file, 33);
      if (bytes > limits.maxFileBytes)
        throw new DdpmError('FORMAT', `${file}: ${bytes} bytes exceeds the limit of ${limits.maxFileBytes}`);
      const h = readPngHeader(head, file);
      checkPngLimits(h, file, limits);
      // a size mismatch is the dataset's mistake, not a damaged file: an error under either policy
      size ??= { width: h.width, height: h.height };
      first ??= file;
      if (h.width !== size.width || h.height !== size.height) {
        throw new DdpmError(
          'SHAPE_MISMATCH',
          `${file}: ${h.width}×${h.height}, expected ${size.width}×${size.height} (${o.size ? 'the model' : `as ${first}`})`,
        );
      }
      readable.push(file);
    } catch (e) {
      if (e instanceof DdpmError && e.code === 'SHAPE_MISMATCH') throw e;
      headerError.set(file, e);
    }
  }
  if (size && readable.length > 0) {
    const HW = size.width * size.height;
    const C = o.channels ?? 3; // 3 until the pixels say gray
    // (3, H, W) bytes per image kept until the end, the (N, C, H, W) float32 result, one RGBA decode
    checkJsBudget(
      readable.length * (3 * HW + 4 * C * HW) + 4 * HW,
      `${dir}: ${readable.length} images of ${size.width}×${size.height}`,
      o.maxBytes,
    );
  }

  // 2. Decode, in name order.
  const rgb: Uint8Array[] = []; // each (3, H, W)
  const files: string[] = [];
  let allGray = true;
  for (const name of names) {
    const file = join(dir, name);
    if (headerError.has(file)) {
      skip(file, headerError.get(file));
      continue;
    }
    let img;
    try {
      img = decodePng(await readRegularFile(file, { maxBytes: limits.maxFileBytes }), file, limits);
      if (img.width !== size!.width || img.height !== size!.height)
        throw new DdpmError('FORMAT', `${file}: changed while being read`);
    } catch (e) {
      skip(file, e);
      continue;
    }
    const HW = img.width * img.height;
    const planes = new Uint8Array(3 * HW); // (3, H, W)
    for (let p = 0; p < HW; p++) {
      const r = img.data[4 * p],
        g = img.data[4 * p + 1],
        b = img.data[4 * p + 2];
      planes[p] = r;
      planes[HW + p] = g;
      planes[2 * HW + p] = b;
      if (r !== g || r !== b) allGray = false;
    }
    rgb.push(planes);
    files.push(file);
  }
  if (rgb.length === 0) {
    throw new DdpmError(
      'FORMAT',
      `${dir}: no readable PNG files (${skipped.length} skipped; first: ${skipped[0].file}: ${skipped[0].reason})`,
    );
  }
  const C = o.channels ?? (allGray ? 1 : 3);
  const { width: W, height: H } = size!;
  const HW = H * W;
  const N = rgb.length;
  const images = new Float32Array(N * C * HW); // (N, C, H, W)
  rgb.forEach((planes, n) => {
    const out = images.subarray(n * C * HW, (n + 1) * C * HW);
    if (C === 3) for (let i = 0; i < 3 * HW; i++) out[i] = planes[i] / 127.5 - 1;
    else
      for (let p = 0; p < HW; p++)
        out[p] = Math.round(0.299 * planes[p] + 0.587 * planes[HW + p] + 0.114 * planes[2 * HW + p]) / 127.5 - 1;
  });
  return { images, N, C, H, W, files, skipped };
}
