// `node|deno|bun digits-pipeline.mjs <simd|relaxed> <threads>`: the 4 digits of digits.mjs through the
// pipeline, from the shipped model by name — what a user writes — and their PNG; prints one JSON line.
import { DDPMPipeline, Engine, toPng } from '../../dist/index.js';
import { DIGITS } from './digits.mjs';

const args = globalThis.Deno?.args ?? process.argv.slice(2);
const [simd = 'simd', threads = '1'] = args;
const engine = await Engine.create({ simd, threads: Number(threads) });
const pipe = await DDPMPipeline.fromPretrained(engine, 'mnist', { scheduler: 'ddim' });
const hash = async (x) =>
  Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', x)), (b) => b.toString(16).padStart(2, '0')).join('');
// by default with the model's stored autoguidance (sampling_defaults.json, guide/); and the network alone
const { images, tensor } = await pipe.run(DIGITS);
const sha256 = await hash(tensor);
const sha256Alone = await hash((await pipe.run({ ...DIGITS, autoguidance: null })).tensor);
const png = await toPng(images, { grid: true });
const { runtime, build, fusedMadd } = engine.info;
console.log(
  JSON.stringify({
    runtime,
    build,
    threads: engine.info.threads,
    fusedMadd,
    sha256,
    sha256Alone,
    png: Array.from(png.subarray(0, 8)),
  }),
);
engine.dispose();
