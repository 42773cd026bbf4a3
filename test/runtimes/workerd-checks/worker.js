import * as lib from 'ddpm-wasm';
import relaxed from 'ddpm-wasm/wasm/relaxed.wasm';
import simd from 'ddpm-wasm/wasm/simd.wasm';
import simdMt from 'ddpm-wasm/wasm/simd-mt.wasm';
import { runChecks } from '../edge-checks.mjs';

export default {
  async fetch() {
    return Response.json(await runChecks(lib, { relaxed, simd, simdMt }));
  },
};
