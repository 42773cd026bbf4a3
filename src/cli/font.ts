// A 3×5 pixel font for the labels on the CLI's pictures (axis ticks, trajectory steps): digits and the few
// signs a number label needs. Hand-drawn so the pictures need no font files or canvas.
import { DdpmError } from '../errors.js';
import type { RgbaImage } from '../io/png.js';

export const GLYPH_WIDTH = 3;
export const GLYPH_HEIGHT = 5;
/** Pixels from one glyph's left edge to the next one's. */
export const ADVANCE = GLYPH_WIDTH + 1;

// Rows top to bottom, '#' lit.
const GLYPHS: Record<string, readonly string[]> = {
  '0': ['###', '#.#', '#.#', '#.#', '###'],
  '1': ['.#.', '##.', '.#.', '.#.', '###'],
  '2': ['###', '..#', '###', '#..', '###'],
  '3': ['###', '..#', '.##', '..#', '###'],
  '4': ['#.#', '#.#', '###', '..#', '..#'],
  '5': ['###', '#..', '###', '..#', '###'],
  '6': ['###', '#..', '###', '#.#', '###'],
  '7': ['###', '..#', '..#', '..#', '..#'],
  '8': ['###', '#.#', '###', '#.#', '###'],
  '9': ['###', '#.#', '###', '..#', '###'],
  '-': ['...', '...', '###', '...', '...'],
  '.': ['...', '...', '...', '...', '.#.'],
  '=': ['...', '###', '...', '###', '...'],
  '/': ['..#', '..#', '.#.', '#..', '#..'],
  t: ['.#.', '###', '.#.', '.#.', '.##'],
  ' ': ['...', '...', '...', '...', '...'],
};

/** Width in pixels of `text` drawn at `scale`. */
export function textWidth(text: string, scale = 1): number {
  return text.length === 0 ? 0 : (text.length * ADVANCE - 1) * scale;
}

/**
 * Draws `text` with its top-left corner at (x, y), in gray level `gray`, each font pixel a scale×scale
 * block; pixels outside the image are skipped. Characters the font lacks are an error (a label bug).
 */
export function drawText(image: RgbaImage, text: string, x: number, y: number, gray = 255, scale = 1): void {
  for (let k = 0; k < text.length; k++) {
    const glyph = GLYPHS[text[k]];
    if (!glyph)
      throw new DdpmError('INVALID_ARGUMENT', `drawText: the font has no glyph for '${text[k]}' (in '${text}')`);
    for (let gy = 0; gy < GLYPH_HEIGHT; gy++) {
      for (let gx = 0; gx < GLYPH_WIDTH; gx++) {
        if (glyph[gy][gx] !== '#') continue;
        for (let sy = 0; sy < scale; sy++) {
          for (let sx = 0; sx < scale; sx++)
            setGray(image, x + (k * ADVANCE + gx) * scale + sx, y + gy * scale + sy, gray);
        }
      }
    }
  }
}

/** Sets pixel (x, y) to an opaque gray level; outside the image, nothing. */
export function setGray(image: RgbaImage, x: number, y: number, gray: number): void {
  if (x < 0 || y < 0 || x >= image.width || y >= image.height) return;
  const i = 4 * (y * image.width + x);
  image.data.fill(gray, i, i + 3);
  image.data[i + 3] = 255;
}
