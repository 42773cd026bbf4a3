#!/usr/bin/env node
// Quality per model call: for a model folder, every sampler × model-call budget draws n digits through
// SamplingChain and scores them as `ddpm eval` does (the digit classifier's confident fraction ≥ 0.9 and the
// Fréchet distance of its 64 features to the held-out digits). Resumable: each finished cell is appended
// to the results JSON at once, and a rerun skips the cells already there. At the end (and after every cell)
// it writes a markdown table and an SVG plot beside the JSON.
//
//   npm run build && node scripts/sampler-sweep.mjs [--model models/mnist] [--n 1000] [--batch 16]
//     [--samplers ddim,dpm++2m,…] [--calls 5,10,15,20,30,50] [--karras] [--seed 0] [--threads N|auto]
//     [--out docs/sampler-quality.json] [--classifier FILE]
//
// The samples are quantized to 8-bit pixels first, as `ddpm sample` writes them and `ddpm eval` scores them.
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => import(new URL(`../dist/${p}`, import.meta.url).href);
const { Engine } = await dist('engine/engine.js');
const { SAMPLER_NAMES, SamplingChain, createSampler, modelCallsForSteps, stepsForModelCalls } =
  await dist('diffusion/index.js');
const { loadModelFolder } = await dist('cli/files.js');
const { loadMnist } = await dist('io/mnist.js');
const { tensorToImages } = await dist('io/png.js');
const { CLASSIFIER_FORMAT, CLASSIFIER_TRAINING, DigitClassifier, FEATURES, PIXELS, SIDE, trainClassifier } =
  await dist('eval/classifier.js');
const { confidentFraction, featureStats, frechetDistance } = await dist('eval/metrics.js');

const { values: a } = parseArgs({
  options: {
    model: { type: 'string', default: join(root, 'models', 'mnist') },
    n: { type: 'string', default: '1000' },
    batch: { type: 'string', default: '16' },
    samplers: { type: 'string', default: SAMPLER_NAMES.join(',') },
    calls: { type: 'string', default: '5,10,15,20,30,50' },
    karras: { type: 'boolean', default: false },
    seed: { type: 'string', default: '0' },
    threads: { type: 'string', default: 'auto' },
    out: { type: 'string', default: join(root, 'docs', 'sampler-quality.json') },
    classifier: { type: 'string' },
  },
});
const n = Number(a.n),
  batch = Number(a.batch),
  seed = Number(a.seed);
const samplers = a.samplers.split(',').filter(Boolean);
const callsList = a.calls.split(',').map(Number);
for (const s of samplers)
  if (!SAMPLER_NAMES.includes(s)) throw new Error(`--samplers: unknown ${s} (choose from ${SAMPLER_NAMES.join(', ')})`);
if (!(n >= 2) || !(batch >= 1) || !callsList.every((c) => Number.isInteger(c) && c >= 1))
  throw new Error('--n must be >= 2, --batch >= 1, --calls positive integers');
const out = resolve(a.out);
const base = out.replace(/\.json$/, '');

async function writeAtomic(file, text) {
  await mkdir(dirname(file), { recursive: true });
  await writeFile(`${file}.tmp`, text);
  await rename(`${file}.tmp`, file);
}

