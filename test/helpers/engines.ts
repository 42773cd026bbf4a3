// Engines for a test file: created on demand, all disposed after the file's tests (their workers would
// otherwise keep the test process alive).
import { afterAll } from 'vitest';
import { Engine, type EngineOptions } from '../../src/index.js';

/** Call at the top level of a test file; returns `make(options)`, which creates an engine disposed afterAll. */
export function useEngines(): (opts?: EngineOptions) => Promise<Engine> {
  const engines: Engine[] = [];
  afterAll(() => {
    for (const e of engines) e.dispose();
  });
  return async (opts) => {
    const e = await Engine.create(opts);
    engines.push(e);
    return e;
  };
}
