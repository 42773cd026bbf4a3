// Emscripten pthread worker for tfjs-backend-wasm's threaded SIMD build under Node worker_threads.
// The backend hands Emscripten its worker script and its main script as Blob URLs, which Node's Worker
// and the worker's importScripts (fs.readFileSync) cannot open; tfjs-peer.mjs points the worker at this
// file instead. Here the package's own worker script runs unchanged, except that the Blob it is sent as
// "main script" resolves to the package's wasm-out/tfjs-backend-wasm-threaded-simd.js file: the same
// Emscripten glue that the bundle inlines.
const path = require('node:path');

const wasmOut = path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm')), '..', 'wasm-out');
URL.createObjectURL = () => path.join(wasmOut, 'tfjs-backend-wasm-threaded-simd.js');
URL.revokeObjectURL = () => {};

// The worker source ships as a JS string inside a template literal, so its "\n" escapes arrive as raw
// newlines inside string literals; re-escape them the way the backend does before making a Blob of it.
const { wasmWorkerContents } = require(path.join(wasmOut, 'tfjs-backend-wasm-threaded-simd.worker.js'));
new Function('require', '__filename', wasmWorkerContents.replace(/\n/g, '\\n'))(require, __filename);
