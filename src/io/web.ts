// `ddpm-wasm/io` in browsers and edge workers (the browser/worker/workerd/edge-light/default conditions):
// what needs no file system — images and PNG output, safetensors, model sources. PNG decoding, image
// folders and MNIST (node:zlib, pngjs, files) are in the Node, Deno and Bun entry (index.ts).
export * from './image.js';
export * from './safetensors.js';
export * from './sources.js';
