// A minimal ONNX writer: just enough protobuf for a ModelProto of float32/int64 initializers and nodes with
// int, float, ints and string attributes. Field numbers are those of onnx/onnx.proto (ModelProto,
// GraphProto, NodeProto, AttributeProto, TensorProto, ValueInfoProto, TypeProto, TensorShapeProto).
// Used by the model export (src/nn/onnx.ts) and by the one-node models of the kernel benchmarks.

const WIRE_VARINT = 0;
const WIRE_BYTES = 2;
const WIRE_FIXED32 = 5;

/** TensorProto.DataType */
export const ONNX_FLOAT = 1;
export const ONNX_INT64 = 7;

const ATTR_FLOAT = 1; // AttributeProto.AttributeType
const ATTR_INT = 2;
const ATTR_STRING = 3;
const ATTR_INTS = 7;

/** IR version 8 (ONNX 1.10+) is what opset 17 needs. */
export const IR_VERSION = 8;
export const OPSET = 17;

const utf8 = new TextEncoder();

/** Protobuf message under construction: a list of byte chunks. */
export class ProtoMessage {
  private readonly chunks: Uint8Array[] = [];
  length = 0;

  push(bytes: Uint8Array): this {
    this.chunks.push(bytes);
    this.length += bytes.length;
    return this;
  }

  /** A varint; negative values as protobuf writes int64 (two's complement, 10 bytes). BigInt keeps 64 bits exact. */
  varint(v: number | bigint): this {
    let x = BigInt.asUintN(64, BigInt(v));
    const out: number[] = [];
    do {
      let b = Number(x & 0x7fn);
      x >>= 7n;
      if (x > 0n) b |= 0x80;
      out.push(b);
    } while (x > 0n);
    return this.push(Uint8Array.from(out));
  }

  tag(field: number, wire: number): this {
    return this.varint((field << 3) | wire);
  }

  int(field: number, v: number | bigint): this {
    return this.tag(field, WIRE_VARINT).varint(v);
  }

  float(field: number, v: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    return this.tag(field, WIRE_FIXED32).push(b);
  }

  bytes(field: number, data: Uint8Array): this {
    return this.tag(field, WIRE_BYTES).varint(data.length).push(data);
  }

  string(field: number, s: string): this {
    return this.bytes(field, utf8.encode(s));
  }

