// Long synchronous-looking loops (sampling, training, the bound) await between steps, but a resolved
// promise is a microtask: timers, messages and Ctrl-C (macrotasks) would not run until the loop ends.
// These loops call a yielder between steps; it gives the event loop a macrotask turn at most every
// `everyMs` milliseconds, so an AbortSignal fired by a timer or SIGINT is seen within about that long.

/** A function to await between steps: a `setTimeout(0)` turn once `everyMs` have passed since the last. */
export function macrotaskYielder(everyMs = 20): () => Promise<void> {
  let last = performance.now();
  return async () => {
    if (performance.now() - last <= everyMs) return;
    await new Promise((resolve) => setTimeout(resolve, 0));
    last = performance.now();
  };
}
