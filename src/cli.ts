#!/usr/bin/env node
// The `ddpm` command. Errors a user can cause are one line on stderr and exit code 1, never a stack trace.
import { parseArgs } from 'node:util';
import { DdpmError } from './errors.js';
import { Engine } from './engine/engine.js';

const HELP: Record<string, string> = {
  '': `usage: ddpm <command> [options]

commands:
  info     print the runtime, the Wasm build chosen (SIMD / relaxed SIMD, threads) and why

Run 'ddpm <command> --help' for a command's options.`,
  info: `usage: ddpm info [--threads N|auto] [--simd auto|simd|relaxed]

Creates an engine as a program would and prints what it chose and why.`,
};

async function info(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { threads: { type: 'string', default: 'auto' }, simd: { type: 'string', default: 'auto' }, help: { type: 'boolean' } },
    strict: true,
  });
  if (values.help) return void console.log(HELP.info);
  const threads = values.threads === 'auto' ? 'auto' : Number(values.threads);
  const engine = await Engine.create({ threads, simd: values.simd as 'auto' | 'simd' | 'relaxed' });
  const i = engine.info;
  console.log(`runtime   ${i.runtime} ${typeof process !== 'undefined' ? process.version : ''}`);
  console.log(`build     ${i.build}`);
  console.log(`threads   ${i.threads}`);
  console.log(`fma       ${i.fusedMadd === null ? 'n/a (plain SIMD)' : i.fusedMadd ? 'relaxed_madd is fused' : 'relaxed_madd is not fused'}`);
  console.log(`memory    limit ${(i.memoryLimit / 2 ** 30).toFixed(2)} GiB`);
  for (const w of i.why) console.log(`why       ${w}`);
  engine.dispose();
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h') return void console.log(HELP['']);
  if (command === 'info') return info(rest);
  throw new DdpmError('INVALID_ARGUMENT', `unknown command '${command}' (try 'ddpm --help')`);
}

main(process.argv.slice(2)).catch((e: unknown) => {
  const userError = e instanceof DdpmError || (e as { code?: string })?.code?.startsWith?.('ERR_PARSE_ARGS');
  console.error(`ddpm: ${userError ? (e as Error).message : (e as Error)?.stack ?? String(e)}`);
  process.exitCode = 1;
});
