// Typed wrappers for assembly/conv.ts (added here).
export {};
