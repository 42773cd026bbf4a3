// A ParamBlock to and from named tensors (a safetensors state dict), shared by the MLP denoiser's weights
// and the training checkpoint (weights, EMA weights, optimizer moments all have the parameters' layout).
import { DdpmError } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import type { ParamBlock } from './params.js';
import type { SafeTensor } from '../io/safetensors.js';

/** The block's tensors in spec order, as copies: [name, { shape, data }]. */
export function blockTensors(engine: Engine, block: ParamBlock): [string, { shape: number[]; data: Float32Array }][] {
  return block.specs.map((s) => [s.name, { shape: s.shape, data: engine.read(block.get(s.name)) }]);
}

/** Index of the first non-finite value of the block, or −1. */
export function firstNonFinite(engine: Engine, block: ParamBlock): number {
  const v = engine.view(block.all);
  for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i])) return i;
  return -1;
}

/** The parameter holding flat element i of the block, for error messages. */
export function paramAt(block: ParamBlock, i: number): string {
  for (const s of block.specs) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    if (i < n) return `${s.name}[${i}]`;
    i -= n;
  }
  return `element ${i}`;
}

/**
 * Checks that `tensors` fit `block`: missing, unexpected and wrong-shaped tensors are all listed in one
 * FORMAT error naming `file`; with `requireFinite`, a NaN or infinite value is one too.
 */
export function checkBlockTensors(
  block: ParamBlock,
  tensors: Map<string, SafeTensor>,
  file: string,
  what: string,
  requireFinite = false,
): void {
  const missing: string[] = [];
  const unexpected: string[] = [];
  const wrong: string[] = [];
  for (const name of tensors.keys()) if (!block.has(name)) unexpected.push(name);
  for (const spec of block.specs) {
    const t = tensors.get(spec.name);
    if (!t) missing.push(spec.name);
    else if (t.shape.length !== spec.shape.length || t.shape.some((d, i) => d !== spec.shape[i])) {
      wrong.push(`${spec.name} (expected [${spec.shape}], found [${t.shape}])`);
    }
  }
  if (missing.length || unexpected.length || wrong.length) {
    const parts = [];
    if (missing.length) parts.push(`missing ${missing.length}: ${missing.join(', ')}`);
    if (unexpected.length) parts.push(`unexpected ${unexpected.length}: ${unexpected.join(', ')}`);
    if (wrong.length) parts.push(`wrong shape ${wrong.length}: ${wrong.join(', ')}`);
    throw new DdpmError('FORMAT', `${file}: the tensors do not fit ${what} — ${parts.join('; ')}`);
  }
  if (requireFinite) {
    for (const spec of block.specs) {
      const d = tensors.get(spec.name)!.data;
      const i = d.findIndex((x) => !Number.isFinite(x));
      if (i >= 0) throw new DdpmError('FORMAT', `${file}: tensor ${spec.name}[${i}] = ${d[i]} is not finite`);
    }
  }
}

/** Copies `tensors` into `block` after checkBlockTensors; nothing is written unless everything fits. */
export function loadBlock(
  engine: Engine,
  block: ParamBlock,
  tensors: Map<string, SafeTensor>,
  file: string,
  what: string,
  requireFinite = false,
): void {
  checkBlockTensors(block, tensors, file, what, requireFinite);
  for (const spec of block.specs) engine.write(block.get(spec.name), tensors.get(spec.name)!.data);
}
