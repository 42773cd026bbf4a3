// What the eval sweeps (scripts/guidance-sweep.mjs, scripts/autoguidance-sweep.mjs) share: one `ddpm eval`
// process per cell — so each cell's numbers are exactly the command's — with Ctrl-C forwarded, atomic writes
// of the resumable results, and the table helpers.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const cli = join(root, 'dist', 'cli.js');

/** A path as committed results name it: relative to the repository when inside it (else as given). */
export function repoPath(p) {
  if (!isAbsolute(p)) return p;
  const r = relative(root, p);
  return r && !r.startsWith('..') && !isAbsolute(r) ? r : p;
}

/** The network files a sweep's numbers depend on (a diffusers pipeline folder keeps them in unet/ and scheduler/). */
const NETWORK_FILE = /^(config\.json|scheduler_config\.json|model_index\.json|[^/]*\.safetensors)$/;

/**
 * What a results file is of: the model folder (`--model` resolved as `ddpm eval` does: a folder or a shipped
 * name) and a fingerprint, the sha256 of its network's files (config, scheduler config, weights; in unet/ and
 * scheduler/ too). With `withDefaults` it also covers sampling_defaults.json and the guide/ folder (what a
 * default `ddpm eval` samples with). Sweeps keep it in their settings so that results of a model that has
 * since been retrained are refused, not reused: the path alone says nothing about the weights.
 */
export async function modelFingerprint(modelArg, { withDefaults = false } = {}) {
  const { resolveModelDir } = await import(new URL('../dist/cli/files.js', import.meta.url).href);
  const dir = await resolveModelDir(modelArg);
  const h = createHash('sha256');
  const add = async (sub) => {
    const names = (await readdir(join(dir, sub), { withFileTypes: true })).sort((x, y) =>
      x.name < y.name ? -1 : x.name > y.name ? 1 : 0,
    );
    for (const e of names) {
      const rel = sub ? `${sub}/${e.name}` : e.name;
      if (e.isDirectory() && (['unet', 'scheduler'].includes(rel) || (withDefaults && rel === 'guide'))) await add(rel);
      else if (e.isFile() && (NETWORK_FILE.test(e.name) || (withDefaults && rel === 'sampling_defaults.json'))) {
        h.update(`${rel}\0`);
        h.update(await readFile(join(dir, rel)));
        h.update('\0');
      }
    }
  };
  await add('');
  return { dir, fingerprint: h.digest('hex') };
}

/**
 * Refuses (fail) a results file of other weights than `fingerprint`, or of no recorded weights at all (a file
 * written before fingerprints: its model may have been retrained since).
 */
export function checkFingerprint(prev, fingerprint, out, fail) {
  const found = prev.settings?.fingerprint;
  if (found === fingerprint) return;
  fail(
    found === undefined
      ? `${out}: records no fingerprint of its model's weights, so it may be of an earlier model; delete it (or pass another --out) to measure again`
      : `${out}: was measured on other weights of ${prev.settings?.model} (fingerprint ${String(found).slice(0, 12)}…, now ${fingerprint.slice(0, 12)}…): the model changed since; delete it or pass another --out`,
  );
}

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
export function evalSettings(r, { settingArgs, n, seed }, fingerprint) {
  return {
    args: settingArgs,
    model: repoPath(r.model),
    fingerprint,
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
