// Warm start: a new training run begins from a trained model's weights instead of a seeded
// initialisation. Made for turning the unconditional models/mnist into the class-conditional
// models/mnist-cond: every weight is copied and the class embedding, which the source lacks, keeps its
// seeded initialisation (N(0, 1), as diffusers' nn.Embedding). A zero start would make the new model
// compute exactly the source's function, but the class signal then grows only as fast as the optimizer
// moves the table: fine-tuned 6,000 steps at lr 2e-4 from zeros, models/mnist's digits followed the label
// 24% of the time at W = 2 (docs/conditional.md) — a random start gives every label a distinct offset of the
// timestep embedding from the first step, as a run from scratch has.

import { DdpmError } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import type { UNet2DModel } from '../nn/unet.js';
import { fnv1a } from './fnv.js';

/** Parameters a source may lack: they keep the target's seeded initialisation (see above). */
const MAY_BE_MISSING = new Set(['class_embedding.weight']);

const shape = (s: readonly number[]) => `[${s.join(', ')}]`;

/**
 * Copies `source`'s weights into `target` (same architecture; the class embedding may be missing from
 * the source and then stays as initialised). Every disagreement is listed in one INVALID_ARGUMENT error
 * naming `label`, before anything is written. Returns the source weights' hash.
 */
export function warmStart(engine: Engine, target: UNet2DModel, source: UNet2DModel, label: string): string {
  const from = new Map(source.params.specs.map((s) => [s.name, s.shape]));
  const problems: string[] = [];
  for (const s of target.params.specs) {
    const found = from.get(s.name);
    if (found === undefined) {
      if (!MAY_BE_MISSING.has(s.name)) problems.push(`${s.name} ${shape(s.shape)} is missing`);
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
  // every source tensor is in the target (checked above); what the source lacks keeps its initialisation
  for (const s of source.params.specs)
    engine.view(target.params.get(s.name)).set(engine.view(source.params.get(s.name)));
  // FNV-1a over the source's weights in state-dict order: run.json records which model it was
  return fnv1a(source.params.specs.map((p) => engine.view(source.params.get(p.name))));
}
