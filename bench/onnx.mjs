// A minimal ONNX writer for the onnxruntime-web peer: just enough protobuf to describe one MatMul or one
// Conv node with float32 initializers. Field numbers are those of onnx/onnx.proto (ModelProto, GraphProto,
// NodeProto, AttributeProto, TensorProto, ValueInfoProto, TypeProto, TensorShapeProto).

const WIRE_VARINT = 0;
const WIRE_BYTES = 2;
const ELEM_FLOAT = 1; // TensorProto.DataType.FLOAT
const ATTR_INTS = 7; // AttributeProto.AttributeType.INTS
const IR_VERSION = 8; // ONNX 1.10+: what opset 17 needs
const OPSET = 17;

/** Protobuf message under construction: a list of byte chunks. */
class Message {
  constructor() {
    this.chunks = [];
    this.length = 0;
  }

  push(bytes) {
    this.chunks.push(bytes);
    this.length += bytes.length;
    return this;
  }

  varintRaw(v) {
    // Non-negative integers only (sizes, enums, dims); BigInt keeps 64-bit values exact.
    let x = BigInt(v);
    const out = [];
    do {
      let b = Number(x & 0x7fn);
      x >>= 7n;
      if (x > 0n) b |= 0x80;
      out.push(b);
    } while (x > 0n);
    return this.push(Uint8Array.from(out));
  }

  tag(field, wire) {
    return this.varintRaw((field << 3) | wire);
  }

  int(field, v) {
    return this.tag(field, WIRE_VARINT).varintRaw(v);
  }

  bytes(field, data) {
    return this.tag(field, WIRE_BYTES).varintRaw(data.length).push(data);
  }

  string(field, s) {
    return this.bytes(field, new TextEncoder().encode(s));
  }

  message(field, m) {
    return this.bytes(field, m.finish());
  }

  finish() {
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}

/** ValueInfoProto for a float tensor of fixed shape. */
function valueInfo(name, shape) {
  const dims = new Message();
  for (const d of shape) dims.message(1, new Message().int(1, d)); // TensorShapeProto.dim { dim_value }
  const tensorType = new Message().int(1, ELEM_FLOAT).message(2, dims); // TypeProto.Tensor
  return new Message().string(1, name).message(2, new Message().message(1, tensorType));
}

/** TensorProto holding float32 data as raw little-endian bytes. */
function initializer(name, shape, data) {
  const m = new Message();
  for (const d of shape) m.int(1, d);
  m.int(2, ELEM_FLOAT).string(8, name);
  return m.bytes(9, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}

function intsAttribute(name, values) {
  const m = new Message().string(1, name).int(20, ATTR_INTS);
  for (const v of values) m.int(8, v);
  return m;
}

function node(opType, inputs, outputs, attributes = []) {
  const m = new Message();
  for (const i of inputs) m.string(1, i);
  for (const o of outputs) m.string(2, o);
  m.string(3, `${opType.toLowerCase()}0`).string(4, opType);
  for (const a of attributes) m.message(5, a);
  return m;
}

/**
 * ModelProto with one node. `inputs`/`outputs`: [{name, shape}]; `inits`: [{name, shape, data}] —
 * graph constants, which onnxruntime may pre-pack once at session creation, as it would a model's weights.
 */
function model(nodeMsg, inputs, outputs, inits) {
  const graph = new Message().message(1, nodeMsg).string(2, 'bench');
  for (const t of inits) graph.message(5, initializer(t.name, t.shape, t.data));
  for (const v of inputs) graph.message(11, valueInfo(v.name, v.shape));
  for (const v of outputs) graph.message(12, valueInfo(v.name, v.shape));
  const opset = new Message().string(1, '').int(2, OPSET);
  return new Message()
    .int(1, IR_VERSION)
    .string(2, 'ddpm-wasm-bench')
    .message(7, graph)
    .message(8, opset)
    .finish();
}

/** C(M×N) = A(M×K)·B(K×N): A is the input "A", B a constant. */
export function matmulModel(M, K, N, B) {
  return model(
    node('MatMul', ['A', 'B'], ['C']),
    [{ name: 'A', shape: [M, K] }],
    [{ name: 'C', shape: [M, N] }],
    [{ name: 'B', shape: [K, N], data: B }],
  );
}

/** y = conv2d(x, W) + b, NCHW, square kernel k, symmetric padding `pad`; W and b are constants. */
export function convModel({ N, Cin, H, W, Cout, kernel, stride, pad }, weight, bias) {
  const Ho = Math.floor((H + 2 * pad - kernel) / stride) + 1;
  const Wo = Math.floor((W + 2 * pad - kernel) / stride) + 1;
  return model(
    node('Conv', ['x', 'W', 'b'], ['y'], [
      intsAttribute('kernel_shape', [kernel, kernel]),
      intsAttribute('strides', [stride, stride]),
      intsAttribute('pads', [pad, pad, pad, pad]),
      intsAttribute('dilations', [1, 1]),
    ]),
    [{ name: 'x', shape: [N, Cin, H, W] }],
    [{ name: 'y', shape: [N, Cout, Ho, Wo] }],
    [
      { name: 'W', shape: [Cout, Cin, kernel, kernel], data: weight },
      { name: 'b', shape: [Cout], data: bias },
    ],
  );
}
