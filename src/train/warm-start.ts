// Warm start: a new training run begins from a trained model's weights instead of a seeded
// initialisation. Made for turning the unconditional models/mnist into the class-conditional
// models/mnist-cond: every weight is copied and the class embedding, which the source lacks, starts at 0 —
// the embedding is added to the timestep embedding, so the new model computes exactly the source's
// function for every label until training moves it (and the unconditional label's row stays near 0).

import { DdpmError } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import type { UNet2DModel } from '../nn/unet.js';
import { fnv1a } from './fnv.js';

/** Parameters a source may lack: they start at 0 (see above). */
const ZERO_IF_MISSING = new Set(['class_embedding.weight']);

const shape = (s: readonly number[]) => `[${s.join(', ')}]`;

/**
 * Copies `source`'s weights into `target` (same architecture; the class embedding may be missing from
 * the source). Every disagreement is listed in one INVALID_ARGUMENT error naming `label`, before anything
 * is written. Returns the source weights' hash.
 */
export function warmStart(engine: Engine, target: UNet2DModel, source: UNet2DModel, label: string): string {
  const from = new Map(source.params.specs.map((s) => [s.name, s.shape]));
  const problems: string[] = [];
  for (const s of target.params.specs) {
    const found = from.get(s.name);
    if (found === undefined) {
      if (!ZERO_IF_MISSING.has(s.name)) problems.push(`${s.name} ${shape(s.shape)} is missing`);
    } else if (shape(found) !== shape(s.shape))
      problems.push(`${s.name} is ${shape(found)} there, ${shape(s.shape)} in this model`);
    from.delete(s.name);
  }
  for (const [name, sh] of from) problems.push(`${name} ${shape(sh)} is not in this model`);
  if (problems.length)
    throw new DdpmError(
      'INVALID_ARGUMENT',
      `warm start from ${label}: its weights do not fit this model: ${problems.slice(0, 6).join('; ')}${problems.length > 6 ? ` (and ${problems.length - 6} more)` : ''}`,
    );
  const inSource = new Set(source.params.specs.map((s) => s.name));
  for (const s of target.params.specs) {
    const to = engine.view(target.params.get(s.name));
    if (inSource.has(s.name)) to.set(engine.view(source.params.get(s.name)));
    else to.fill(0);
  }
  // FNV-1a over the source's weights in state-dict order: run.json records which model it was
  return fnv1a(source.params.specs.map((p) => engine.view(source.params.get(p.name))));
}
