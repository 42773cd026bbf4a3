import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.js';

const fixture = join(__dirname, 'fixtures/diffusers');

/** A file from a header object and raw data bytes, padded like the reference writer. */
function build(header: unknown, data: Uint8Array = new Uint8Array(), headerText?: string): Uint8Array {
  const json = new TextEncoder().encode(headerText ?? JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}
const errorOf = (bytes: Uint8Array) => {
  try {
    readSafetensors(bytes, 'bad.safetensors');
  } catch (e) {
    return e as Error & { code: string };
  }
  throw new Error('expected an error');
};

describe('safetensors', () => {
  it('reads the diffusers fixture written by the reference library', () => {
    const bytes = readFileSync(join(fixture, 'unet_tiny.safetensors'));
    const meta = JSON.parse(readFileSync(join(fixture, 'unet_tiny.json'), 'utf8'));
    const { tensors, metadata } = readSafetensors(bytes, 'unet_tiny.safetensors');
    expect(metadata.get('format')).toBe('pt');
    expect(tensors.size).toBe(meta.state_dict_tensor_count);
    let count = 0;
    for (const { name, shape } of meta.state_dict) {
      expect(tensors.get(name)?.shape).toEqual(shape);
      count += tensors.get(name)!.data.length;
    }
    expect(count).toBe(meta.param_count);
    // conv_in.bias is the first 128 data bytes: compare with a direct read of the file
    const hlen = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
    const raw = new Float32Array(bytes.buffer.slice(bytes.byteOffset + 8 + hlen, bytes.byteOffset + 8 + hlen + 128));
    expect(Array.from(tensors.get('conv_in.bias')!.data)).toEqual(Array.from(raw));
  });

  it('round-trips through the writer, with metadata, unusual names and 8-byte alignment', () => {
    const a = new Float32Array([1, -2.5, 3e-8, 4, 5, 6]);
    const b = new Float32Array([7]);
    const bytes = writeSafetensors(
      [
        ['w.0', { shape: [2, 3], data: a }],
        ['__proto__', { shape: [1], data: b }],
      ],
      { format: 'pt' },
    );
    expect((Number(new DataView(bytes.buffer).getBigUint64(0, true)) + 8) % 8).toBe(0);
    const back = readSafetensors(bytes);
    expect(back.tensors.get('w.0')).toEqual({ dtype: 'F32', shape: [2, 3], data: a });
    expect(back.tensors.get('__proto__')!.data).toEqual(b);
    expect(Object.getPrototypeOf({})).toBe(Object.prototype);
    expect(back.metadata.get('format')).toBe('pt');
  });

  it('converts F16, BF16 and F64 to float32, and copies unaligned data', () => {
    const data = new Uint8Array(2 * 2 + 2 * 2 + 8 + 1);
    const dv = new DataView(data.buffer);
    dv.setUint16(0, 0x3c00, true); // f16 1.0
    dv.setUint16(2, 0xc500, true); // f16 -5.0
    dv.setUint16(4, 0x3f80, true); // bf16 1.0
    dv.setUint16(6, 0x4049, true); // bf16 3.140625
    dv.setFloat64(8, 0.1, true);
    const bytes = build(
      {
        h: { dtype: 'F16', shape: [2], data_offsets: [0, 4] },
        b: { dtype: 'BF16', shape: [2], data_offsets: [4, 8] },
        d: { dtype: 'F64', shape: [1], data_offsets: [8, 16] },
        u: { dtype: 'U8', shape: [1], data_offsets: [16, 17] },
      },
      data,
    );
    expect(errorOf(bytes).message).toMatch(/tensor u: dtype U8 is not a floating-point type/);
    const ok = build(
      {
        h: { dtype: 'F16', shape: [2], data_offsets: [0, 4] },
        b: { dtype: 'BF16', shape: [2], data_offsets: [4, 8] },
        d: { dtype: 'F64', shape: [1], data_offsets: [8, 16] },
      },
      data.subarray(0, 16),
      '{"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[4,8]},"d":{"dtype":"F64","shape":[1],"data_offsets":[8,16]}} ',
    );
    const t = readSafetensors(ok).tensors;
    expect(Array.from(t.get('h')!.data)).toEqual([1, -5]);
    expect(Array.from(t.get('b')!.data)).toEqual([1, 3.140625]);
    expect(t.get('d')!.data[0]).toBe(Math.fround(0.1));
  });

  it('rejects malformed files with one FORMAT error naming the problem', () => {
    const f32 = (n: number) => new Uint8Array(4 * n);
    const cases: [Uint8Array, RegExp][] = [
      [new Uint8Array(5), /5 bytes is too short/],
      [
        (() => {
          const b = new Uint8Array(16);
          new DataView(b.buffer).setBigUint64(0, 2n ** 63n, true);
          return b;
        })(),
        /exceeds the 100000000-byte limit/,
      ],
      [
        (() => {
          const b = new Uint8Array(16);
          new DataView(b.buffer).setBigUint64(0, 9n, true);
          return b;
        })(),
        /header length 9 exceeds the file \(8 bytes/,
      ],
      [build([1, 2]), /header must be a JSON object/],
      [build(null, undefined, '{"a": '), /header is not valid UTF-8 JSON/],
      [
        build(
          null,
          f32(2),
          '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
        ),
        /duplicate key "a"/,
      ],
      [build({ a: { dtype: 'F31', shape: [1], data_offsets: [0, 4] } }, f32(1)), /tensor a: unknown dtype "F31"/],
      [
        build({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, f32(2)),
        /shape \[3\] × F32 is 12 bytes, data_offsets span 8/,
      ],
      [
        build({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, f32(1)),
        /shape must be an array of non-negative integers/,
      ],
      [build({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, f32(2)), /gap in the data before tensor a/],
      [
        build(
          {
            a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
            b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] },
          },
          f32(2),
        ),
        /tensor b overlaps/,
      ],
      [
        build({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, f32(2)),
        /cover 4 bytes of data but the file has 8/,
      ],
      [
        build({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, f32(2)),
        /end 16 is past the data \(8 bytes\)/,
      ],
      [build({ __metadata__: { format: 1 } }), /__metadata__ value of "format" must be a string/],
    ];
    for (const [bytes, message] of cases) {
      const e = errorOf(bytes);
      expect(e.code).toBe('FORMAT');
      expect(e.message).toMatch(/^bad\.safetensors: /);
      expect(e.message).toMatch(message);
    }
  });
});