const engine = await Engine.create({ threads: a.threads === 'auto' ? 'auto' : Number(a.threads) });
try {
  const loaded = await loadModelFolder(engine, a.model);
  if (loaded.kind !== 'unet' || loaded.model.config.in_channels !== 1 || loaded.model.config.sample_size !== SIDE)
    throw new Error(`${loaded.dir}: needs a 1×28×28 UNet2DModel`);
  const unet = loaded.model;
  const uncond = unet.config.num_class_embeds == null ? undefined : unet.config.num_class_embeds - 1;

  // The results so far: cells keyed by sampler and calls, for this model, n, seed and --karras.
  /** @type {{ model: string, n: number, seed: number, karras: boolean, classifier: string | null }} */
  const settings = { model: loaded.dir, n, seed, karras: a.karras, classifier: null };
  /** @type {{ format: string, settings: typeof settings, cells: any[] }} */
  let results = { format: 'ddpm-wasm.sampler-sweep-1', settings, cells: [] };
  if (
    await stat(out).then(
      (s) => s.isFile(),
      () => false,
    )
  ) {
    const prev = JSON.parse(await readFile(out, 'utf8'));
    const same =
      prev.settings &&
      prev.settings.n === n &&
      prev.settings.seed === seed &&
      prev.settings.karras === a.karras &&
      resolve(prev.settings.model) === resolve(loaded.dir);
    if (!same)
      throw new Error(
        `${out}: holds a sweep with other settings (${JSON.stringify(prev.settings)}); pass another --out or delete it`,
      );
    results = prev;
  }

  // The classifier (the cache `ddpm eval` uses) and the held-out digits' feature statistics.
  const [train, heldOut] = await Promise.all([loadMnist('train'), loadMnist('test')]);
  const cfile = a.classifier ?? join(tmpdir(), `${CLASSIFIER_FORMAT}.safetensors`);
  let classifier;
  if (
    await stat(cfile).then(
      (s) => s.isFile(),
      () => false,
    )
  )
    classifier = DigitClassifier.fromBytes(engine, new Uint8Array(await readFile(cfile)), cfile);
  else {
    console.error(`training the digit classifier (${cfile})…`);
    classifier = trainClassifier(engine, train.images, train.labels, CLASSIFIER_TRAINING);
    await writeAtomic(cfile, classifier.toBytes());
  }
  results.settings.classifier = cfile;
  const reference = featureStats(classifier.classify(heldOut.images).features, FEATURES);

  const writeReports = async () => {
    await writeAtomic(out, `${JSON.stringify(results, null, 2)}\n`);
    await writeAtomic(`${base}.md`, markdown(results));
    await writeAtomic(`${base}.svg`, svg(results));
  };

  for (const name of samplers) {
    for (const calls of callsList) {
      if (results.cells.some((c) => c.sampler === name && c.calls === calls)) continue;
      const steps = stepsForModelCalls(name, calls);
      const t0 = performance.now();
      const x = new Float32Array(n * PIXELS);
      const B = Math.min(batch, n);
      let mark = -1;
      for (let i0 = 0; i0 < n; i0 += B) {
        const nb = Math.min(B, n - i0);
        const scheduler = createSampler(name, loaded.scheduler, {
          karras: a.karras && !['ddpm', 'ddim', 'euler-a'].includes(name),
          engine,
        });
        const chain = SamplingChain.start(engine, scheduler, {
          shape: [nb, 1, SIDE, SIDE],
          numInferenceSteps: steps,
          seed,
          offset: i0 * PIXELS,
        });
        const labels = uncond === undefined ? {} : { classLabels: new Int32Array(nb).fill(uncond) };
        await chain.run((inp, t) => unet.forwardTensor(inp, t, labels));
        x.set(engine.read(chain.sample), i0 * PIXELS);
        if (mark < 0) mark = engine.arena.mark();
        else engine.arena.release(mark);
      }
      const { images } = tensorToImages(x, [n, 1, SIDE, SIDE]);
      const q = new Float32Array(n * PIXELS);
      images.forEach((img, i) => {
        for (let p = 0; p < PIXELS; p++) q[i * PIXELS + p] = img.data[4 * p] / 127.5 - 1;
      });
      const r = classifier.classify(q);
      const cell = {
        sampler: name,
        calls,
        steps,
        modelCalls: modelCallsForSteps(name, steps),
        karras: a.karras && !['ddpm', 'ddim', 'euler-a'].includes(name),
        confident: confidentFraction(r.probs),
        frechetDistance: frechetDistance(featureStats(r.features, FEATURES), reference),
        seconds: (performance.now() - t0) / 1000,
      };
      results.cells.push(cell);
      await writeReports();
      console.log(
        `${name.padEnd(12)} ${String(calls).padStart(3)} calls  confident ${(100 * cell.confident).toFixed(1)}%  Fréchet ${cell.frechetDistance.toFixed(3)}  (${cell.seconds.toFixed(1)} s)`,
      );
    }
  }
  await writeReports();
} finally {
  engine.dispose();
}

/** Rows: samplers; columns: model calls; cells "confident % / Fréchet distance"; then the cheapest cell at
 * least as good as DDIM-50 on both numbers, when DDIM-50 was measured. */
function markdown(res) {
  const calls = [...new Set(res.cells.map((c) => c.calls))].sort((x, y) => x - y);
  const names = [...new Set(res.cells.map((c) => c.sampler))];
  const cell = (s, k) => res.cells.find((c) => c.sampler === s && c.calls === k);
  const lines = [
    `Quality per model call: ${res.settings.n} samples per cell, seed ${res.settings.seed}${res.settings.karras ? ', Karras σ where the sampler has them' : ''}; each cell is "confident ≥ 0.9 / Fréchet distance" (higher / lower is better).`,
    '',
    `| sampler | ${calls.map((k) => `${k} calls`).join(' | ')} |`,
    `|---|${calls.map(() => '---').join('|')}|`,
    ...names.map(
      (s) =>
        `| ${s} | ${calls
          .map((k) => {
            const c = cell(s, k);
            return c ? `${(100 * c.confident).toFixed(1)}% / ${c.frechetDistance.toFixed(2)}` : '–';
          })
          .join(' | ')} |`,
    ),
    '',
  ];
  const ref = cell('ddim', 50);
  if (ref) {
    const ok = res.cells
      .filter((c) => c.confident >= ref.confident && c.frechetDistance <= ref.frechetDistance)
      .sort((x, y) => x.modelCalls - y.modelCalls || y.confident - x.confident);
    lines.push(
      ok.length
        ? `Cheapest at least as good as DDIM-50 on both numbers: **${ok[0].sampler}, ${ok[0].calls} model calls** (${(100 * ok[0].confident).toFixed(1)}% / ${ok[0].frechetDistance.toFixed(2)}).`
        : 'No cell is at least as good as DDIM-50 on both numbers.',
      '',
    );
  }
  lines.push(
    `Reproduce: \`npm run build && node scripts/sampler-sweep.mjs --n ${res.settings.n}${res.settings.karras ? ' --karras' : ''}\` (resumable; see docs/samplers.md).`,
    '',
  );
  return lines.join('\n');
}

