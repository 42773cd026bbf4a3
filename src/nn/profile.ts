// A per-layer profile: time and kernel dispatches charged to each layer kind (conv 3x3, group norm, silu,
// attention …, and their backward steps), and per kernel. While profiling, the layer hook of layers.ts
// wraps every layer call and backward step, and engine.run is wrapped to count and time each dispatch.
// Times are exclusive: a layer's time excludes the layers it calls (a ResNet block's convs are "conv").
import type { Engine } from '../engine/engine.js';
import { KERNELS, type KernelArgs, type KernelId } from '../engine/wasm-interface.generated.js';
import { setLayerHook } from './layers.js';

export interface ProfileRow {
  /** Layer kind ('conv 3x3', 'group norm backward', …) or kernel export name. */
  name: string;
  /** Layer calls (or kernel dispatches). */
  calls: number;
  /** Kernel dispatches made inside (for a kernel row: = calls). */
  dispatches: number;
  /** Exclusive wall time, ms. */
  ms: number;
}

export interface Profile {
  /** Wall time of the whole run, ms. */
  totalMs: number;
  /** All kernel dispatches. */
  dispatches: number;
  /** By layer kind, slowest first; 'other' is time outside any layer (optimizer, loss, noise, copies). */
  layers: ProfileRow[];
  /** By kernel, slowest first. */
  kernels: ProfileRow[];
}

/**
 * Runs `fn` once with profiling on and returns where its time went. Timing each dispatch adds a little
 * overhead per call (two performance.now()), so profiled runs are a bit slower than plain ones.
 */
export function profile(engine: Engine, fn: () => void, opts: { clock?: 'wall' | 'cpu' } = {}): Profile {
  // 'cpu': this process's CPU time (Node), steadier than wall time on a machine shared with other work;
  // it counts every thread of the process, so it is meant for 1-thread profiles.
  const cpuUsage = (globalThis as { process?: { cpuUsage?: () => { user: number; system: number } } }).process
    ?.cpuUsage;
  const now =
    opts.clock === 'cpu' && cpuUsage
      ? () => {
          const u = cpuUsage();
          return (u.user + u.system) / 1000;
        }
      : () => performance.now();
  const layers = new Map<string, ProfileRow>();
  const kernels = new Map<string, ProfileRow>();
  const row = (m: Map<string, ProfileRow>, name: string) => {
    let r = m.get(name);
    if (!r) m.set(name, (r = { name, calls: 0, dispatches: 0, ms: 0 }));
    return r;
  };
  // a stack of open layers: each frame accumulates the time of its children, to report exclusive times
  const stack: { row: ProfileRow; childMs: number }[] = [{ row: row(layers, 'other'), childMs: 0 }];
  let dispatches = 0;
  const run = engine.run;
  const patched = function (this: Engine, kernel: KernelId, args: readonly number[], parallel?: boolean) {
    const t0 = now();
    run.call(this, kernel, args as KernelArgs[KernelId], parallel);
    const k = row(kernels, KERNELS[kernel].name);
    k.calls++;
    k.dispatches++;
    k.ms += now() - t0;
    stack[stack.length - 1].row.dispatches++;
    dispatches++;
  };
  engine.run = patched;
  setLayerHook((kind, f) => {
    const frame = { row: row(layers, kind), childMs: 0 };
    frame.row.calls++;
    stack.push(frame);
    const t0 = now();
    try {
      return f();
    } finally {
      const ms = now() - t0;
      stack.pop();
      frame.row.ms += ms - frame.childMs;
      stack[stack.length - 1].childMs += ms;
    }
  });
  const t0 = now();
  try {
    fn();
  } finally {
    setLayerHook(null);
    delete (engine as { run?: unknown }).run; // back to the prototype's method
  }
  const totalMs = now() - t0;
  const other = layers.get('other')!;
  other.ms = totalMs - stack[0].childMs;
  other.calls = 1;
  const sorted = (m: Map<string, ProfileRow>) => [...m.values()].sort((a, b) => b.ms - a.ms);
  return { totalMs, dispatches, layers: sorted(layers), kernels: sorted(kernels) };
}

/** The profile as text tables (layer kinds, then the kernels), for `ddpm bench --profile`. */
export function formatProfile(title: string, p: Profile, topKernels = 12): string {
  const lines = [`${title}: ${p.totalMs.toFixed(1)} ms, ${p.dispatches} kernel dispatches`];
  const table = (head: string, rows: ProfileRow[]) => {
    const w = Math.max(head.length, ...rows.map((r) => r.name.length));
    lines.push(
      `  ${head.padEnd(w)}  ${'calls'.padStart(6)}  ${'dispatches'.padStart(10)}  ${'ms'.padStart(8)}  ${'ms/call'.padStart(8)}  ${'share'.padStart(6)}`,
    );
    for (const r of rows) {
      lines.push(
        `  ${r.name.padEnd(w)}  ${String(r.calls).padStart(6)}  ${String(r.dispatches).padStart(10)}  ${r.ms.toFixed(2).padStart(8)}  ${(r.ms / Math.max(1, r.calls)).toFixed(3).padStart(8)}  ${((100 * r.ms) / p.totalMs).toFixed(1).padStart(5)}%`,
      );
    }
  };
  table('layer kind', p.layers);
  lines.push('');
  table('kernel', p.kernels.slice(0, topKernels));
  return lines.join('\n');
}
