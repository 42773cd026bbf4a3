// The fuzz targets: for each, seed inputs (made with the library itself), a seeded mutator (run in the
// parent, so the input that killed a child is known) and the function under test (run in the child).
// Inputs are bytes; JSON targets mutate the parsed document (structure-aware: a node replaced with an
// interesting value, a key removed or added, a prototype name …) and sometimes the text itself.
// Everything here imports the built library from dist/.
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dist = (p) => import(new URL(`../../dist/${p}`, import.meta.url).href);

// ---- seeded random numbers (splitmix32: the same sequence in every runtime) ----
export function rng(seed) {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return ((z ^ (z >>> 16)) >>> 0) / 4294967296;
  };
  const int = (n) => Math.floor(next() * n);
  return { next, int, pick: (a) => a[int(a.length)], chance: (p) => next() < p };
}

// ---- mutators ----
const INTERESTING_INTS = [0, -1, 1, 2, 3, 7, 8, 255, 256, 65535, 65536, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 53, 1e9, 1e15, -(2 ** 31)];
const INTERESTING = [
  ...INTERESTING_INTS, 0.5, -0.5, 1e-46, 1e-30, 1e-300, 1e300, -1e300, 1e39, null, true, false, '', 'x', 'toString', 'constructor',
  '__proto__', 'valueOf', 'hasOwnProperty', '0', '1e9', [], {}, [0], [1e9], [2 ** 31, 2 ** 31], [-1], [[]], { a: 1 }, { length: 1e9 },
];
const PROTO_KEYS = ['toString', 'constructor', 'valueOf', '__proto__', 'hasOwnProperty', 'isPrototypeOf', '__defineGetter__'];

function nodes(doc) {
  // every (parent, key) pair in the document, the root as (null, null)
  const out = [[null, null]];
  const walk = (v) => {
    if (v === null || typeof v !== 'object') return;
    for (const k of Object.keys(v)) {
      if (out.length > 4000) return;
      out.push([v, Array.isArray(v) ? Number(k) : k]);
      walk(v[k]);
    }
  };
  walk(doc);
  return out;
}

function mutateValue(r, v) {
  if (typeof v === 'number' && r.chance(0.6)) return r.pick([v + 1, v - 1, -v, v * 2, v * 1e6, v / 1e6, Math.floor(v / 2), v + 0.5, 0]);
  if (typeof v === 'string' && r.chance(0.4)) return r.pick([v + v, v.slice(0, -1), v.toUpperCase(), `${v}x`, '']);
  if (Array.isArray(v) && r.chance(0.5)) {
    const a = [...v];
    const op = r.int(4);
    if (op === 0 && a.length) a.splice(r.int(a.length), 1);
    else if (op === 1 && a.length) a.splice(r.int(a.length), 0, a[r.int(a.length)]);
    else if (op === 2) a.reverse();
    else if (a.length) a[r.int(a.length)] = r.pick(INTERESTING);
    return a;
  }
  return structuredClone(r.pick(INTERESTING));
}

export function mutateJson(r, doc) {
  const d = structuredClone(doc);
  const rounds = 1 + r.int(3);
  let root = d;
  for (let i = 0; i < rounds; i++) {
    const all = nodes(root);
    const [parent, key] = r.pick(all);
    if (parent === null) {
      if (r.chance(0.1)) root = mutateValue(r, root);
      continue;
    }
    const op = r.int(10);
    if (op < 6) parent[key] = mutateValue(r, parent[key]);
    else if (op < 8 && !Array.isArray(parent)) delete parent[key];
    else if (!Array.isArray(parent)) parent[r.chance(0.5) ? r.pick(PROTO_KEYS) : `${key}_`] = structuredClone(r.pick(INTERESTING));
    else parent[key] = mutateValue(r, parent[key]);
  }
  return root;
}

export function mutateBytes(r, bytes) {
  let b = Uint8Array.from(bytes);
  const rounds = 1 + r.int(4);
  for (let i = 0; i < rounds; i++) {
    const op = r.int(8);
    const at = b.length ? r.int(b.length) : 0;
    if (op === 0 && b.length) b[at] ^= 1 << r.int(8);
    else if (op === 1 && b.length) b[at] = r.pick([0, 0xff, 0x7f, 0x80, 0x20, 0x22, 0x7b, 0x7d]);
    else if (op === 2) b = concat(b.subarray(0, at), Uint8Array.from({ length: 1 + r.int(16) }, () => r.int(256)), b.subarray(at));
    else if (op === 3 && b.length) b = concat(b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + r.int(64))));
    else if (op === 4 && b.length) b = b.subarray(0, at);
    else if (op === 5 && b.length > 8) {
      const n = BigInt(r.pick(INTERESTING_INTS.filter((x) => x >= 0)));
      const dv = new DataView(b.buffer, b.byteOffset, b.length);
      const p = Math.min(at, b.length - 8);
      if (r.chance(0.5)) dv.setBigUint64(p, n & 0xffffffffffffffffn, true);
      else dv.setUint32(p, Number(n & 0xffffffffn), r.chance(0.5));
    } else if (op === 6 && b.length) {
      const from = r.int(b.length);
      b = concat(b.subarray(0, at), b.subarray(from, from + 1 + r.int(64)), b.subarray(at));
    } else if (b.length) b[at] = r.int(256);
  }
  return b;
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const enc = (o) => new TextEncoder().encode(JSON.stringify(o));
const dec = (b) => new TextDecoder().decode(b);

