// The README's runnable examples run (against the built package, as a user would).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(__dirname, '..');

describe('examples', () => {
  it('examples/sample.mjs samples with DDPM and with a resumed DDIM chain', () => {
    const out = execFileSync(process.execPath, [join(root, 'examples/sample.mjs')], {
      cwd: root,
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(out).toMatch(/^DDPM, 25 steps: x_0\[0\.\.3\] = (-?\d\.\d{4} ?){4}$/m);
    expect(out).toMatch(/^DDIM finished at step 20 \(t = 0\)$/m);
    expect(out).toMatch(/^DDIM, resumed after 10 of 20 steps: /m);
  });
});

describe('training examples', () => {
  const tmp = () => mkdtempSync(join(tmpdir(), 'example-'));

  it('examples/train-two-moons.mjs trains with a checkpointed restart and samples the moons', () => {
    const dir = join(tmp(), 'ckpt');
    const out = execFileSync(process.execPath, [join(root, 'examples/train-two-moons.mjs'), '2000', dir], {
      cwd: root,
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(out).toMatch(/^trained to step 2000; checkpoints in /m);
    // within 0.1 of an arc: the data ~95% (its noise is 0.05), N(0, I) noise 27% (Monte Carlo), this
    // model after 2000 steps 75% (deterministic); the threshold sits between noise and model
    const pct = Number(/^([\d.]+)% of 1000 samples lie within 0\.1 of a moon's arc$/m.exec(out)![1]);
    expect(pct).toBeGreaterThan(55);
  });

  it('examples/train-unet.mjs trains a U-Net, saves a diffusers folder, loads it and samples', () => {
    const dir = join(tmp(), 'unet');
    const out = execFileSync(process.execPath, [join(root, 'examples/train-unet.mjs'), '40', dir], {
      cwd: root,
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(out).toMatch(/^trained 40 steps, last loss \d\.\d{4}$/m);
    expect(readdirSync(dir).sort()).toEqual(['config.json', 'diffusion_pytorch_model.safetensors']);
    expect(out).toMatch(/samples' brightest pixel: (-?\d\.\d\d ?){4}$/m);
  });
});
