#!/usr/bin/env node
// Classifier-free guidance sweep for a class-conditional MNIST model: `ddpm eval --per-class --guidance W`
// for each W (sample i asks for digit i mod 10), then a table of W against the per-class accuracy (fraction
// classified as the digit asked for), the confident fractions and the Fréchet distance of the class-mixed
// samples. With --write-default, the chosen W — the smallest whose per-class accuracy reaches --target, else
// the most accurate — is stored in the model's sampling_defaults.json, which `ddpm sample --class K` and
// DDPMPipeline.run({ classLabels }) then use when no guidance is given.
//
//   npm run build && node scripts/guidance-sweep.mjs [--model mnist-cond] [--w 0,0.5,1,1.5,2,3,4]
//     [--n 1000] [--seed 0] [--sampler S] [--steps N] [--batch B] [--threads N|auto] [--classifier FILE]
//     [--target 0.97] [--out docs/guidance-sweep.json] [--write-default]
//
// Each W is one `ddpm eval` process, so the numbers are exactly the command's. Resumable: each finished W is
// written to the JSON at once (and the markdown table beside it), and a rerun with the same settings skips
// the W already there. Ctrl-C stops the running eval (which writes nothing) and keeps the finished ones.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  checkFingerprint,
  evalRunner,
  evalSettings,
  exists,
  histRange as hist,
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

const { values: a } = parseArgs({
  options: {
    model: { type: 'string', default: 'mnist-cond' },
    w: { type: 'string', default: '0,0.5,1,1.5,2,3,4' },
    n: { type: 'string', default: '1000' },
    seed: { type: 'string', default: '0' },
    sampler: { type: 'string' },
    steps: { type: 'string' },
    batch: { type: 'string' },
    threads: { type: 'string', default: 'auto' },
    classifier: { type: 'string' },
    target: { type: 'string', default: '0.97' },
    out: { type: 'string', default: join(root, 'docs', 'guidance-sweep.json') },
    'write-default': { type: 'boolean', default: false },
  },
});
const { fail, ws, n, seed, out, base, settingArgs, evalArgs } = sweepSettings(a, 'guidance-sweep');
/** the model folder (written by --write-default) and its weights' fingerprint (results of other weights are refused) */
const { dir: modelDir, fingerprint } = await modelFingerprint(a.model).catch((e) => fail(e.message));
const target = Number(a.target);
if (!(target > 0 && target <= 1)) fail(`--target must be in (0, 1], found '${a.target}'`);

const runner = evalRunner('guidance-sweep');
/** One `ddpm eval --per-class --guidance W` (progress on stderr): its JSON, or null when interrupted. */
const evalAt = (w) => runner.run([...evalArgs, '--per-class', '--guidance', String(w), '--nll-samples', '0']);

/** @type {{ format: string, settings: Record<string, unknown> | null, trainingDigits: any, cells: any[] }} */
let results = { format: 'ddpm-wasm.guidance-sweep-1', settings: null, trainingDigits: null, cells: [] };
if (await exists(out)) {
  const prev = JSON.parse(await readFile(out, 'utf8'));
  if (prev.format !== results.format) fail(`${out}: not a guidance sweep (format ${JSON.stringify(prev.format)})`);
  if (JSON.stringify(prev.settings?.args) !== JSON.stringify(settingArgs))
    fail(
      `${out}: holds a sweep with other settings (${JSON.stringify(prev.settings?.args)}, now ${JSON.stringify(settingArgs)}); pass another --out or delete it`,
    );
  checkFingerprint(prev, fingerprint, out, fail);
  results = prev;
}

for (const w of ws) {
  if (runner.state.stopping) break;
  if (results.cells.some((c) => c.guidanceScale === w)) continue;
  const t0 = performance.now();
  const r = await evalAt(w);
  if (!r) break;
  // what the flags resolved to, as the eval reports it
  results.settings = evalSettings(r, { settingArgs, n, seed }, fingerprint);
  results.trainingDigits = r.trainingDigits;
  const cell = {
    guidanceScale: w,
    perClassAccuracy: r.perClass.meanAccuracy,
    perClassConfident: r.perClass.meanConfident,
    classes: r.perClass.classes,
    confident: r.samples.confident,
    classHistogram: r.samples.classHistogram,
    frechetDistance: r.samples.frechetDistance,
    seconds: Math.round((performance.now() - t0) / 100) / 10,
  };
  results.cells.push(cell);
  results.cells.sort((x, y) => x.guidanceScale - y.guidanceScale);
  await writeAtomic(out, `${JSON.stringify(results, null, 2)}\n`);
  await writeAtomic(`${base}.md`, markdown(results));
  console.log(
    `W ${String(w).padEnd(4)} per-class accuracy ${pct(cell.perClassAccuracy)}  confident ${pct(cell.confident)}  Fréchet ${cell.frechetDistance.toFixed(3)}  (${cell.seconds} s)`,
  );
}
if (runner.state.stopping) {
  console.error(`interrupted: the finished W are in ${out}; run the same command to continue`);
  process.exit(130);
}
// one choice for the console, --write-default and the markdown: over every W in the results file
const chosen = choose(results.cells);
const allW = results.cells.map((c) => c.guidanceScale).sort((x, y) => x - y);
console.log(
  `chosen: W = ${chosen.guidanceScale} (per-class accuracy ${pct(chosen.perClassAccuracy)}${chosen.perClassAccuracy >= target ? `, the smallest W reaching ${pct(target)}` : `, the best; none reached ${pct(target)}`})`,
);
if (a['write-default']) {
  const dir = modelDir;
  const file = join(dir, SAMPLING_DEFAULTS_FILE);
  const s = /** @type {Record<string, any>} */ (results.settings);
  const text = samplingDefaultsJson({
    guidanceScale: chosen.guidanceScale,
    perClassAccuracy: Math.round(chosen.perClassAccuracy * 1e4) / 1e4,
    source: `scripts/guidance-sweep.mjs --n ${n} --seed ${seed} (${s.sampler}${s.karras ? ' karras' : ''} ${s.modelCalls} model calls; W in ${allW.join(', ')}): ${chosen.perClassAccuracy >= target ? `the smallest W with per-class accuracy >= ${target}` : `the most accurate W (none reached ${target})`}; see docs/guidance-sweep.md`,
  });
  await writeAtomic(file, text);
  console.log(`wrote ${file}`);
}

