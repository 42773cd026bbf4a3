#!/usr/bin/env node
// Autoguidance sweep for an unconditional MNIST model (Karras et al. 2024: D = D_g + W·(D − D_g) with a weaker
// guide model D_g), guidance limited to the timesteps t ≤ T (Kynkäänniemi et al. 2024): `ddpm eval --guide G
// --autoguidance W --autoguidance-max-t T` for each guide × (W, T), plus the model alone, then a table of the
// confident fraction, the class range and the Fréchet distance. The choice: the most confident cell whose
// classes all stay within --classes and whose Fréchet distance is at most --fd-factor × the training digits'
// (the targets of issue 11). With --write-default the chosen cell's guide is copied into the model folder
// (<model>/guide/) and the choice stored in its sampling_defaults.json, which `ddpm sample`, `ddpm eval` and
// DDPMPipeline then use.
//
//   npm run build && node scripts/autoguidance-sweep.mjs --guide DIR[,DIR…] [--model mnist] [--w 1.5,2,2.5,3]
//     [--max-t all,800,700,600] [--n 1000] [--seed 1] [--sampler S] [--steps N] [--batch B] [--threads N|auto]
//     [--classifier FILE] [--classes 0.08,0.12] [--fd-factor 1.5] [--out docs/autoguidance-sweep.json]
//     [--write-default]
//
// Pick on one seed, report on another: the sweep's default seed is 1, `ddpm eval`'s 0. Resumable: each
// finished cell is written to the JSON at once (and the markdown beside it); a rerun with the same settings
// skips the cells already there (a cell is a guide, W and T: more guides, scales or intervals can be added to a
// finished sweep). Ctrl-C stops the running eval and keeps the finished cells.
import { cp, mkdir, readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  checkFingerprint,
  evalRunner,
  evalSettings,
  exists,
  histRange,
  modelFingerprint,
  pct,
  repoPath,
  root,
  sweepSettings,
  writeAtomic,
} from './sweep-common.mjs';

const { SAMPLING_DEFAULTS_FILE, samplingDefaultsJson } = await import(
  new URL('../dist/pipelines/defaults.js', import.meta.url).href
);

const defaultOut = join(root, 'docs', 'autoguidance-sweep.json');
const { values: a } = parseArgs({
  options: {
    model: { type: 'string', default: 'mnist' },
    guide: { type: 'string' },
    w: { type: 'string', default: '1.5,2,2.5,3' },
    'max-t': { type: 'string', default: 'all,800,700,600' },
    n: { type: 'string', default: '1000' },
    seed: { type: 'string', default: '1' },
    sampler: { type: 'string' },
    steps: { type: 'string' },
    batch: { type: 'string' },
    threads: { type: 'string', default: 'auto' },
    classifier: { type: 'string' },
    classes: { type: 'string', default: '0.08,0.12' },
    'fd-factor': { type: 'string', default: '1.5' },
    out: { type: 'string', default: defaultOut },
    'write-default': { type: 'boolean', default: false },
  },
});
const { fail, ws, n, seed, out, base, settingArgs, evalArgs } = sweepSettings(a, 'autoguidance-sweep');
/** the model folder (written by --write-default) and its weights' fingerprint (results of other weights are refused) */
const { dir: modelDir, fingerprint } = await modelFingerprint(a.model).catch((e) => fail(e.message));
if (a.guide === undefined)
  fail('--guide DIR[,DIR…] is required (the weaker model: an early checkpoint, a smaller model)');
/** a guide as the results name it: relative to the repository when inside it (the JSON is committed) */
const rel = repoPath;
const guides = [...new Set(/** @type {string} */ (a.guide).split(',').map((g) => rel(resolve(g.trim()))))];
const maxTs = [...new Set(a['max-t'].split(',').map((s) => s.trim()))];
if (!maxTs.every((t) => t === 'all' || /^\d+$/.test(t)))
  fail(`--max-t must be 'all' or integers >= 0 separated by commas, found '${a['max-t']}'`);
const [lo, hi] = a.classes.split(',').map(Number);
const fdFactor = Number(a['fd-factor']);
if (!(lo >= 0 && hi <= 1 && lo < hi)) fail(`--classes must be two fractions lo,hi, found '${a.classes}'`);
if (!(fdFactor > 0)) fail(`--fd-factor must be > 0, found '${a['fd-factor']}'`);
const runner = evalRunner('autoguidance-sweep');

