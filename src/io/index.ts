// File formats and datasets (`ddpm-wasm/io`): PNG images and folders, MNIST, safetensors. Kept out of the
// main entry because PNG decoding pulls in pngjs and node:zlib, which browser bundles should not need.
export * from './png.js';
export * from './image-folder.js';
export * from './mnist.js';
export * from './safetensors.js';
export * from './sources.js';

// hardening (issue 12): regular-file reads and filesystem errors that name the file (Node, Deno, Bun)
export { readRegularFile, readRegularText, checkWritablePath, fsError, MAX_READ_BYTES } from './fs.js';
