// (kernels of this module are added here)
export {};
