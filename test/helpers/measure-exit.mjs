// Preloaded with `node --import` by test/cli-hostile.test.ts: when the process exits, prints its peak
// resident memory and wall time as one line on stderr, so a test can bound what a CLI case cost.
const t0 = performance.now();
process.on('exit', () => {
  process.stderr.write(
    `\nMEASURE ${JSON.stringify({ maxRssKB: process.resourceUsage().maxRSS, ms: Math.round(performance.now() - t0) })}\n`,
  );
});
