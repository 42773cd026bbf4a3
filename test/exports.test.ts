// The public API is an explicit list (src/index.ts): these checks catch a class or kernel that was added to
// its module but not to the list, and test hooks that leak into the published types.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as api from '../src/index.js';
import * as diffusion from '../src/diffusion/index.js';
import * as conv from '../src/kernels/conv.js';
import * as elementwise from '../src/kernels/elementwise.js';
import * as gaussian from '../src/kernels/gaussian.js';
import * as gemm from '../src/kernels/gemm.js';
import * as norm from '../src/kernels/norm.js';
import * as optim from '../src/kernels/optim.js';

const root = join(__dirname, '..');

describe('public exports', () => {
  it('every scheduler, chain and bound of src/diffusion/ is public', () => {
    const missing = Object.keys(diffusion).filter((k) => !(k in api));
    // helpers the schedulers share among themselves (the float32 σ tables of sigmas.ts, the σ-space base
    // class of Euler/Heun), deliberately not public
    const internal = [
      'optionsFromConfig',
      'COMMON_CONFIG_KEYS',
      'oneOf',
      'torchLinspace32',
      'betas32',
      'alphasCumprod32',
      'sigmaTable32',
      'lambdaTable32',
      'interpTable',
      'karrasSigmas',
      'sigmaToT',
      'solverTimesteps',
      'discreteTimesteps',
      'initNoiseSigmaOf',
      'sigmaSpaceX0',
      'SigmaSpaceScheduler',
    ];
    expect(missing.filter((k) => !internal.includes(k))).toEqual([]);
  });

  it('every kernel wrapper is in the kernels namespace, and the unchecked internals are not', () => {
    const internal = ['gemmRaw', 'checkGemmWorkspace', 'CONV_BACKWARD_CHUNK', 'SERIAL_BELOW'];
    const modules = { conv, elementwise, gaussian, gemm, norm, optim };
    const missing = Object.entries(modules).flatMap(([file, m]) =>
      Object.keys(m)
        .filter((k) => !internal.includes(k) && !(k in api.kernels))
        .map((k) => `${file}.${k}`),
    );
    expect(missing).toEqual([]);
    for (const k of internal) expect(k in api.kernels).toBe(false);
  });

  it('trainer internals are not public', () => {
    expect('checkAlphasCumprod' in api).toBe(false);
  });

  it('test hooks are stripped from the published .d.ts (stripInternal)', () => {
    const engineDts = readFileSync(join(root, 'dist', 'engine', 'engine.d.ts'), 'utf8');
    expect(engineDts).toMatch(/class Engine/);
    expect(engineDts).not.toMatch(/ForTest/);
    expect(readFileSync(join(root, 'dist', 'kernels', 'gemm.d.ts'), 'utf8')).not.toMatch(/gemmRaw/);
  });
});
