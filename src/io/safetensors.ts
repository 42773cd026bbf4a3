// safetensors (https://github.com/huggingface/safetensors) reader and writer, validating as the reference
// reader does (and as its Trail of Bits audit asked): nothing is allocated before the header length is
// checked; offsets must tile the data exactly; names are data (a Map), never object keys.
import { DdpmError } from '../errors.js';
import { show } from '../validate.js';

/** Largest header accepted, as in the reference reader. */
export const MAX_HEADER_BYTES = 100_000_000;

const DTYPE_BYTES: Record<string, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
};
/** Dtypes that load as float32 (F16 and BF16 are converted). */
const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16', 'F64']);

export interface SafeTensor {
  dtype: string; // as stored in the file
  shape: number[];
  data: Float32Array; // converted to float32, always a fresh (aligned) copy
}

export interface SafeTensorsFile {
  tensors: Map<string, SafeTensor>;
  metadata: Map<string, string>;
}

function fail(file: string, what: string): never {
  throw new DdpmError('FORMAT', `${file}: ${what}`);
}

/** Keys of the top-level JSON object in order, duplicates included (JSON.parse silently keeps the last). */
function topLevelKeys(text: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      if (depth === 1 && expectKey) {
        keys.push(JSON.parse(text.slice(i, j + 1)) as string);
        expectKey = false;
      }
      i = j;
    } else if (c === '{' || c === '[') {
      depth++;
      if (depth === 1 && c === '{') expectKey = true;
    } else if (c === '}' || c === ']') depth--;
    else if (c === ',' && depth === 1) expectKey = true;
  }
  return keys;
}

function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

function decode(dtype: string, bytes: Uint8Array, count: number): Float32Array {
  const out = new Float32Array(count);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case 'F32':
      // a copy through Uint8Array: the source may be unaligned inside the file
      new Uint8Array(out.buffer).set(bytes);
      break;
    case 'F64':
      for (let i = 0; i < count; i++) out[i] = dv.getFloat64(i * 8, true);
      break;
    case 'F16':
      for (let i = 0; i < count; i++) out[i] = f16ToF32(dv.getUint16(i * 2, true));
      break;
    case 'BF16': {
      const u = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) u[i] = dv.getUint16(i * 2, true) << 16;
      break;
    }
  }
  return out;
}

/**
 * Parses and validates a safetensors file; `file` names it in errors. Tensors come back as float32 (F16,
 * BF16 and F64 converted). An ArrayBuffer (what fetch's arrayBuffer() gives) is read as it is.
 */