/** Two panels, confident fraction and Fréchet distance against model calls (log axis), a line per sampler. */
function svg(res) {
  const W = 900,
    H = 380,
    pad = { l: 56, r: 130, t: 34, b: 44 },
    gap = 70;
  const pw = (W - pad.l - pad.r - gap) / 2,
    ph = H - pad.t - pad.b;
  const names = [...new Set(res.cells.map((c) => c.sampler))];
  const colors = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22'];
  const calls = res.cells.map((c) => c.calls);
  const lo = Math.log(Math.min(...calls, 5)),
    hi = Math.log(Math.max(...calls, 50));
  const xs = (k, x0) => x0 + ((Math.log(k) - lo) / Math.max(hi - lo, 1e-9)) * pw;
  // a round axis end: 1, 2, 2.5 or 5 × 10^k above the largest distance
  const fdTop = Math.max(1e-9, ...res.cells.map((c) => c.frechetDistance));
  const p10 = 10 ** Math.floor(Math.log10(fdTop));
  const fdMax = [1, 2, 2.5, 5, 10].map((m) => m * p10).find((v) => v >= fdTop) ?? 10 * p10;
  const panels = [
    {
      title: 'confident ≥ 0.9 (higher is better)',
      x0: pad.l,
      y: (c) => c.confident,
      max: 1,
      fmt: (v) => `${Math.round(100 * v)}%`,
    },
    {
      title: 'Fréchet distance (lower is better)',
      x0: pad.l + pw + gap,
      y: (c) => c.frechetDistance,
      max: fdMax,
      fmt: (v) => (fdMax < 10 ? v.toFixed(1) : v.toFixed(0)),
    },
  ];
  const esc = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
  ];
  const ticks = [5, 10, 15, 20, 30, 50].filter((k) => Math.log(k) >= lo - 1e-9 && Math.log(k) <= hi + 1e-9);
  for (const p of panels) {
    const ys = (v) => pad.t + ph - (v / p.max) * ph;
    parts.push(
      `<text x="${p.x0 + pw / 2}" y="${pad.t - 12}" text-anchor="middle" font-weight="bold">${esc(p.title)}</text>`,
    );
    parts.push(`<rect x="${p.x0}" y="${pad.t}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`);
    for (const k of ticks)
      parts.push(
        `<line x1="${xs(k, p.x0)}" x2="${xs(k, p.x0)}" y1="${pad.t}" y2="${pad.t + ph}" stroke="#eee"/><text x="${xs(k, p.x0)}" y="${pad.t + ph + 16}" text-anchor="middle">${k}</text>`,
      );
    for (let j = 0; j <= 4; j++) {
      const v = (p.max * j) / 4;
      parts.push(
        `<line x1="${p.x0}" x2="${p.x0 + pw}" y1="${ys(v)}" y2="${ys(v)}" stroke="#eee"/><text x="${p.x0 - 6}" y="${ys(v) + 4}" text-anchor="end">${p.fmt(v)}</text>`,
      );
    }
    parts.push(`<text x="${p.x0 + pw / 2}" y="${H - 8}" text-anchor="middle">model calls (log scale)</text>`);
    names.forEach((s, i) => {
      const pts = res.cells
        .filter((c) => c.sampler === s)
        .sort((x, y) => x.calls - y.calls)
        .map((c) => `${xs(c.calls, p.x0).toFixed(1)},${ys(p.y(c)).toFixed(1)}`);
      parts.push(
        `<polyline fill="none" stroke="${colors[i % colors.length]}" stroke-width="2" points="${pts.join(' ')}"/>`,
      );
      for (const q of pts)
        parts.push(
          `<circle cx="${q.split(',')[0]}" cy="${q.split(',')[1]}" r="2.5" fill="${colors[i % colors.length]}"/>`,
        );
    });
  }
  names.forEach((s, i) =>
    parts.push(
      `<line x1="${W - pad.r + 16}" x2="${W - pad.r + 36}" y1="${pad.t + 10 + 18 * i}" y2="${pad.t + 10 + 18 * i}" stroke="${colors[i % colors.length]}" stroke-width="3"/><text x="${W - pad.r + 42}" y="${pad.t + 14 + 18 * i}">${esc(s)}</text>`,
    ),
  );
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
