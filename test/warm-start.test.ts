// Warm start (src/train/warm-start.ts): a class-conditional run that begins from an unconditional model's
// weights (the class embedding seeded) and records where it came from.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../src/engine/engine';
import { DdpmError } from '../src/errors';
import { UNet2DModel } from '../src/nn/unet';
import { TrainingRun, parseRunIdentity } from '../src/train/run';
import { DDPMScheduler } from '../src/diffusion/ddpm';
import { TINY_UNET } from './helpers/configs';

const root = mkdtempSync(join(tmpdir(), 'ddpm-warm-'));
let engine: Engine;
beforeAll(async () => {
  engine = await Engine.create({ threads: 1 });
});
afterAll(() => {
  engine.dispose();
  rmSync(root, { recursive: true, force: true });
});

const COND = { ...TINY_UNET, num_class_embeds: 11 };
const data = (n: number) => Float32Array.from({ length: n * 64 }, (_, i) => Math.sin(i * 0.37));
const labels = (n: number) => Array.from({ length: n }, (_, i) => i % 10);
const trainer = { batchSize: 4, learningRate: 1e-3, lrWarmupSteps: 0, labelDropout: 0.1, uncondLabel: 10, seed: 3 };
/** Starts `run` as a class-conditional tiny run warm-started from `source`. */
const startWarm = (run: TrainingRun, source: UNet2DModel, label: string) =>
  run.start(engine, {
    data: { samples: data(16), labels: labels(16) },
    dataLabel: 'sines',
    model: { class: 'UNet2DModel', config: COND },
    initSeed: 0,
    initFrom: { label, model: source },
    scheduler: new DDPMScheduler({ numTrainTimesteps: 100 }).toConfig(),
    trainer,
  });

describe('warm start', () => {
  it("starts a class-conditional run from an unconditional model's weights, the class embedding seeded", async () => {
    const source = UNet2DModel.create(engine, TINY_UNET, 7);
    const run = await TrainingRun.open(join(root, 'cond'));
    await startWarm(run, source, 'tiny-source');
    const model = run.trainer.model as UNet2DModel;
    const seeded = UNet2DModel.create(engine, COND, 0);
    const read = (m: UNet2DModel, name: string) => Array.from(engine.view(m.params.get(name)));
    for (const { name } of model.params.specs)
      expect(read(model, name), name).toEqual(read(name === 'class_embedding.weight' ? seeded : source, name));
    const table = read(model, 'class_embedding.weight');
    expect(table.some((v) => v !== 0)).toBe(true);

    // run.json names the source and the hash of its weights; training moves the class embedding
    const id = JSON.parse(readFileSync(join(root, 'cond', 'run.json'), 'utf8'));
    expect(id.init_from).toEqual({ model: 'tiny-source', weights_hash: expect.stringMatching(/^[0-9a-f]{8}$/) });
    await run.train({ until: 3, checkpointEvery: 3 });
    expect(read(model, 'class_embedding.weight')).not.toEqual(table);
    await run.close();

    // another source's weights hash differently
    const other = await TrainingRun.open(join(root, 'cond2'));
    await startWarm(other, UNet2DModel.create(engine, TINY_UNET, 8), 'tiny-source');
    expect(other.identity?.init_from?.weights_hash).not.toBe(id.init_from.weights_hash);
    await other.close();
  });

  it('refuses a source of another architecture, naming the tensors, before writing anything', async () => {
    const wide = UNet2DModel.create(engine, { ...TINY_UNET, block_out_channels: [8, 24] }, 0);
    const run = await TrainingRun.open(join(root, 'bad'));
    const e = await startWarm(run, wide, 'wide').catch((x: unknown) => x as DdpmError);
    expect(e).toBeInstanceOf(DdpmError);
    expect([(e as DdpmError).code, (e as DdpmError).message]).toEqual([
      'INVALID_ARGUMENT',
      expect.stringMatching(
        /^warm start from wide: its weights do not fit this model: .* is \[24, .*\] there, \[16, .*\] in this model/,
      ),
    ]);
    expect(run.identity).toBeNull();
    await run.close();
  });

  it('run.json: a malformed init_from is a FORMAT error naming the key', () => {
    const file = join(root, 'cond', 'run.json');
    const run = JSON.parse(readFileSync(file, 'utf8'));
    for (const bad of [null, 'models/mnist', { model: 'm' }, { model: 'm', weights_hash: 'xyz' }]) {
      const e = (() => {
        try {
          parseRunIdentity({ ...run, init_from: bad }, file);
        } catch (x) {
          return x as DdpmError;
        }
      })();
      expect([e?.code, e?.message]).toEqual(['FORMAT', expect.stringMatching(/init_from must be/)]);
    }
  });
});