export function readSafetensors(input: Uint8Array | ArrayBuffer, file = 'safetensors'): SafeTensorsFile {
  const bytes =
    input instanceof Uint8Array
      ? input
      : input instanceof ArrayBuffer
        ? new Uint8Array(input)
        : fail(file, `expected a Uint8Array or an ArrayBuffer, found ${input === null ? 'null' : typeof input}`);
  if (bytes.length < 8) fail(file, `${bytes.length} bytes is too short for a safetensors file (need at least 8)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = dv.getBigUint64(0, true);
  if (headerLen > BigInt(MAX_HEADER_BYTES))
    fail(file, `header length ${headerLen} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  if (headerLen > BigInt(bytes.length - 8))
    fail(file, `header length ${headerLen} exceeds the file (${bytes.length - 8} bytes after the length)`);
  const n = Number(headerLen);
  let text: string;
  let header: unknown;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n));
    header = JSON.parse(text);
  } catch (e) {
    fail(file, `header is not valid UTF-8 JSON: ${(e as Error).message}`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header))
    fail(file, 'header must be a JSON object');
  const keys = topLevelKeys(text);
  const seen = new Set<string>();
  for (const k of keys) {
    if (seen.has(k)) fail(file, `duplicate key "${k}" in the header`);
    seen.add(k);
  }

  const entries = Object.entries(header as Record<string, unknown>);
  const data = bytes.subarray(8 + n);
  const metadata = new Map<string, string>();
  const spans: { name: string; begin: number; end: number; dtype: string; shape: number[] }[] = [];
  for (const [name, value] of entries) {
    if (name === '__metadata__') {
      if (value === null || typeof value !== 'object' || Array.isArray(value))
        fail(file, '__metadata__ must be an object of strings');
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(file, `__metadata__ value of "${k}" must be a string, found ${typeof v}`);
        metadata.set(k, v);
      }
      continue;
    }
    const info = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (info === null || typeof info !== 'object') fail(file, `tensor ${name}: entry must be an object`);
    const dtype = info.dtype;
    // an own-property lookup: `in` would accept toString, constructor … from Object.prototype
    if (typeof dtype !== 'string' || !Object.hasOwn(DTYPE_BYTES, dtype))
      fail(file, `tensor ${name}: unknown dtype ${show(dtype)}`);
    const shape = info.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(file, `tensor ${name}: shape must be an array of non-negative integers, found ${show(shape)}`);
    }
    const off = info.data_offsets;
    if (
      !Array.isArray(off) ||
      off.length !== 2 ||
      !off.every((o) => Number.isSafeInteger(o) && o >= 0) ||
      off[1] < off[0]
    ) {
      fail(file, `tensor ${name}: data_offsets must be [begin, end] with 0 ≤ begin ≤ end, found ${show(off)}`);
    }
    const count = (shape as number[]).reduce((p, d) => p * d, 1);
    const want = count * DTYPE_BYTES[dtype];
    if (off[1] - off[0] !== want) {
      fail(file, `tensor ${name}: shape [${shape}] × ${dtype} is ${want} bytes, data_offsets span ${off[1] - off[0]}`);
    }
    if (off[1] > data.length)
      fail(file, `tensor ${name}: data_offsets end ${off[1]} is past the data (${data.length} bytes)`);
    spans.push({ name, begin: off[0], end: off[1], dtype, shape: shape as number[] });
  }

  // The spans must tile [0, data.length) exactly: no gaps, no overlaps, nothing left over.
  const sorted = [...spans].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  for (const s of sorted) {
    if (s.begin !== at) {
      fail(
        file,
        s.begin < at
          ? `tensor ${s.name} overlaps the previous tensor (begins at ${s.begin}, previous ends at ${at})`
          : `gap in the data before tensor ${s.name} (bytes ${at}…${s.begin})`,
      );
    }
    at = s.end;
  }
  if (at !== data.length) fail(file, `the tensors cover ${at} bytes of data but the file has ${data.length}`);

  const tensors = new Map<string, SafeTensor>();
  for (const s of spans) {
    if (!FLOAT_DTYPES.has(s.dtype))
      fail(file, `tensor ${s.name}: dtype ${s.dtype} is not a floating-point type (F32, F16, BF16, F64)`);
    const count = s.shape.reduce((p, d) => p * d, 1);
    tensors.set(s.name, {
      dtype: s.dtype,
      shape: s.shape,
      data: decode(s.dtype, data.subarray(s.begin, s.end), count),
    });
  }
  return { tensors, metadata };
}

/**
 * Serializes float32 tensors (in the given order) with optional string metadata. The header is padded
 * with spaces to a multiple of 8 bytes, as the reference writer does, so the data stays 8-byte aligned.
 */
export function writeSafetensors(
  tensors: Iterable<[string, { shape: readonly number[]; data: Float32Array }]>,
  metadata?: Record<string, string>,
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = { ...metadata };
  const list: Float32Array[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    if (name === '__metadata__' || Object.hasOwn(header, name)) {
      throw new DdpmError('INVALID_ARGUMENT', `writeSafetensors: tensor name "${name}" is reserved or repeated`);
    }
    const count = t.shape.reduce((p, d) => p * d, 1);
    if (count !== t.data.length) {
      throw new DdpmError(
        'SHAPE_MISMATCH',
        `writeSafetensors: tensor ${name} has shape [${t.shape}] (${count} values) but ${t.data.length} values`,
      );
    }
    Object.defineProperty(header, name, {
      value: { dtype: 'F32', shape: [...t.shape], data_offsets: [offset, offset + 4 * count] },
      enumerable: true,
    });
    offset += 4 * count;
    list.push(t.data);
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const d of list) {
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), at);
    at += d.byteLength;
  }
  return out;
}