/** The smallest W reaching the target, else the most accurate (the smaller W on a tie). */
function choose(cells) {
  const byW = [...cells].sort((x, y) => x.guidanceScale - y.guidanceScale);
  const ok = byW.filter((c) => c.perClassAccuracy >= target);
  if (ok.length) return ok[0];
  return byW.reduce((best, c) => (c.perClassAccuracy > best.perClassAccuracy ? c : best));
}

/** The sweep's flags for the markdown's command line: the model as a path from the repository, no classifier file. */
function reproduceArgs(args, model) {
  const parts = [];
  for (let i = 0; i < args.length; i += 2) {
    if (args[i] === '--classifier') continue;
    parts.push(args[i], args[i] === '--model' ? model : args[i + 1]);
  }
  return parts.join(' ');
}

function markdown(res) {
  const s = res.settings;
  const c0 = choose(res.cells);
  const t = res.trainingDigits;
  const model = repoPath(s.model);
  const lines = [
    `# Classifier-free guidance sweep: ${model}`,
    '',
    `\`ddpm eval --per-class --guidance W\` for each W: ${s.n} samples (sample i asks for digit i mod 10), ${s.sampler}${s.karras ? ' karras' : ''} ${s.modelCalls} model calls per sample per label (guidance doubles them), seed ${s.seed}. ε = ε_u + W·(ε_c − ε_u): W = 0 is the unconditional model, W = 1 the conditional one. Per-class accuracy: the fraction the digit classifier assigns to the digit asked for, averaged over the 10 digits; confident: top probability ≥ 0.9; the Fréchet distance is that of the classifier's features of all the samples together to the held-out digits' (as \`ddpm eval\`).`,
    '',
    '| W | per-class accuracy | worst digit | confident (per class) | confident ≥ 0.9 | classes min–max | Fréchet distance |',
    '|---|---|---|---|---|---|---|',
    ...res.cells.map((c) => {
      const worst = c.classes.reduce((w, k) => (k.accuracy < w.accuracy ? k : w));
      return `| ${c.guidanceScale}${c.guidanceScale === 0 ? ' (unconditional)' : c.guidanceScale === 1 ? ' (conditional)' : ''} | ${c === c0 ? '**' : ''}${pct(c.perClassAccuracy)}${c === c0 ? '**' : ''} | ${pct(worst.accuracy)} (${worst.label}) | ${pct(c.perClassConfident)} | ${pct(c.confident)} | ${hist(c.classHistogram)} | ${c.frechetDistance.toFixed(3)} |`;
    }),
    ...(t
      ? [
          `| training digits (${t.n}) | – | – | – | ${pct(t.confident)} | ${hist(t.classHistogram)} | ${t.frechetDistance.toFixed(3)} |`,
        ]
      : []),
    '',
    'Per digit (fraction classified as the digit asked for):',
    '',
    `| W | ${[...Array(10).keys()].join(' | ')} |`,
    `|---|${[...Array(10)].map(() => '---').join('|')}|`,
    ...res.cells.map((c) => `| ${c.guidanceScale} | ${c.classes.map((k) => pct(k.accuracy)).join(' | ')} |`),
    '',
    `Chosen: **W = ${c0.guidanceScale}**, ${c0.perClassAccuracy >= target ? `the smallest W whose per-class accuracy reaches ${pct(target)}` : `the most accurate (none reached ${pct(target)})`}.`,
    '',
    `Reproduce: \`npm run build && node scripts/guidance-sweep.mjs ${reproduceArgs(s.args, model)} --w ${res.cells.map((c) => c.guidanceScale).join(',')} --write-default\` (resumable; docs/conditional.md).`,
    '',
  ];
  return lines.join('\n');
}
