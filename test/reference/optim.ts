// Float64 references for assembly/optim.ts: a transcription of torch.optim.AdamW's single-tensor update
// (torch/optim/adamw.py, amsgrad=False), the L2 norm, and the EMA of diffusers' EMAModel.

export interface AdamwHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/** One AdamW step at step number t (1-based), updating p, m, v in place. */
export function adamwStep(
  p: Float64Array,
  g: ArrayLike<number>,
  m: Float64Array,
  v: Float64Array,
  t: number,
  h: AdamwHyper,
): void {
  const biasCorrection1 = 1 - h.beta1 ** t;
  const biasCorrection2 = 1 - h.beta2 ** t;
  const stepSize = h.lr / biasCorrection1;
  const biasCorrection2Sqrt = Math.sqrt(biasCorrection2);
  for (let i = 0; i < p.length; i++) {
    p[i] *= 1 - h.lr * h.weightDecay; // param.mul_(1 - lr * weight_decay)
    m[i] += (1 - h.beta1) * (g[i] - m[i]); // exp_avg.lerp_(grad, 1 - beta1)
    v[i] = v[i] * h.beta2 + (1 - h.beta2) * g[i] * g[i]; // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1 - beta2)
    const denom = Math.sqrt(v[i]) / biasCorrection2Sqrt + h.eps;
    p[i] -= (stepSize * m[i]) / denom; // param.addcdiv_(exp_avg, denom, value=-step_size)
  }
}

/** ‖g‖₂ */
export function l2norm(g: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < g.length; i++) s += g[i] * g[i];
  return Math.sqrt(s);
}

/** decay·ema + (1 − decay)·p */
export function emaUpdate(ema: ArrayLike<number>, p: ArrayLike<number>, decay: number): Float64Array {
  return Float64Array.from(ema, (e, i) => decay * e + (1 - decay) * p[i]);
}