/** A JSON target's mutator: mostly structure-aware, sometimes on the text. */
function jsonMutator(r, input) {
  if (r.chance(0.1)) return mutateBytes(r, input);
  let doc;
  try {
    doc = JSON.parse(dec(input));
  } catch {
    return mutateBytes(r, input);
  }
  return enc(mutateJson(r, doc));
}

// ---- shared bits ----
const tinyUNet = {
  sample_size: 8, in_channels: 1, out_channels: 1, block_out_channels: [8, 16], layers_per_block: 1,
  down_block_types: ['DownBlock2D', 'AttnDownBlock2D'], up_block_types: ['AttnUpBlock2D', 'UpBlock2D'], norm_num_groups: 4, attention_head_dim: null,
};

/** Throws (an untyped Error: a fuzz failure) when a tensor's values are not all finite. */
function mustBeFinite(values, what) {
  const i = values.findIndex((v) => !Number.isFinite(v));
  if (i >= 0) throw new Error(`non-finite output from an input that passed validation: ${what}[${i}] = ${values[i]}`);
}

function parseOrSkip(bytes) {
  try {
    return { doc: JSON.parse(dec(bytes)) };
  } catch {
    return { skip: true }; // the library's own readers turn this into FORMAT; nothing to fuzz here
  }
}

