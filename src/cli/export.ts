// ddpm export: a model folder to another format (ONNX), for other engines (onnxruntime, WebGPU, WebNN).
import { DdpmError } from '../errors.js';
import { Engine } from '../engine/engine.js';
import { choiceOption, parseCommand } from './args.js';
import { loadModelFolder, writeFileAtomic } from './files.js';

export const EXPORT_HELP = `usage: ddpm export --format onnx [--model DIR|NAME] --out FILE

Writes the model (a UNet2DModel or MLPDenoiser folder; default: the shipped mnist model) as an ONNX graph
(opset 17, standard ops, dynamic batch). Inputs: sample (N, C, H, W) float32, timestep (N) float32 and,
for class-conditional models, class_labels (N) int64; output: out, the model's prediction (ε, x0 or v).

  --format onnx     the output format (onnx is the only one)
  --model DIR|NAME  the model folder, or a shipped model by name (mnist, mnist-cond). Default: the
                    shipped mnist model
  --out FILE        where to write the .onnx file`;

export async function exportCommand(argv: string[]): Promise<void> {
  const v = parseCommand(
    argv,
    { format: { type: 'string' }, model: { type: 'string' }, out: { type: 'string' } },
    EXPORT_HELP,
  );
  if (!v) return;
  choiceOption('format', v.format, 'onnx', ['onnx'] as const);
  if (!v.out) throw new DdpmError('INVALID_ARGUMENT', '--out FILE is required (where to write the .onnx file)');
  const engine = await Engine.create({ threads: 1 });
  try {
    const loaded = await loadModelFolder(engine, v.model);
    const bytes = loaded.model.toOnnx();
    await writeFileAtomic(v.out, bytes);
    if (!v.quiet)
      console.log(
        `wrote ${v.out} (${(bytes.length / 2 ** 20).toFixed(2)} MiB, ONNX opset 17, ${loaded.kind === 'unet' ? 'UNet2DModel' : 'MLPDenoiser'} from ${loaded.dir})`,
      );
  } finally {
    engine.dispose();
  }
}
