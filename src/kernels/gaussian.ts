// Typed wrappers for assembly/gaussian.ts (added here).
export {};
