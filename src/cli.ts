#!/usr/bin/env node
// The `ddpm` command. Errors a user can cause are one line on stderr and exit code 1, never a stack trace.
import { DdpmError } from './errors.js';
import { infoCommand } from './cli/info.js';
import { sampleCommand } from './cli/sample.js';
import { trainCommand } from './cli/train.js';
import { nllCommand } from './cli/nll.js';
import { benchCommand } from './cli/bench.js';
import { evalCommand } from './cli/eval.js';
import { closest } from './cli/suggest.js';
import { packageVersion } from './cli/version.js';
import { exportCommand } from './cli/export.js';

const HELP = `usage: ddpm <command> [options]

commands:
  sample   draw samples from a model folder into a PNG grid
  train    train a model on MNIST, a 2-D toy set or a folder of PNGs; resumable; exports a diffusers folder
  nll      the variational bound on the negative log-likelihood, in bits/dim
  bench    GEMM, conv2d and U-Net forward speed on this machine, 1 and N threads
  info     print the runtime, the Wasm build chosen (SIMD / relaxed SIMD, threads) and why
  eval     quality numbers for an MNIST model: classifier confidence, class balance, Fréchet distance, bits/dim
  export   write a model folder as ONNX (onnxruntime, WebGPU, WebNN)

Run 'ddpm help <command>' (or 'ddpm <command> --help') for a command's options, 'ddpm --version' for the
version.`;

const COMMANDS: Record<string, (argv: string[]) => Promise<void>> = {
  sample: sampleCommand,
  train: trainCommand,
  nll: nllCommand,
  eval: evalCommand,
  bench: benchCommand,
  info: infoCommand,
  export: exportCommand,
};

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h') return void console.log(HELP);
  if (command === '--version' || command === '-V') {
    const { name, version } = packageVersion();
    return void console.log(`${name} ${version}`);
  }
  if (command === 'help') {
    // `ddpm help sample` is `ddpm sample --help`
    if (rest.length === 0) return void console.log(HELP);
    return commandNamed(rest[0])(['--help']);
  }
  return commandNamed(command)(rest);
}

function commandNamed(name: string): (argv: string[]) => Promise<void> {
  if (Object.hasOwn(COMMANDS, name)) return COMMANDS[name];
  const near = name.startsWith('-') ? undefined : closest(name, Object.keys(COMMANDS));
  const hint = near ? `did you mean ${near}?` : "try 'ddpm --help'";
  throw new DdpmError('INVALID_ARGUMENT', `unknown ${name.startsWith('-') ? 'option' : 'command'} ${name} (${hint})`);
}

/** A mistake the user can fix (bad flag, file, number): its message alone, on one line. */
function isUserError(e: unknown): boolean {
  const code = (e as { code?: unknown })?.code;
  return (
    e instanceof DdpmError ||
    (typeof code === 'string' && (code.startsWith('ERR_PARSE_ARGS') || /^E[A-Z]+$/.test(code)))
  );
}

main(process.argv.slice(2)).catch((e: unknown) => {
  const msg = isUserError(e) ? (e as Error).message.replace(/\s*\n\s*/g, ' ') : ((e as Error)?.stack ?? String(e));
  console.error(`ddpm: ${msg}`);
  process.exitCode = 1;
});
