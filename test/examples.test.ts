// The README's runnable examples run (against the built package, as a user would).
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(__dirname, '..');

describe('examples', () => {
  it('examples/sample.mjs samples with DDPM and with a resumed DDIM chain', () => {
    const out = execFileSync(process.execPath, [join(root, 'examples/sample.mjs')], { cwd: root, encoding: 'utf8', timeout: 120_000 });
    expect(out).toMatch(/^DDPM, 25 steps: x_0\[0\.\.3\] = (-?\d\.\d{4} ?){4}$/m);
    expect(out).toMatch(/^DDIM finished at step 20 \(t = 0\)$/m);
    expect(out).toMatch(/^DDIM, resumed after 10 of 20 steps: /m);
  });
});
