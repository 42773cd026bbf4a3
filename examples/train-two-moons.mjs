// Train the MLP denoiser on two moons with checkpoints, stop, resume from the latest checkpoint (as a new
// process would), and sample. Run: node examples/train-two-moons.mjs [steps] [runDir]
import { DDPMScheduler, Engine, SamplingChain, TrainingRun, twoMoons } from '../dist/index.js';

const steps = Number(process.argv[2] ?? 2000);
const dir = process.argv[3] ?? 'two-moons-run';
const engine = await Engine.create({ threads: 1 });
const data = twoMoons(4000, /* seed */ 1);
const scheduler = new DDPMScheduler({ numTrainTimesteps: 1000, betaSchedule: 'linear', clipSample: false }).toConfig();
/** @satisfies {import('../dist/index.js').TrainerOptions} */
const options = {
  batchSize: 128,
  learningRate: 3e-3,
  lrScheduler: 'cosine',
  lrWarmupSteps: 50,
  maxTrainSteps: steps,
  ema: { maxDecay: 0.995 },
  seed: 1,
};

// A TrainingRun owns the folder (a lock, run.json, checkpoints, loss.csv): resume if it holds a
// checkpoint, else start fresh; the run continues bit-identically either way.
async function open() {
  const run = await TrainingRun.open(dir);
  if (run.checkpoint) {
    await run.resume(engine, { data, dataLabel: 'two-moons' });
    console.log(`resumed at step ${run.trainer.step}`);
  } else {
    await run.start(engine, {
      data,
      dataLabel: 'two-moons',
      model: { class: 'MLPDenoiser', config: { data_dim: 2, hidden_dim: 64, num_blocks: 2 } },
      initSeed: 0,
      scheduler,
      trainer: options,
    });
  }
  return run;
}

// Train the first half, "crash" (close the run), and let a fresh run pick up the rest from the folder.
let run = await open();
await run.train({ until: Math.floor(steps / 2), checkpointEvery: 250 });
await run.close();
run = await open();
const r = await run.train({
  until: steps,
  checkpointEvery: 250,
  onProgress: (p) => p.step % 500 === 0 && console.log(`step ${p.step}: loss ${p.loss.toFixed(4)}`),
});
console.log(`trained to step ${r.step}; checkpoints in ${dir}/checkpoints, losses in ${dir}/loss.csv`);
const resumed = run.trainer;
await run.close();

// Sample 1000 points with 100 DDPM steps from the EMA weights.
const model = resumed.model;
if (!resumed.ema) throw new Error('the options above keep an EMA');
engine.view(model.params.all).set(engine.view(resumed.ema.all));
const chain = SamplingChain.start(engine, new DDPMScheduler({ clipSample: false }), {
  shape: [1000, 2],
  numInferenceSteps: 100,
  seed: 2,
});
const eps = engine.alloc([1000, 2], 'eps');
const x = engine.read(
  await chain.run(async (xt, t) => {
    engine.write(eps, await model.forward(engine.read(xt), t));
    return eps;
  }),
);
// twoMoons() centres and scales the moons (unit circles around (0, 0) and (1, 0.5)): undo that first
const onMoon = Array.from({ length: 1000 }, (_, i) => [0.7 * x[2 * i] + 0.5, 0.7 * x[2 * i + 1] + 0.25]).filter(
  ([u, v]) => Math.abs(Math.hypot(u, v) - 1) < 0.1 || Math.abs(Math.hypot(u - 1, v - 0.5) - 1) < 0.1,
).length;
console.log(`${onMoon / 10}% of 1000 samples lie within 0.1 of a moon's arc`);
engine.dispose();
