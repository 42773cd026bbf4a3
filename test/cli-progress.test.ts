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

  it('a resumed run counts from its start: 216/300, with the rate over this run only', () => {
    const { chunks, s } = stream(false);
    const p = new Progress('training', 300, { stream: s, start: 200 });
    for (let step = 201; step <= 300; step++) p.update(step);
    p.finish();
    // one line per 10% of the 100 steps this run does, the first at 210/300
    expect(chunks).toHaveLength(10);
    expect(chunks[0]).toMatch(/^training 210\/300 /);
    expect(chunks[9]).toMatch(/^training 300\/300 .*ETA 00:00/);
  });

  it('a resumed run that is just starting shows the resumed count on a terminal', () => {
    const { chunks, s } = stream(true);
    const p = new Progress('training', 300, { stream: s, start: 200 });
    p.update(216);
    expect(chunks[0]).toMatch(/training \[#{17}-{7}\] 216\/300 /);
  });

  it('work repeated per batch counts steps within a batch and names the batch', () => {
    const { chunks, s } = stream(false);
    const p = new Progress('sampling', 50, { stream: s, passes: 4 });
    for (let b = 0; b < 4; b++) {
      p.pass(b);
      for (let i = 1; i <= 50; i++) p.update(i);
    }
    p.finish();
    expect(chunks).toHaveLength(10);
    expect(chunks.every((c) => /^sampling \d+\/50 batch [1-4]\/4 /.test(c))).toBe(true);
    // 10% of the 200 steps is step 20 of batch 1; half way is the end of batch 2
    expect(chunks[0]).toMatch(/^sampling 20\/50 batch 1\/4 /);
    expect(chunks[4]).toMatch(/^sampling 50\/50 batch 2\/4 /);
    expect(chunks[9]).toMatch(/^sampling 50\/50 batch 4\/4 .*ETA 00:00/);
    expect(chunks.join('')).not.toMatch(/\/200/);
  });
});
