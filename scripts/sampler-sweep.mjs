#!/usr/bin/env node
// Quality per model call: for a model folder, every sampler × model-call budget is one `ddpm eval` (n digits,
// scored by the digit classifier's confident fraction ≥ 0.9 and the Fréchet distance of its 64 features to the
// held-out digits), so each cell's numbers are exactly that command's — with the model's stored sampling
// defaults (models/mnist: its autoguidance) unless --autoguidance says otherwise. Resumable: each finished cell
// is appended to the results JSON at once, and a rerun skips the cells already there; results of other
// weights (the model retrained since) or other settings are refused. After every cell it writes a markdown
// table and an SVG plot beside the JSON. Ctrl-C stops the running eval and keeps the finished cells.
//
//   npm run build && node scripts/sampler-sweep.mjs [--model models/mnist] [--n 1000] [--batch 16]
//     [--samplers ddim,dpm++2m,…] [--calls 5,10,15,20,30,50] [--karras] [--autoguidance W|off] [--seed 0]
//     [--threads N|auto] [--out docs/sampler-quality.json] [--classifier FILE]
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  checkFingerprint,
  evalRunner,
  exists,
  histRange,
  modelFingerprint,
  pct,
  repoPath,
  root,
  writeAtomic,
} from './sweep-common.mjs';

const { SAMPLER_NAMES } = await import(new URL('../dist/diffusion/index.js', import.meta.url).href);
/** the samplers that take Karras σ (--karras is passed to these only) */
const KARRAS = new Set(SAMPLER_NAMES.filter((s) => !['ddpm', 'ddim', 'euler-a'].includes(s)));

const { values: a } = parseArgs({
  options: {
    model: { type: 'string', default: 'models/mnist' },
    n: { type: 'string', default: '1000' },
    batch: { type: 'string' },
    samplers: { type: 'string', default: SAMPLER_NAMES.join(',') },
    calls: { type: 'string', default: '5,10,15,20,30,50' },
    karras: { type: 'boolean', default: false },
    autoguidance: { type: 'string' },
    seed: { type: 'string', default: '0' },
    threads: { type: 'string', default: 'auto' },
    out: { type: 'string', default: join(root, 'docs', 'sampler-quality.json') },
    classifier: { type: 'string' },
  },
});
const fail = (msg) => {
  console.error(`sampler-sweep: ${msg}`);
  process.exit(1);
};
const n = Number(a.n),
  seed = Number(a.seed);
const samplers = [...new Set(a.samplers.split(',').filter(Boolean))];
const callsList = [...new Set(a.calls.split(',').map(Number))];
for (const s of samplers)
  if (!SAMPLER_NAMES.includes(s)) fail(`--samplers: unknown ${s} (choose from ${SAMPLER_NAMES.join(', ')})`);
if (!Number.isInteger(n) || n < 10) fail(`--n must be an integer >= 10, found '${a.n}'`);
if (!Number.isInteger(seed) || seed < 0) fail(`--seed must be an integer >= 0, found '${a.seed}'`);
if (!callsList.every((c) => Number.isInteger(c) && c >= 1))
  fail(`--calls must be positive integers, found '${a.calls}'`);
const out = resolve(a.out);
const base = out.replace(/\.json$/, '');

// what fixes the numbers of a cell besides its sampler and calls (--threads and --batch change no bit)
const settingArgs = ['--model', a.model, '--n', String(n), '--seed', String(seed)];
if (a.karras) settingArgs.push('--karras');
if (a.autoguidance !== undefined) settingArgs.push('--autoguidance', a.autoguidance);
if (a.classifier !== undefined) settingArgs.push('--classifier', a.classifier);
// the defaults a plain eval samples with (sampling_defaults.json, the guide) are part of the fingerprint
const { fingerprint } = await modelFingerprint(a.model, { withDefaults: true }).catch((e) => fail(e.message));

const FORMAT = 'ddpm-wasm.sampler-sweep-2';
/** @type {{ format: string, settings: Record<string, any> | null, trainingDigits: any, runs: any[], cells: any[] }} */
let results = { format: FORMAT, settings: null, trainingDigits: null, runs: [], cells: [] };
if (await exists(out)) {
  const prev = JSON.parse(await readFile(out, 'utf8'));
  if (prev.format === 'ddpm-wasm.sampler-sweep-1')
    fail(`${out}: a sweep of format 1, which recorded no fingerprint of its model; delete it to measure again`);
  if (prev.format !== FORMAT) fail(`${out}: not a sampler sweep (format ${JSON.stringify(prev.format)})`);
  if (JSON.stringify(prev.settings?.args) !== JSON.stringify(settingArgs))
    fail(
      `${out}: holds a sweep with other settings (${JSON.stringify(prev.settings?.args)}, now ${JSON.stringify(settingArgs)}); pass another --out or delete it`,
    );
  checkFingerprint(prev, fingerprint, out, fail);
  results = { ...prev, runs: prev.runs ?? [] };
}
// each invocation that adds cells is kept (samplers × calls), so the table's reproduce lines run them all
const thisRun = { samplers, calls: callsList };

