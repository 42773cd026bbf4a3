// Paired bound of two models (usage: node scripts/nll-paired.mjs MODEL_A MODEL_B [N=256] [K=20]): the same held-out
// MNIST digits, the same x_t noise and t draws (as 'ddpm nll --seed 0'), and the per-digit difference's standard error.
import { Engine } from '../dist/engine/engine.js';
import { DDPMScheduler } from '../dist/diffusion/ddpm.js';
import { variationalBound } from '../dist/diffusion/bound.js';
import { loadMnist } from '../dist/io/mnist.js';
import { loadModelFolder } from '../dist/cli/files.js';
const [a, b, nStr, kStr] = process.argv.slice(2);
const n = Number(nStr ?? 256),
  K = Number(kStr ?? 20);
const engine = await Engine.create({ threads: 1 });
const d = await loadMnist('test');
const D = 784;
const x0 = new Float32Array(n * D);
for (let k = 0; k < n; k++) {
  const i = Math.floor((k * d.N) / n);
  x0.set(d.images.subarray(i * D, (i + 1) * D), k * D);
}
const res = [];
for (const dir of [a, b]) {
  const m = await loadModelFolder(engine, dir);
  const s = DDPMScheduler.fromConfig(m.scheduler);
  /** @type {import('../dist/index.js').BoundVarianceType} */
  const vt = /** @type {any} */ (s.varianceType.replace(/_log$/, '')); // the bound's variance types (the _log variants are the same)
  res.push(
    await variationalBound(engine, {
      schedule: s.schedule,
      D,
      x0,
      timesteps: { samples: K },
      seed: 0,
      batchSize: 32,
      predictionType: s.predictionType,
      varianceType: vt,
      clipDenoised: s.clipSample,
      model: (xt, ts) => m.model.forward(xt, ts),
    }),
  );
}
const diff = res[0].perSample.map((v, i) => v - res[1].perSample[i]);
const mean = diff.reduce((x, y) => x + y) / n;
const se = Math.sqrt(diff.reduce((x, y) => x + (y - mean) ** 2, 0) / (n - 1) / n);
for (const [i, r] of res.entries())
  console.log(
    `${[a, b][i]}: ${r.bitsPerDim.toFixed(4)} ± ${r.stdError.toFixed(4)} bits/dim (prior ${r.priorBpd.toFixed(4)}, KL ${r.klBpd.toFixed(4)}, decoder ${r.decoderBpd.toFixed(4)})`,
  );
console.log(
  `paired difference (first − second): ${mean.toFixed(4)} ± ${se.toFixed(4)} bits/dim over ${n} digits, ${K} t per digit`,
);
engine.dispose();
