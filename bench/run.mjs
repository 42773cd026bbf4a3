// npm run bench [-- --quick] [-- --only gemm|conv2d|dispatch|unet_forward|train_step|networks] [-- --threads 1|2]
//               [-- --net mnist|cifar-like|ddpm-cifar10] [-- --op forward|train_step]   (whole networks, bench/networks.mjs)
// Runs ddpm-wasm's kernels (builds simd and relaxed) and the peers (tfjs-backend-wasm, onnxruntime-web) on
// the same shapes with 1 and 2 threads, one child process per (implementation, threads[, build]) and one
// at a time, then writes bench/results/latest.json and prints a table. See bench/README.md.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUSY_ELSEWHERE, STARVED, disturbed, parseArgs, parseRows } from './common.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const opts = parseArgs(process.argv.slice(2));
if (opts.help) {
  console.log(
    'usage: npm run bench [-- --quick] [-- --only gemm|conv2d|dispatch|unet_forward|train_step|networks] [-- --threads N] [-- --net mnist|cifar-like|ddpm-cifar10] [-- --op forward|train_step]   (details: bench/README.md)',
  );
  process.exit(0);
}

const THREADS = opts.threads ? [opts.threads] : [1, 2];
const CHILD_TIMEOUT_S = opts.quick ? 300 : 900;
const BUILDS = ['simd', 'relaxed'];
const children = [];
const MODEL_OPS = ['unet_forward', 'train_step'];
for (const threads of THREADS) {
  if (opts.only === 'networks') {
    const args = ['--threads', threads];
    if (opts.net) args.push('--net', opts.net);
    if (opts.op) args.push('--op', opts.op);
    children.push({ script: 'networks.mjs', args, own: true });
    continue;
  }
  if (opts.only === null || !MODEL_OPS.includes(opts.only)) {
    for (const build of BUILDS) children.push({ script: 'ours.mjs', args: ['--threads', threads, '--build', build] });
    if (opts.only !== 'dispatch') {
      children.push({ script: 'tfjs-peer.mjs', args: ['--threads', threads] });
      children.push({ script: 'ort-peer.mjs', args: ['--threads', threads] });
    }
  }
  // whole-model figures (ours only), on the default build of Node (relaxed SIMD)
  if (opts.only === null || MODEL_OPS.includes(opts.only))
    children.push({ script: 'models.mjs', args: ['--threads', threads, '--build', 'relaxed'] });
  // whole networks against onnxruntime-web/-node and PyTorch on our ONNX export (bench/networks.mjs)
  if (opts.only === null) children.push({ script: 'networks.mjs', args: ['--threads', threads], own: true });
}

/**
 * Runs one child to completion; its stderr (progress) passes through, its stdout carries the rows.
 * @param {{ script: string, args: (string | number)[], own?: boolean }} child
 */
function runChild({ script, args, own }) {
  const argv = ['--expose-gc', path.join(here, script), ...args.map(String)];
  if (opts.quick) argv.push('--quick');
  if (opts.only && !own) argv.push('--only', opts.only);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
    // A hung child (a stalled pool) must not stall the run: stop it, keep what it reported.
    const timer = setTimeout(() => {
      console.error(`! ${script} ${args.join(' ')} still running after ${CHILD_TIMEOUT_S} s: stopping it`);
      child.kill('SIGKILL');
    }, CHILD_TIMEOUT_S * 1000);
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d) => (out += d));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const rows = parseRows(out);
      if (code !== 0)
        console.error(`! ${script} ${args.join(' ')} exited with ${signal ?? code}; keeping its ${rows.length} row(s)`);
      resolve(rows);
    });
  });
}