  message(field: number, m: ProtoMessage): this {
    return this.bytes(field, m.finish());
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}

/** A dimension: a fixed size, or a symbolic name (dynamic, e.g. the batch 'N'). */
export type OnnxDim = number | string;

/** ValueInfoProto for a tensor of element type `elemType` (ONNX_FLOAT, ONNX_INT64). */
export function valueInfo(name: string, shape: readonly OnnxDim[], elemType = ONNX_FLOAT): ProtoMessage {
  const dims = new ProtoMessage();
  for (const d of shape)
    dims.message(1, typeof d === 'number' ? new ProtoMessage().int(1, d) : new ProtoMessage().string(2, d)); // dim_value | dim_param
  const tensorType = new ProtoMessage().int(1, elemType).message(2, dims); // TypeProto.Tensor
  return new ProtoMessage().string(1, name).message(2, new ProtoMessage().message(1, tensorType));
}

/** TensorProto holding float32 or int64 data as raw little-endian bytes. */
export function tensorProto(name: string, shape: readonly number[], data: Float32Array | BigInt64Array): ProtoMessage {
  const m = new ProtoMessage();
  for (const d of shape) m.int(1, d);
  m.int(2, data instanceof Float32Array ? ONNX_FLOAT : ONNX_INT64).string(8, name);
  return m.bytes(9, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}

export type OnnxAttribute = number | number[] | string | { float: number };

/** AttributeProto: a number is an INT, an array INTS, a string STRING, { float } a FLOAT. */
export function attribute(name: string, value: OnnxAttribute): ProtoMessage {
  const m = new ProtoMessage().string(1, name);
  if (typeof value === 'number') return m.int(3, value).int(20, ATTR_INT);
  if (typeof value === 'string') return m.bytes(4, utf8.encode(value)).int(20, ATTR_STRING);
  if (Array.isArray(value)) {
    for (const v of value) m.int(8, v);
    return m.int(20, ATTR_INTS);
  }
  return m.float(2, value.float).int(20, ATTR_FLOAT);
}

export function nodeProto(
  opType: string,
  inputs: readonly string[],
  outputs: readonly string[],
  name: string,
  attributes: Record<string, OnnxAttribute> = {},
): ProtoMessage {
  const m = new ProtoMessage();
  for (const i of inputs) m.string(1, i);
  for (const o of outputs) m.string(2, o);
  m.string(3, name).string(4, opType);
  for (const [k, v] of Object.entries(attributes)) m.message(5, attribute(k, v));
  return m;
}

export interface OnnxValue {
  name: string;
  shape: readonly OnnxDim[];
  elemType?: number;
}

/** ModelProto: nodes in topological order, graph inputs/outputs, initializers (constants). */
export function modelProto(
  graphName: string,
  nodes: readonly ProtoMessage[],
  inputs: readonly OnnxValue[],
  outputs: readonly OnnxValue[],
  inits: readonly ProtoMessage[],
  producer = 'ddpm-wasm',
): Uint8Array {
  const graph = new ProtoMessage();
  for (const n of nodes) graph.message(1, n);
  graph.string(2, graphName);
  for (const t of inits) graph.message(5, t);
  for (const v of inputs) graph.message(11, valueInfo(v.name, v.shape, v.elemType));
  for (const v of outputs) graph.message(12, valueInfo(v.name, v.shape, v.elemType));
  const opset = new ProtoMessage().string(1, '').int(2, OPSET);
  return new ProtoMessage().int(1, IR_VERSION).string(2, producer).message(7, graph).message(8, opset).finish();
}

/**
 * A graph under construction: `op` appends a node and returns its output's (generated) name, so a network
 * is written as nested calls in forward order.
 */
export class OnnxGraphBuilder {
  private readonly nodes: ProtoMessage[] = [];
  private readonly inits: ProtoMessage[] = [];
  private readonly inputs: OnnxValue[] = [];
  private readonly outputs: OnnxValue[] = [];
  private readonly initNames = new Set<string>();
  private count = 0;

  input(name: string, shape: readonly OnnxDim[], elemType = ONNX_FLOAT): string {
    this.inputs.push({ name, shape, elemType });
    return name;
  }

  output(name: string, shape: readonly OnnxDim[], elemType = ONNX_FLOAT): void {
    this.outputs.push({ name, shape, elemType });
  }

  /** A constant tensor; returns its name (given once: a second call with the same name reuses it). */
  constant(name: string, shape: readonly number[], data: Float32Array | BigInt64Array): string {
    if (!this.initNames.has(name)) {
      this.initNames.add(name);
      this.inits.push(tensorProto(name, shape, data));
    }
    return name;
  }

  /** An int64 vector constant (shapes, axes). */
  ints(values: readonly number[]): string {
    return this.constant(
      `const_i64_${values.join('_').replace(/-/g, 'm')}`,
      [values.length],
      BigInt64Array.from(values.map(BigInt)),
    );
  }

  /** A float32 scalar constant (shape []). */
  scalar(v: number): string {
    return this.constant(`const_f32_${Math.fround(v)}`, [], Float32Array.of(v));
  }

  /** Appends a node with one output; `out` names it (else a generated name). */
  op(opType: string, inputs: readonly string[], attributes: Record<string, OnnxAttribute> = {}, out?: string): string {
    const name = out ?? `${opType.toLowerCase()}_${this.count}`;
    this.nodes.push(nodeProto(opType, inputs, [name], `${opType}_${this.count++}`, attributes));
    return name;
  }

  finish(graphName: string): Uint8Array {
    return modelProto(graphName, this.nodes, this.inputs, this.outputs, this.inits);
  }
}
