// ddpm info: what the engine chose on this machine, and why.
import { Engine } from '../engine/engine.js';
import { choiceOption, parseCommand, threadsOption } from './args.js';

export const INFO_HELP = `usage: ddpm info [--threads N|auto] [--simd auto|simd|relaxed] [--json]

Creates an engine as a program would and prints what it chose and why.

  --json    one JSON object on stdout (runtime, version, build, simd, threads, fusedMadd, memoryLimit, why)`;

export async function infoCommand(argv: string[]): Promise<void> {
  const v = parseCommand(
    argv,
    { threads: { type: 'string' }, simd: { type: 'string' }, json: { type: 'boolean' } },
    INFO_HELP,
  );
  if (!v) return;
  const simd = choiceOption('simd', v.simd, 'auto', ['auto', 'simd', 'relaxed'] as const);
  const engine = await Engine.create({ threads: threadsOption(v.threads), simd });
  const i = engine.info;
  if (v.json) {
    const version = typeof process !== 'undefined' ? process.version : null;
    console.log(JSON.stringify({ ...i, version }));
    engine.dispose();
    return;
  }
  console.log(`runtime   ${i.runtime} ${typeof process !== 'undefined' ? process.version : ''}`);
  console.log(`build     ${i.build}`);
  console.log(`threads   ${i.threads}`);
  console.log(
    `fma       ${i.fusedMadd === null ? 'n/a (plain SIMD)' : i.fusedMadd ? 'relaxed_madd is fused' : 'relaxed_madd is not fused'}`,
  );
  console.log(`memory    limit ${(i.memoryLimit / 2 ** 30).toFixed(2)} GiB`);
  for (const w of i.why) console.log(`why       ${w}`);
  engine.dispose();
}
