// One-node ONNX models for the onnxruntime-web kernel peer (MatMul; Conv with bias), written with the
// project's own protobuf writer (src/io/onnx-proto.ts, also used by the model export src/nn/onnx.ts).
import { OnnxGraphBuilder } from '../dist/io/onnx-proto.js';

/** C(M×N) = A(M×K)·B(K×N): A is the input "A", B a constant (which onnxruntime may pre-pack once). */
export function matmulModel(M, K, N, B) {
  const g = new OnnxGraphBuilder();
  g.input('A', [M, K]);
  g.op('MatMul', ['A', g.constant('B', [K, N], B)], {}, 'C');
  g.output('C', [M, N]);
  return g.finish('bench');
}

/** y = conv2d(x, W) + b, NCHW, square kernel k, symmetric padding `pad`; W and b are constants. */
export function convModel({ N, Cin, H, W, Cout, kernel, stride, pad }, weight, bias) {
  const Ho = Math.floor((H + 2 * pad - kernel) / stride) + 1;
  const Wo = Math.floor((W + 2 * pad - kernel) / stride) + 1;
  const g = new OnnxGraphBuilder();
  g.input('x', [N, Cin, H, W]);
  g.op(
    'Conv',
    ['x', g.constant('W', [Cout, Cin, kernel, kernel], weight), g.constant('b', [Cout], bias)],
    {
      kernel_shape: [kernel, kernel],
      strides: [stride, stride],
      pads: [pad, pad, pad, pad],
      dilations: [1, 1],
    },
    'y',
  );
  g.output('y', [N, Cout, Ho, Wo]);
  return g.finish('bench');
}
