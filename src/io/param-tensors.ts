// Moved to src/nn/param-tensors.ts (parameter loading belongs to nn/). This re-export keeps
// src/train/checkpoint.ts building until it imports '../nn/param-tensors.js'; delete it then, since io/
// must not import from nn/.
export * from '../nn/param-tensors.js';