const FORMAT = 'ddpm-wasm.autoguidance-sweep-2';
/** @type {{ format: string, settings: Record<string, any> | null, trainingDigits: any, runs: any[], cells: any[] }} */
let results = { format: FORMAT, settings: null, trainingDigits: null, runs: [], cells: [] };
if (await exists(out)) {
  const prev = JSON.parse(await readFile(out, 'utf8'));
  if (prev.format === 'ddpm-wasm.autoguidance-sweep-1') {
    // one guide for the whole sweep (settings.guide): each guided cell names it now
    const g = rel(prev.settings.guide);
    for (const c of prev.cells) c.guide = c.scale === null ? null : g;
    const uniq = (xs) => [...new Set(xs)];
    const guided = prev.cells.filter((c) => c.scale !== null);
    prev.runs = [
      {
        guides: [g],
        w: uniq(guided.map((c) => c.scale)),
        maxT: uniq(guided.map((c) => (c.maxTimestep === null ? 'all' : String(c.maxTimestep)))),
      },
    ];
    delete prev.settings.guide;
    prev.format = FORMAT;
  }
  if (prev.format !== results.format) fail(`${out}: not an autoguidance sweep (format ${JSON.stringify(prev.format)})`);
  if (JSON.stringify(prev.settings?.args) !== JSON.stringify(settingArgs))
    fail(`${out}: holds a sweep with other settings; pass another --out or delete it`);
  checkFingerprint(prev, fingerprint, out, fail);
  results = prev;
}

// the model alone first (W = 1, every step: D_g + 1·(D − D_g) = D), then each guide × (W, T)
const cells = [
  { guide: null, w: null, maxT: null },
  ...guides.flatMap((guide) =>
    maxTs.flatMap((t) => ws.map((w) => ({ guide, w, maxT: t === 'all' ? null : Number(t) }))),
  ),
];
// each invocation that adds cells is kept (guides, W, T), so the table's reproduce line runs them all
const thisRun = { guides, w: ws, maxT: maxTs };
for (const { guide, w, maxT } of cells) {
  if (runner.state.stopping) break;
  if (results.cells.some((c) => c.guide === guide && c.scale === w && c.maxTimestep === maxT)) continue;
  if (!results.runs.some((x) => JSON.stringify(x) === JSON.stringify(thisRun))) results.runs.push(thisRun);
  const t0 = performance.now();
  const flags =
    w === null
      ? ['--autoguidance', 'off']
      : [
          '--guide',
          resolve(root, guide),
          '--autoguidance',
          String(w),
          '--autoguidance-max-t',
          maxT === null ? 'all' : String(maxT),
        ];
  const r = await runner.run([...evalArgs, '--nll-samples', '0', ...flags]);
  if (!r) break;
  results.settings = evalSettings(r, { settingArgs, n, seed }, fingerprint);
  results.trainingDigits = r.trainingDigits;
  const cell = {
    guide,
    scale: w,
    maxTimestep: maxT,
    confident: r.samples.confident,
    classHistogram: r.samples.classHistogram,
    frechetDistance: r.samples.frechetDistance,
    seconds: Math.round((performance.now() - t0) / 100) / 10,
  };
  results.cells.push(cell);
  results.cells.sort(
    (x, y) =>
      (x.guide ?? '').localeCompare(y.guide ?? '') ||
      (x.scale ?? -1) - (y.scale ?? -1) ||
      (y.maxTimestep ?? 1e9) - (x.maxTimestep ?? 1e9),
  );
  await writeAtomic(out, `${JSON.stringify(results, null, 2)}\n`);
  await writeAtomic(`${base}.md`, markdown(results));
  console.log(
    `${label(cell, true).padEnd(18)} confident ${pct(cell.confident)}  classes ${histRange(cell.classHistogram)}  Fréchet ${cell.frechetDistance.toFixed(3)}  (${cell.seconds} s)`,
  );
}
// written again at the end: a file of an earlier format is upgraded even when no cell was missing
if (results.settings) {
  await writeAtomic(out, `${JSON.stringify(results, null, 2)}\n`);
  await writeAtomic(`${base}.md`, markdown(results));
}
if (runner.state.stopping) {
  console.error(`interrupted: the finished cells are in ${out}; run the same command to continue`);
  process.exit(130);
}
const chosen = choose(results);
console.log(
  chosen ? `chosen: ${label(chosen, true)} (confident ${pct(chosen.confident)})` : 'chosen: none meets the constraints',
);
if (a['write-default']) {
  if (!chosen) fail('--write-default: no cell meets the constraints; nothing written');
  const dir = modelDir;
  const s = /** @type {Record<string, any>} */ (results.settings);
  // the guide goes inside the model's folder, so the folder (and the npm package) carries it
  const target = join(dir, 'guide');
  const guide = resolve(root, chosen.guide);
  if (resolve(target) !== guide) {
    await rm(target, { recursive: true, force: true });
    await mkdir(target, { recursive: true });
    for (const f of ['config.json', 'diffusion_pytorch_model.safetensors'])
      await cp(join(guide, f), join(target, f), { errorOnExist: false });
  }
  const text = samplingDefaultsJson({
    autoguidance: {
      guide: 'guide',
      scale: chosen.scale,
      ...(chosen.maxTimestep === null ? {} : { maxTimestep: chosen.maxTimestep }),
    },
    source: `scripts/autoguidance-sweep.mjs --n ${n} --seed ${seed} (${s.sampler}${s.karras ? ' karras' : ''} ${s.modelCalls} model calls; ${results.cells.length - 1} cells over ${guidesOf(results).length} guide(s), docs/autoguidance-sweep.md): the most confident cell with every class in [${lo}, ${hi}] and a Fréchet distance <= ${fdFactor}x the training digits'; see docs/autoguidance.md`,
  });
  await writeAtomic(join(dir, SAMPLING_DEFAULTS_FILE), text);
  console.log(`wrote ${join(dir, SAMPLING_DEFAULTS_FILE)} and ${target}/`);
}

