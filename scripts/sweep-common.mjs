// What the eval sweeps (scripts/guidance-sweep.mjs, scripts/autoguidance-sweep.mjs) share: one `ddpm eval`
// process per cell — so each cell's numbers are exactly the command's — with Ctrl-C forwarded, atomic writes
// of the resumable results, and the table helpers.
import { spawn } from 'node:child_process';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const cli = join(root, 'dist', 'cli.js');

/** Writes `text` under a temporary name and renames it into place. */
export async function writeAtomic(file, text) {
  await mkdir(dirname(file), { recursive: true });
  await writeFile(`${file}.${process.pid}.tmp`, text);
  await rename(`${file}.${process.pid}.tmp`, file);
}

export const exists = (file) =>
  stat(file).then(
    (s) => s.isFile(),
    () => false,
  );

/**
 * Runs `ddpm eval` cells one at a time. Ctrl-C reaches the eval too (same process group); it is forwarded
 * in case it was sent to this process alone, and `stopping` turns true.
 */
export function evalRunner(name) {
  /** @type {import('node:child_process').ChildProcess | null} */
  let child = null;
  const state = { stopping: false };
  process.on('SIGINT', () => {
    state.stopping = true;
    child?.kill('SIGINT');
  });
  /** `ddpm eval ...args --json F` (progress on stderr): its JSON, or null when interrupted. */
  async function run(args) {
    const json = join(tmpdir(), `ddpm-${name}-${process.pid}-${Date.now()}.json`);
    const all = [cli, 'eval', ...args, '--json', json];
    const code = await new Promise((res, rej) => {
      child = spawn(process.execPath, all, { stdio: ['ignore', 'ignore', 'inherit'] });
      child.on('error', rej);
      child.on('exit', (c, signal) => res(c ?? (signal ? 130 : 1)));
    });
    child = null;
    if (code === 130 || state.stopping) return null;
    if (code !== 0) {
      console.error(`${name}: ddpm eval failed (exit code ${code}): node ${all.join(' ')}`);
      process.exit(1);
    }
    const r = JSON.parse(await readFile(json, 'utf8'));
    await rm(json, { force: true });
    return r;
  }
  return { run, state };
}

export function pct(x) {
  return `${(100 * x).toFixed(1)}%`;
}

/** `8.2% (5) – 12.6% (1)`: the rarest and the commonest class. */
export function histRange(h) {
  const lo = h.indexOf(Math.min(...h)),
    hi = h.indexOf(Math.max(...h));
  return `${pct(h[lo])} (${lo}) – ${pct(h[hi])} (${hi})`;
}

/**
 * The flags both sweeps share, checked: --w (a sorted list of scales in [0, 100]), --n, --seed, --out; and the
 * eval flags that fix the numbers (a rerun must repeat them; --threads and --batch do not change a bit).
 */
export function sweepSettings(a, name) {
  const fail = (msg) => {
    console.error(`${name}: ${msg}`);
    process.exit(1);
  };
  const ws = [...new Set(a.w.split(',').map((s) => Number(s.trim())))].sort((x, y) => x - y);
  if (!ws.length || !ws.every((w) => Number.isFinite(w) && w >= 0 && w <= 100))
    fail(`--w must be numbers in [0, 100] separated by commas, found '${a.w}'`);
  const n = Number(a.n),
    seed = Number(a.seed);
  if (!Number.isInteger(n) || n < 10) fail(`--n must be an integer >= 10, found '${a.n}'`);
  if (!Number.isInteger(seed) || seed < 0) fail(`--seed must be an integer >= 0, found '${a.seed}'`);
  const out = resolve(a.out);
  const settingArgs = ['--model', a.model, '--n', String(n), '--seed', String(seed)];
  for (const k of ['sampler', 'steps', 'classifier']) if (a[k] !== undefined) settingArgs.push(`--${k}`, a[k]);
  const evalArgs = [...settingArgs, '--threads', a.threads, ...(a.batch === undefined ? [] : ['--batch', a.batch])];
  return { fail, ws, n, seed, out, base: out.replace(/\.json$/, ''), settingArgs, evalArgs };
}

/** What a cell's flags resolved to, from one `ddpm eval --json` result: the settings every cell shares. */
export function evalSettings(r, { settingArgs, n, seed }) {
  return {
    args: settingArgs,
    model: r.model,
    n,
    seed,
    sampler: r.sampler,
    karras: r.karras,
    steps: r.steps,
    modelCalls: r.modelCalls,
    eta: r.eta,
    classifier: r.classifier.file,
  };
}
