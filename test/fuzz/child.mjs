// The fuzz child: runs one target's inputs sent by the parent (test/fuzz/harness.mjs) over IPC, one at a
// time, and answers each with its outcome. Started with a capped V8 heap; a blow-up or a hang kills or
// stalls only this process, and the parent saves the input that did it.
import { TARGETS } from './targets.mjs';

const { Engine } = await import(new URL('../../dist/index.js', import.meta.url));
const target = TARGETS[process.argv[2]];
// A modest Wasm limit: a valid model or state that plans more is an OUT_OF_MEMORY error, as designed.
const engine = await Engine.create({ threads: 1, memoryLimit: 256 * 2 ** 20 });
const ctx = { engine };

process.on('message', async (msg) => {
  const input = new Uint8Array(Buffer.from(msg.input, 'base64'));
  const t0 = performance.now();
  let outcome = 'ok', message = '', code;
  // every input starts from the same empty arena (models and states of earlier inputs are released)
  const mark = engine.arena.mark();
  try {
    await target.run(input, ctx);
  } catch (e) {
    if (e?.name === 'DdpmError' && typeof e.code === 'string') {
      outcome = 'typed';
      code = e.code;
      message = e.message;
      if (/\[object Object\]|is not iterable|is not a function|Cannot read propert/.test(message)) outcome = 'bad-message';
    } else {
      outcome = 'untyped';
      message = `${e?.name ?? typeof e}: ${e?.message ?? String(e)}`;
    }
  }
  engine.arena.release(mark);
  process.send({ id: msg.id, outcome, code, message: message.slice(0, 500), ms: performance.now() - t0, rss: process.memoryUsage().rss });
});
process.send({ ready: true });