const runner = evalRunner('sampler-sweep');
const evalArgs = [...settingArgs, '--threads', a.threads, ...(a.batch === undefined ? [] : ['--batch', a.batch])];
const writeReports = async () => {
  await writeAtomic(out, `${JSON.stringify(results, null, 2)}\n`);
  await writeAtomic(`${base}.md`, markdown(results));
  await writeAtomic(`${base}.svg`, svg(results));
};
for (const name of samplers) {
  for (const calls of callsList) {
    if (runner.state.stopping) break;
    if (results.cells.some((c) => c.sampler === name && c.calls === calls)) continue;
    if (!results.runs.some((x) => JSON.stringify(x) === JSON.stringify(thisRun))) results.runs.push(thisRun);
    const t0 = performance.now();
    const karras = a.karras && KARRAS.has(name);
    const args = evalArgs.filter((x) => x !== '--karras');
    const r = await runner.run([
      ...args,
      '--sampler',
      name,
      '--steps',
      String(calls),
      ...(karras ? ['--karras'] : []),
      '--nll-samples',
      '0',
    ]);
    if (!r) break;
    results.settings = {
      args: settingArgs,
      model: repoPath(r.model),
      fingerprint,
      n,
      seed,
      karras: a.karras,
      autoguidance: r.autoguidance,
      classifier: r.classifier.file,
    };
    results.trainingDigits = r.trainingDigits;
    const cell = {
      sampler: name,
      calls,
      steps: r.steps,
      modelCalls: r.modelCalls,
      karras: r.karras,
      confident: r.samples.confident,
      classHistogram: r.samples.classHistogram,
      frechetDistance: r.samples.frechetDistance,
      seconds: Math.round((performance.now() - t0) / 100) / 10,
    };
    results.cells.push(cell);
    await writeReports();
    console.log(
      `${name.padEnd(12)} ${String(calls).padStart(3)} calls  confident ${pct(cell.confident)}  classes ${histRange(cell.classHistogram)}  Fréchet ${cell.frechetDistance.toFixed(3)}  (${cell.seconds} s)`,
    );
  }
}
if (results.settings) await writeReports();
if (runner.state.stopping) {
  console.error(`interrupted: the finished cells are in ${out}; run the same command to continue`);
  process.exit(130);
}

/** Rows: samplers; columns: model calls; cells "confident % / Fréchet distance"; then the cheapest cell at
 * least as good as DDIM-50 on both numbers, when DDIM-50 was measured. */
function markdown(res) {
  const calls = [...new Set(res.cells.map((c) => c.calls))].sort((x, y) => x - y);
  const names = [...new Set(res.cells.map((c) => c.sampler))];
  const cell = (s, k) => res.cells.find((c) => c.sampler === s && c.calls === k);
  /** a table: a row per sampler, a column per budget, `fmt(cell)` in each measured one */
  const grid = (fmt) => [
    `| sampler | ${calls.map((k) => `${k} calls`).join(' | ')} |`,
    `|---|${calls.map(() => '---').join('|')}|`,
    ...names.map((s) => `| ${s} | ${calls.map((k) => (cell(s, k) ? fmt(cell(s, k)) : '–')).join(' | ')} |`),
    '',
  ];
  const lines = [
    `Quality per model call of ${res.settings.model}: ${res.settings.n} samples per cell, seed ${res.settings.seed}${res.settings.karras ? ', Karras σ where the sampler has them' : ''}, ${res.settings.autoguidance ? `${res.settings.autoguidance.description.replaceAll(`${root}/`, '')} (a guided step calls the guide too; the columns count the sampler's calls)` : 'no guidance'}; each cell is "confident ≥ 0.9 / Fréchet distance" (higher / lower is better), as \`ddpm eval --sampler S --steps N\` prints them.`,
    '',
    ...grid((c) => `${pct(c.confident)} / ${c.frechetDistance.toFixed(2)}`),
    'The rarest and the commonest digit among the samples of each cell (10% each for balanced data):',
    '',
    ...grid((c) => `${pct(Math.min(...c.classHistogram))} – ${pct(Math.max(...c.classHistogram))}`),
  ];
  // the default's rule, for the network alone: with guidance DDIM's clipped x̂₀ makes DDIM-50 no reference
  // (docs/samplers.md)
  const ref = res.settings.autoguidance ? undefined : cell('ddim', 50);
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
  const runs = res.runs?.length ? res.runs : [{ samplers: names, calls }];
  lines.push(
    'Reproduce (resumable; see docs/samplers.md):',
    '',
    '    npm run build',
    ...runs.map(
      (r) =>
        `    node scripts/sampler-sweep.mjs ${res.settings.args.join(' ')} --samplers ${r.samplers.join(',')} --calls ${r.calls.join(',')}`,
    ),
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
