// ddpm info: what the engine chose on this machine, and why.
import { Engine } from '../engine/engine.js';
import { choiceOption, parseCommand, threadsOption } from './args.js';

export const INFO_HELP = `usage: ddpm info [--threads N|auto] [--simd auto|simd|relaxed]

Creates an engine as a program would and prints what it chose and why.`;

export async function infoCommand(argv: string[]): Promise<void> {
  const v = parseCommand(argv, { threads: { type: 'string' }, simd: { type: 'string' } }, INFO_HELP);
  if (!v) return;
  const simd = choiceOption('simd', v.simd, 'auto', ['auto', 'simd', 'relaxed'] as const);
  const engine = await Engine.create({ threads: threadsOption(v.threads), simd });
  const i = engine.info;
  console.log(`runtime   ${i.runtime} ${typeof process !== 'undefined' ? process.version : ''}`);
  console.log(`build     ${i.build}`);
  console.log(`threads   ${i.threads}`);
  console.log(`fma       ${i.fusedMadd === null ? 'n/a (plain SIMD)' : i.fusedMadd ? 'relaxed_madd is fused' : 'relaxed_madd is not fused'}`);
  console.log(`memory    limit ${(i.memoryLimit / 2 ** 30).toFixed(2)} GiB`);
  for (const w of i.why) console.log(`why       ${w}`);
  engine.dispose();
}