/** The guides of the finished cells, in the table's order. */
function guidesOf(res) {
  return [...new Set(res.cells.filter((c) => c.guide !== null).map((c) => c.guide))];
}

/** `W 2, t <= 700`, after the guide's folder name when asked (the console; the table has a guide column). */
function label(c, withGuide = false) {
  if (c.scale === null) return 'model alone';
  const wt = `W ${c.scale}, t <= ${c.maxTimestep ?? 'all'}`;
  return withGuide ? `${c.guide.split('/').pop()}: ${wt}` : wt;
}

/** The most confident guided cell within the constraints (on a tie the first in the table: by guide, smaller W, longer interval); null if none. */
function choose(res) {
  const bound = fdFactor * res.trainingDigits.frechetDistance;
  const ok = res.cells.filter(
    (c) =>
      c.scale !== null &&
      Math.min(...c.classHistogram) >= lo &&
      Math.max(...c.classHistogram) <= hi &&
      c.frechetDistance <= bound,
  );
  return ok.reduce((best, c) => (best === null || c.confident > best.confident ? c : best), null);
}

function markdown(res) {
  const s = res.settings;
  const c0 = choose(res);
  const t = res.trainingDigits;
  const gs = guidesOf(res);
  // the classifier is a cache file: not part of the command
  const args = [
    ...s.args.filter((_, i) => s.args[i - 1] !== '--classifier' && s.args[i] !== '--classifier'),
    ...(out === defaultOut ? [] : ['--out', rel(out)]),
  ].join(' ');
  const lines = [
    `# Autoguidance sweep: ${rel(s.model)}, ${gs.length === 1 ? `guide ${gs[0]}` : `${gs.length} guides`}`,
    '',
    `\`ddpm eval --guide G --autoguidance W --autoguidance-max-t T\` for each cell: ${s.n} samples, ${s.sampler}${s.karras ? ' karras' : ''} ${s.modelCalls} model calls per sample (a guided step makes two), seed ${s.seed}. D = D_g + W·(D − D_g) at the timesteps t ≤ T, the model alone above. Chosen: the most confident cell with every class in [${pct(lo)}, ${pct(hi)}] and a Fréchet distance ≤ ${fdFactor} × the training digits' (${(fdFactor * t.frechetDistance).toFixed(3)}).`,
    '',
    '| guide | cell | confident ≥ 0.9 | classes min–max | Fréchet distance |',
    '|---|---|---|---|---|',
    ...res.cells.map((c) => {
      const b = c === c0 ? '**' : '';
      return `| ${c.guide ?? '–'} | ${b}${label(c)}${b} | ${b}${pct(c.confident)}${b} | ${histRange(c.classHistogram)} | ${c.frechetDistance.toFixed(3)} |`;
    }),
    `| – | training digits (${t.n}) | ${pct(t.confident)} | ${histRange(t.classHistogram)} | ${t.frechetDistance.toFixed(3)} |`,
    '',
    c0 ? `Chosen: **${label(c0, true)}** (${c0.guide}).` : 'No cell meets the constraints.',
    '',
    `Reproduce after \`npm run build\` (resumable; ${res.runs.length === 1 ? 'one command' : 'the commands in turn, the last with --write-default'}):`,
    '',
    ...res.runs.map(
      (x, i) =>
        `    node scripts/autoguidance-sweep.mjs --guide ${x.guides.join(',')} ${args} --w ${x.w.join(',')} --max-t ${x.maxT.join(',')}${i + 1 === res.runs.length ? ' --write-default' : ''}`,
    ),
    '',
  ];
  return lines.join('\n');
}
