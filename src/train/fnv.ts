// FNV-1a, 32 bits: the cheap content hash run.json records (the training data, a warm start's weights) so
// that the same label with other contents is told apart. Not cryptographic; collisions are not a threat
// model here, only accidents.

/** FNV-1a over the bytes of every array in order, as 8 hex digits. */
export function fnv1a(arrays: Iterable<ArrayBufferView>): string {
  let h = 0x811c9dc5;
  for (const a of arrays) {
    const b = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b[i], 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, '0');
}
