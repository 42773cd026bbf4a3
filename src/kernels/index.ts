export * from './elementwise.js';
export * from './gemm.js';
export * from './conv.js';
export * from './norm.js';
export * from './gaussian.js';
export * from './optim.js';
export * from './solver.js';
