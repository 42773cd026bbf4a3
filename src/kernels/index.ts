// The `kernels` namespace of the public API: every typed kernel call, listed per file. Helpers the kernels
// share among themselves (gemmRaw, workspace checks, layout checks) are not part of it.
export {
  add,
  addChannelBias,
  addChannelBiasBackward,
  axpy,
  concatChannels,
  concatChannelsBackward,
  mul,
  mulAccumulate,
  scale,
  silu,
  siluBackward,
  softmax,
  softmaxBackward,
  upsampleNearest2x,
  upsampleNearest2xBackward,
  type ChannelBiasArgs,
  type ChannelBiasBackwardArgs,
  type ConcatArgs,
  type ConcatBackwardArgs,
  type ConcatShape,
  type SoftmaxArgs,
  type SoftmaxBackwardArgs,
  type UpsampleArgs,
  type UpsampleBackwardArgs,
} from './elementwise.js';
export { gemm, gemmBatched, type GemmArgs, type GemmBatchedArgs } from './gemm.js';
export {
  conv2d,
  conv2dBackward,
  convOutSize,
  type Conv2dArgs,
  type Conv2dBackwardArgs,
  type Conv2dGeometry,
} from './conv.js';
export {
  groupNorm,
  groupNormBackward,
  type GroupNormArgs,
  type GroupNormBackwardArgs,
  type GroupNormShape,
} from './norm.js';
export {
  gaussianStep,
  philoxFill,
  qSample,
  randn,
  splitU64,
  type GaussianStepArgs,
  type QSampleArgs,
  type RandomAddress,
  type StepCoefficients,
  type U64,
} from './gaussian.js';
export { adamw, emaUpdate, gradNorm, type AdamwArgs, type EmaArgs } from './optim.js';
export type { NCHW } from './layout.js';
export { solverCombine, type CombineArgs, type Term } from './solver.js';
// Winograd F(2×2,3×3) / F(4×4,3×3) convolution for 3×3, stride 1, padding 1 (docs/winograd.md)
export {
  conv2dWinograd,
  winogradFilter,
  winogradFilterSize,
  type Conv2dWinogradArgs,
  type WinogradFilterArgs,
  type WinogradTile,
} from './winograd.js';
