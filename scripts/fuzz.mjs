#!/usr/bin/env node
// npm run fuzz -- --target safetensors|png|unet-config|scheduler-config|chain-state|checkpoint|all
//                 [--seconds S] [--seed K] [--out DIR]
// Seeded mutations of each target's seed inputs, each run in a child process with a capped heap and a
// timeout (test/fuzz/harness.mjs). Failing inputs go to DIR/<target>/ (default test/fuzz/failures), with a
// .txt saying why; exit code 1 if any. Runs the built library: `npm run build` first.
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { fuzz } from '../test/fuzz/harness.mjs';
import { EXTRA_TARGETS, TARGET_NAMES } from '../test/fuzz/targets.mjs';

const { values } = parseArgs({
  options: {
    target: { type: 'string', default: 'all' },
    seconds: { type: 'string', default: '10' },
    seed: { type: 'string', default: '1' },
    out: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
  strict: true,
});
if (values.help) {
  console.log(
    `usage: npm run fuzz -- --target ${[...TARGET_NAMES, ...EXTRA_TARGETS].join('|')}|all [--seconds S] [--seed K] [--out DIR]`,
  );
  process.exit(0);
}
const targets = values.target === 'all' ? TARGET_NAMES : values.target.split(',');
for (const t of targets) {
  if (!TARGET_NAMES.includes(t) && !EXTRA_TARGETS.includes(t)) {
    console.error(`fuzz: unknown target '${t}' (one of ${[...TARGET_NAMES, ...EXTRA_TARGETS].join(', ')}, all)`);
    process.exit(2);
  }
}
const seconds = Number(values.seconds);
const seed = Number(values.seed);
if (!(seconds > 0) || !Number.isInteger(seed) || seed < 0) {
  console.error('fuzz: --seconds must be > 0 and --seed an integer >= 0');
  process.exit(2);
}
const failuresDir = values.out ?? fileURLToPath(new URL('../test/fuzz/failures', import.meta.url));

let failed = 0;
for (const target of targets) {
  const r = await fuzz({ target, seconds, seed, failuresDir, log: (m) => console.error(`  ${m}`) });
  failed += r.failures.length;
  console.log(
    `${target}: ${r.inputs} inputs in ${seconds} s (${r.ok} accepted, ${r.typed} typed errors), ${r.failures.length} failure(s)${r.failures.length ? ` → ${failuresDir}/${target}/` : ''}`,
  );
}
process.exit(failed ? 1 : 0);
