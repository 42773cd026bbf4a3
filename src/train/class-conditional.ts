// Class-conditional training for classifier-free guidance (Ho & Salimans 2022): one class embedding per
// class plus one for "no class", last; during training each label is replaced by that unconditional one
// with probability 0.1, so one network learns ε(x_t, t, c) and ε(x_t, t) and sampling can mix them
// (ε_u + w·(ε_c − ε_u)). The one source of `ddpm train --class-conditional` and
// `scripts/train-mnist.mjs --class-conditional` (models/mnist-cond).

/** The probability of dropping a label to the unconditional one (Ho & Salimans 2022 found 0.1–0.2 best). */
export const LABEL_DROPOUT = 0.1;

/**
 * The model config and Trainer options for `numClasses` classes 0 … numClasses − 1: num_class_embeds
 * numClasses + 1, the unconditional label numClasses (what the pipeline's guidance uses: num_class_embeds − 1).
 */
export function classConditional(numClasses: number): {
  model: { num_class_embeds: number };
  trainer: { labelDropout: number; uncondLabel: number };
} {
  return {
    model: { num_class_embeds: numClasses + 1 },
    trainer: { labelDropout: LABEL_DROPOUT, uncondLabel: numClasses },
  };
}
