// test/runtimes-edge.test.ts: edge-checks.mjs in Vercel's edge-runtime, modules handed in with `?module`.
import * as lib from 'ddpm-wasm';
import relaxed from 'ddpm-wasm/wasm/relaxed.wasm?module';
import simd from 'ddpm-wasm/wasm/simd.wasm?module';
import simdMt from 'ddpm-wasm/wasm/simd-mt.wasm?module';
import { runChecks } from './edge-checks.mjs';

export default async function handler() {
  return Response.json(await runChecks(lib, { relaxed, simd, simdMt }));
}
