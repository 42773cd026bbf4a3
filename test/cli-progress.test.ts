import { describe, expect, it } from 'vitest';
import { Progress } from '../src/cli/progress';

/** A stand-in for process.stderr that records what is written. */
function stream(isTTY: boolean) {
  const chunks: string[] = [];
  return { chunks, s: { isTTY, write: (c: string) => chunks.push(c) > 0 } as unknown as NodeJS.WriteStream };
}

describe('Progress', () => {
  it('writes a plain line per 10% when stderr is not a terminal, with rate and ETA', () => {
    const { chunks, s } = stream(false);
    const p = new Progress('sampling', 50, { stream: s });
    for (let i = 1; i <= 50; i++) p.update(i, `loss ${i}`);
    p.finish();
    expect(chunks).toHaveLength(10);
    expect(chunks.every((c) => c.endsWith('\n') && !c.includes('\r'))).toBe(true);
    expect(chunks[0]).toMatch(/^sampling 5\/50 [\d.]+ steps\/s, 00:00 elapsed, ETA \d\d:\d\d, loss 5\n$/);
    expect(chunks[9]).toMatch(/^sampling 50\/50 .*ETA 00:00, loss 50\n$/);
  });

  it('redraws one line in place on a terminal (at most every 100 ms, always the last), newline at the end', () => {
    const { chunks, s } = stream(true);
    const p = new Progress('training', 1000, { stream: s, unit: 'images' });
    for (let i = 1; i <= 1000; i++) p.update(i);
    p.finish();
    expect(chunks.length).toBeLessThan(20);
    expect(chunks.every((c) => c.startsWith('\r\x1b[K'))).toBe(true);
    expect(chunks.at(-2)).toMatch(/training \[#{24}\] 1000\/1000 [\d.]+ images\/s/);
    expect(chunks.at(-1)!.endsWith('\n')).toBe(true);
  });

  it('--quiet writes nothing', () => {
    const { chunks, s } = stream(true);
    const p = new Progress('x', 10, { stream: s, quiet: true });
    for (let i = 1; i <= 10; i++) p.update(i);
    p.finish();
    expect(chunks).toEqual([]);
  });
});