/** The commit measured (+ '-dirty' with local changes other than results), or null outside git. */
function gitRevision() {
  try {
    const git = (...a) =>
      execFileSync('git', a, { cwd: here, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return (
      git('rev-parse', '--short', 'HEAD') +
      (git('status', '--porcelain', '--untracked-files=no', '--', ':/', ':(exclude,top)bench/results') ? '-dirty' : '')
    );
  } catch {
    return null;
  }
}

const revision = gitRevision();
const started = Date.now();
const rows = [];
for (const c of children) rows.push(...(await runChild(c)));
const seconds = (Date.now() - started) / 1000;

// Cross-check: every implementation must compute the same output (checksums agree to float32 rounding).
const warnings = [];
const byCase = new Map();
for (const r of rows) {
  const key = `${r.op}|${r.shape}|${r.threads}`;
  if (!byCase.has(key)) byCase.set(key, []);
  byCase.get(key).push(r);
}
for (const [key, rs] of byCase) {
  const checked = rs.filter((r) => r.check);
  for (const r of checked.slice(1)) {
    const ref = checked[0];
    if (Math.abs(r.check.sum - ref.check.sum) > 1e-4 * ref.check.abs) {
      warnings.push(
        `${key}: ${r.impl}${r.build ? ` ${r.build}` : ''} output differs from ${ref.impl}${ref.build ? ` ${ref.build}` : ''} (checksum ${r.check.sum} vs ${ref.check.sum})`,
      );
    }
  }
}

// Results: the agreed record, plus the details (samples, CPU share, machine load, checksums) beside it.
const results = rows.map(({ op, shape, threads, build, impl, gflops, us, imagesPerSecond, relErr }) => ({
  op,
  shape,
  threads,
  build,
  impl,
  gflops,
  us,
  ...(imagesPerSecond === undefined ? {} : { images_per_s: imagesPerSecond }),
  ...(relErr === undefined ? {} : { rel_err: relErr }),
}));
const resultsDir = path.join(here, 'results');
mkdirSync(resultsDir, { recursive: true });
writeFileSync(path.join(resultsDir, 'latest.json'), JSON.stringify(results, null, 2) + '\n');
writeFileSync(
  path.join(resultsDir, 'latest-details.json'),
  JSON.stringify(
    {
      date: new Date().toISOString(),
      revision,
      quick: opts.quick,
      node: process.version,
      cpu: os.cpus()[0]?.model ?? null,
      cores: os.cpus().length,
      seconds,
      warnings,
      rows,
    },
    null,
    2,
  ) + '\n',
);

// Table: one line per op/shape/threads; GFLOP/s (dispatch: µs per call); ratio = best ours / best peer.
const COLS = [
  { title: 'ours simd', pick: (r) => r.impl === 'ddpm-wasm' && r.build === 'simd' },
  { title: 'ours relaxed', pick: (r) => r.impl === 'ddpm-wasm' && r.build === 'relaxed' },
  { title: 'tfjs-wasm', pick: (r) => r.impl === 'tfjs-wasm' },
  { title: 'ort-web', pick: (r) => r.impl === 'ort-web' },
];
const lines = [];
const head = ['op', 'shape', 'thr', 'unit', ...COLS.map((c) => c.title), 'ours/best peer'];
lines.push(head);
let anyDisturbed = false;
const NETWORK_OPS = ['net_forward', 'net_train_step', 'fma_ceiling'];
for (const rs of byCase.values()) {
  const r0 = rs[0];
  if (NETWORK_OPS.includes(r0.op)) continue;
  const isTime = r0.op !== 'gemm' && r0.op !== 'conv2d'; // dispatch, unet_forward, train_step: µs per call
  const value = (r) => (r ? (isTime ? r.us : r.gflops) : null);
  const cells = COLS.map((c) => {
    const r = rs.find(c.pick);
    const v = value(r);
    if (v === null || v === undefined) return r ? 'n/a' : '-';
    const mark = disturbed(r, r.threads);
    anyDisturbed ||= mark;
    return v.toFixed(1) + (mark ? '*' : '');
  });
  const best = (pred) => {
    const vs = rs
      .filter(pred)
      .map(value)
      .filter((v) => typeof v === 'number');
    return vs.length ? (isTime ? Math.min(...vs) : Math.max(...vs)) : null;
  };
  const ours = best((r) => r.impl === 'ddpm-wasm');
  const peer = best((r) => r.impl !== 'ddpm-wasm');
  const ratio = ours !== null && peer !== null ? (isTime ? peer / ours : ours / peer).toFixed(2) : '';
  lines.push([r0.op, r0.shape, String(r0.threads), isTime ? 'µs' : 'GFLOP/s', ...cells, ratio]);
}
function printTable(ls) {
  const widths = ls[0].map((_, i) => Math.max(...ls.map((l) => l[i].length)));
  const fmt = (l) => l.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  console.log('');
  console.log(fmt(ls[0]));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const l of ls.slice(1)) console.log(fmt(l));
  console.log('');
}
if (lines.length > 1) printTable(lines);

// Whole networks: ms per call (median over interleaved rounds), ratios peer/ours (> 1: ours is faster),
// our effective GFLOP/s and its share of the FMA ceiling measured in the same child.
const netRows = rows.filter((r) => r.op === 'net_forward' || r.op === 'net_train_step');
if (netRows.length) {
  const PEERS = ['ort-web', 'ort-node', 'pytorch'];
  const net = [
    [
      'network',
      'op',
      'thr',
      'ours ms',
      ...PEERS.map((p) => `${p} ms`),
      ...PEERS.map((p) => `${p}/ours`),
      'ours GFLOP/s',
      '% FMA ceiling',
      'max rel err',
    ],
  ];
  for (const rs of byCase.values()) {
    const r0 = rs[0];
    if (r0.op !== 'net_forward' && r0.op !== 'net_train_step') continue;
    const ours = rs.find((r) => r.impl === 'ddpm-wasm');
    const ceiling = rows.find((r) => r.op === 'fma_ceiling' && r.threads === r0.threads)?.gflops;
    const ms = (r) => (r ? (r.us / 1000).toFixed(r.us < 1e4 ? 2 : 1) : '–');
    net.push([
      r0.shape,
      r0.op === 'net_forward' ? 'forward' : 'train step',
      String(r0.threads),
      ms(ours),
      ...PEERS.map((p) => ms(rs.find((r) => r.impl === p))),
      ...PEERS.map((p) => {
        const r = rs.find((x) => x.impl === p);
        return r && ours ? (r.us / ours.us).toFixed(2) : '–';
      }),
      ours ? ours.gflops.toFixed(1) : '–',
      ours && ceiling ? `${((100 * ours.gflops) / ceiling).toFixed(0)}%` : '–',
      Math.max(...rs.map((r) => r.relErr ?? 0)).toExponential(1),
    ]);
  }
  printTable(net);
  for (const c of rows.filter((r) => r.op === 'fma_ceiling'))
    console.log(
      `FMA ceiling, ${c.shape}: ${c.gflops.toFixed(1)} GFLOP/s (12-accumulator relaxed_madd loop, best of before/after the cases)`,
    );
  const load = netRows.map((r) => r.otherLoad).filter((v) => typeof v === 'number');
  if (load.length)
    console.log(
      `other processes kept ${Math.min(...load).toFixed(1)}–${Math.max(...load).toFixed(1)} cores busy meanwhile (PyTorch's own process counts as other)`,
    );
}
const notes = [
  ...new Set(rows.filter((r) => r.note).map((r) => `${r.impl}${r.build ? ` ${r.build}` : ''}: ${r.note}`)),
];
for (const n of notes) console.log(`n/a  ${n}`);
if (anyDisturbed)
  console.log(
    `*    disturbed: the process got < ${STARVED * 100}% of its threads' CPU time, or other processes kept > ${BUSY_ELSEWHERE} core busy, even on a second try: noisy`,
  );
for (const w of warnings) console.log(`!    ${w}`);
console.log(
  `ratio: best ddpm-wasm figure / best peer figure (> 1: ours is faster; dispatch, unet_forward and train_step have no peer)`,
);
console.log(
  `${rows.length} rows in ${seconds.toFixed(0)} s → ${path.relative(process.cwd(), path.join(resultsDir, 'latest.json'))}`,
);