// ---- the targets ----
export const TARGETS = {
  safetensors: {
    ext: 'bin',
    async seeds() {
      const { writeSafetensors } = await dist('io/safetensors.js');
      const fixture = readFileSync(new URL('../fixtures/diffusers/unet_tiny.safetensors', import.meta.url));
      return [
        writeSafetensors([['a', { shape: [2, 3], data: new Float32Array(6).fill(1.5) }], ['b.bias', { shape: [4], data: new Float32Array(4) }]], { format: 'pt' }),
        writeSafetensors([['x', { shape: [1], data: new Float32Array([7]) }]]),
        new Uint8Array(fixture.subarray(0, Math.min(fixture.length, 64 * 1024))), // truncated: a header-heavy seed
        new Uint8Array(fixture),
      ];
    },
    mutate: (r, input) => (r.chance(0.5) ? headerMutation(r, input) : mutateBytes(r, input)),
    async run(input) {
      const { readSafetensors } = await dist('io/safetensors.js');
      readSafetensors(input, 'fuzz.safetensors');
    },
  },
  png: {
    ext: 'png',
    async seeds() {
      const { encodePng } = await dist('io/png.js');
      const img = (w, h, f) => ({ width: w, height: h, data: Uint8ClampedArray.from({ length: 4 * w * h }, (_, i) => f(i)) });
      return [encodePng(img(4, 4, (i) => i * 17)), encodePng(img(16, 3, (i) => (i % 4 === 3 ? 255 : i))), encodePng(img(1, 1, () => 0))];
    },
    mutate: (r, input) => mutateBytes(r, input),
    async run(input) {
      const { decodePng } = await dist('io/png.js');
      decodePng(input, 'fuzz.png');
    },
  },
  'unet-config': {
    ext: 'json',
    async seeds() {
      const fixture = JSON.parse(readFileSync(new URL('../fixtures/diffusers/unet_tiny.config.json', import.meta.url), 'utf8'));
      const mnist = JSON.parse(readFileSync(new URL('../../models/mnist/config.json', import.meta.url), 'utf8'));
      return [enc(tinyUNet), enc({ ...tinyUNet, num_class_embeds: 3, center_input_sample: true }), enc(fixture), enc(mnist)];
    },
    mutate: jsonMutator,
    async run(input, ctx) {
      const { UNet2DModel } = await dist('nn/unet.js');
      const { doc, skip } = parseOrSkip(input);
      if (skip) return;
      const m = UNet2DModel.create(ctx.engine, doc);
      // a model that is small enough to run here must give finite outputs
      const c = m.config;
      if (m.params.size <= 200_000 && c.sample_size <= 32) {
        const labels = c.num_class_embeds ? { classLabels: [0] } : {};
        const out = await m.forward(new Float32Array(m.sampleSize).fill(0.25), 10, labels);
        mustBeFinite(out, 'UNet2DModel.forward');
      }
    },
  },
  'scheduler-config': {
    ext: 'json',
    async seeds() {
      const { DDPMScheduler, DDIMScheduler } = await dist('index.js');
      const { SCHEDULER_CLASSES } = await dist('diffusion/samplers.js');
      const fixture = JSON.parse(readFileSync(new URL('../../models/mnist/scheduler_config.json', import.meta.url), 'utf8'));
      // one config of every scheduler class (DPM-Solver++, UniPC, Euler, Heun …) besides the classic ones
      const every = Object.entries(SCHEDULER_CLASSES).map(([name, make]) => enc(make({ _class_name: name, num_train_timesteps: 100 }, {}).toConfig()));
      return [enc(new DDPMScheduler().toConfig()), enc(new DDIMScheduler({ betaSchedule: 'squaredcos_cap_v2', numTrainTimesteps: 50 }).toConfig()),
        enc(new DDPMScheduler({ trainedBetas: [0.1, 0.2, 0.3], numTrainTimesteps: 3, varianceType: 'fixed_large' }).toConfig()), enc(fixture), ...every];
    },
    mutate: jsonMutator,
    async run(input, ctx) {
      const { DDPMScheduler, SamplingChain } = await dist('index.js');
      const { SCHEDULER_CLASSES, schedulerFromConfig } = await dist('diffusion/samplers.js');
      const { doc, skip } = parseOrSkip(input);
      if (skip) return;
      // a known _class_name picks its class; anything else is read as a DDPMScheduler config (diffusers
      // lets any scheduler read another's config)
      const known = doc !== null && typeof doc === 'object' && typeof doc._class_name === 'string' && Object.hasOwn(SCHEDULER_CLASSES, doc._class_name);
      const s = known ? schedulerFromConfig(doc, { engine: ctx.engine }) : DDPMScheduler.fromConfig(doc, { engine: ctx.engine });
      // three steps of a chain with a constant model output: every config that is accepted must give finite samples
      const e = ctx.engine;
      const chain = SamplingChain.start(e, s, { shape: [1, 2, 2, 2], numInferenceSteps: Math.min(10, s.numTrainTimesteps), seed: 1 });
      const learned = typeof s.varianceType === 'string' && s.varianceType.startsWith('learned');
      const eps = e.upload(new Float32Array(learned ? 16 : 8).fill(0.1), [1, learned ? 4 : 2, 2, 2], 'eps');
      await chain.run(() => eps, { maxSteps: 3 });
      mustBeFinite(e.read(chain.sample), `${s.constructor.name} chain x_t`);
    },
  },
  'chain-state': {
    ext: 'json',
    async seeds() {
      const { Engine, SamplingChain, DDPMScheduler, DDIMScheduler } = await dist('index.js');
      const engine = await Engine.create({ threads: 1 });
      const zero = engine.alloc(16, 'zero');
      const a = SamplingChain.start(engine, new DDPMScheduler({ numTrainTimesteps: 100 }), { shape: [2, 8], numInferenceSteps: 10, seed: 3 });
      await a.run(() => zero, { maxSteps: 4 });
      const b = SamplingChain.start(engine, new DDIMScheduler({ numTrainTimesteps: 50 }), { shape: [1, 2, 2, 2], numInferenceSteps: 5, seed: 2n ** 64n - 1n, eta: 0.5 });
      const seeds = [enc(a.toJSON()), enc(b.toJSON())];
      // a chain of every other scheduler class, a few steps in (solver history in the state)
      const { SCHEDULER_CLASSES } = await dist('diffusion/samplers.js');
      for (const [name, make] of Object.entries(SCHEDULER_CLASSES)) {
        if (name === 'DDPMScheduler' || name === 'DDIMScheduler') continue;
        const c = SamplingChain.start(engine, make({ _class_name: name, num_train_timesteps: 100 }, { engine }), { shape: [2, 8], numInferenceSteps: 6, seed: 4 });
        await c.run(() => zero, { maxSteps: 3 });
        seeds.push(enc(c.toJSON()));
      }
      engine.dispose();
      return seeds;
    },
    mutate: jsonMutator,
    async run(input, ctx) {
      const { SamplingChain } = await dist('index.js');
      const { doc, skip } = parseOrSkip(input);
      if (skip) return;
      const e = ctx.engine;
      const mark = e.arena.mark();
      try {
        const chain = SamplingChain.resume(e, doc);
        const zero = e.alloc(chain.sample.size * (chain.scheduler.varianceType?.startsWith('learned') ? 2 : 1), 'model');
        await chain.run(() => zero, { maxSteps: 2 });
        mustBeFinite(e.read(chain.sample), 'SamplingChain.run x_t');
      } finally {
        e.arena.release(mark);
      }
    },
  },
  checkpoint: {
    ext: 'json',
    async seeds() {
      const { Engine, MLPDenoiser, Trainer, saveCheckpoint, twoMoons, namedSchedule } = await dist('index.js');
      const engine = await Engine.create({ threads: 1 });
      const trainer = new Trainer(MLPDenoiser.create(engine, { data_dim: 2, hidden_dim: 8, num_blocks: 1, time_proj_dim: 4 }, 1), twoMoons(20, 1), namedSchedule('linear', 20).alphasCumprod,
        { batchSize: 8, maxTrainSteps: 10, seed: 2, ema: { maxDecay: 0.9 } });
      await trainer.train({ steps: 2 });
      const dir = mkdtempSync(join(tmpdir(), 'ddpm-fuzz-ckpt-seed-'));
      const path = await saveCheckpoint(dir, trainer);
      const files = {};
      for (const name of readdirSync(path)) files[name] = readFileSync(join(path, name)).toString('base64');
      rmSync(dir, { recursive: true, force: true });
      engine.dispose();
      return [enc({ files })];
    },
    // mostly the manifest (checkpoint.json), sometimes one of the safetensors files' bytes
    mutate(r, input) {
      const { files } = JSON.parse(dec(input));
      const names = Object.keys(files);
      if (r.chance(0.75)) {
        const text = Buffer.from(files['checkpoint.json'], 'base64');
        files['checkpoint.json'] = Buffer.from(jsonMutator(r, text)).toString('base64');
      } else {
        const name = r.pick(names.filter((n) => n !== 'checkpoint.json'));
        files[name] = Buffer.from(mutateBytes(r, Buffer.from(files[name], 'base64'))).toString('base64');
      }
      return enc({ files });
    },
    async run(input, ctx) {
      const ckptModule = await dist('train/checkpoint.js');
      const { files } = JSON.parse(dec(input));
      const dir = mkdtempSync(join(tmpdir(), 'ddpm-fuzz-ckpt-'));
      try {
        const path = join(dir, 'ckpt-000002');
        mkdirSync(path);
        for (const [name, b64] of Object.entries(files)) writeFileSync(join(path, name), Buffer.from(b64, 'base64'));
        const ckpt = await ckptModule.loadCheckpoint(path);
        const mark = ctx.engine.arena.mark();
        try {
          ckptModule.modelFromCheckpoint(ctx.engine, ckpt);
        } finally {
          ctx.engine.arena.release(mark);
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  },
};

/** safetensors: mutate the JSON header structurally, keeping the length prefix consistent. */
function headerMutation(r, input) {
  if (input.length < 8) return mutateBytes(r, input);
  const n = Number(new DataView(input.buffer, input.byteOffset, input.length).getBigUint64(0, true));
  if (n > input.length - 8) return mutateBytes(r, input);
  let header;
  try {
    header = JSON.parse(dec(input.subarray(8, 8 + n)));
  } catch {
    return mutateBytes(r, input);
  }
  const json = enc(mutateJson(r, header));
  const out = new Uint8Array(8 + json.length + (input.length - 8 - n));
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(input.subarray(8 + n), 8 + json.length);
  return out;
}

// Resume from a hostile checkpoint: load, rebuild the model and a trainer as `ddpm train` does, restore.
TARGETS['checkpoint-resume'] = {
  ...TARGETS.checkpoint,
  async run(input, ctx) {
    const { Trainer, twoMoons, namedSchedule, restoreTrainer, loadCheckpoint, modelFromCheckpoint } = await dist('index.js');
    const { files } = JSON.parse(dec(input));
    const dir = mkdtempSync(join(tmpdir(), 'ddpm-fuzz-ckpt-'));
    const mark = ctx.engine.arena.mark();
    try {
      const path = join(dir, 'ckpt-000002');
      mkdirSync(path);
      for (const [name, b64] of Object.entries(files)) writeFileSync(join(path, name), Buffer.from(b64, 'base64'));
      const ckpt = await loadCheckpoint(path);
      const model = modelFromCheckpoint(ctx.engine, ckpt);
      const trainer = new Trainer(model, twoMoons(20, 1), namedSchedule('linear', 20).alphasCumprod, ckpt.manifest.trainer_config);
      restoreTrainer(trainer, ckpt);
    } finally {
      ctx.engine.arena.release(mark);
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

/** The targets of `npm run fuzz -- --target all` and of the suite. */
export const TARGET_NAMES = [
  'safetensors', 'png', 'unet-config', 'scheduler-config', 'chain-state', 'checkpoint', 'checkpoint-resume',
];
/** Targets run only when named (none now). */
export const EXTRA_TARGETS = [];
