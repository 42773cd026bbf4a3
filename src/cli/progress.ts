// A progress bar on stderr: redrawn in place on a terminal, a plain line every ~10% otherwise (logs, CI).
//
// It counts what the user asked for. A resumed run passes `start` (steps done before this process), so the
// count reads 216/300, not 16/100, while the rate and ETA use only this run's steps. Work repeated per batch
// passes `passes` and calls pass(k): sampling 50 steps in 4 batches reads `sampling 37/50 batch 2/4`, not
// 137/200, and the ETA covers the batches still to come.
export interface ProgressOptions {
  quiet?: boolean;
  stream?: NodeJS.WriteStream;
  /** What one unit is called in the rate ('steps', 'images' …). */
  unit?: string;
  /** Units done before this process started (a resumed run): the count starts here. Default 0. */
  start?: number;
  /** How many times the `total` units are done over (batches of a sampling run). Default 1. */
  passes?: number;
  /** What one pass is called in the line. Default 'batch'. */
  passName?: string;
}

const REDRAW_MS = 100;
const BAR = 24;

function clock(s: number): string {
  if (!Number.isFinite(s)) return '--:--';
  s = Math.round(s);
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, '0');
  const ss = String(s % 60).padStart(2, '0');
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

export class Progress {
  private readonly stream: NodeJS.WriteStream;
  private readonly tty: boolean;
  private readonly start = performance.now();
  private readonly offset: number;
  private readonly passes: number;
  private lastDraw = 0;
  private lastDecile = -1;
  private done: number;
  private passIndex = 0;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly o: ProgressOptions = {},
  ) {
    this.stream = o.stream ?? process.stderr;
    this.tty = !!this.stream.isTTY;
    this.offset = o.start ?? 0;
    this.done = this.offset;
    this.passes = Math.max(1, o.passes ?? 1);
  }

  /** Starts pass `index` (0-based) of `passes`: the count restarts at 0 of `total`. */
  pass(index: number): void {
    this.passIndex = Math.min(Math.max(0, index), this.passes - 1);
    this.done = 0;
  }

  /** Sets the units done in the current pass (absolute, counting `start`), with an optional note ('loss 0.031'). */
  update(done: number, note = ''): void {
    this.done = done;
    if (this.o.quiet) return;
    const now = performance.now();
    if (this.tty) {
      if (now - this.lastDraw < REDRAW_MS && this.overall() < this.grandTotal()) return;
      this.lastDraw = now;
      this.stream.write(`\r\x1b[K${this.line(now, note, true)}`);
    } else {
      const decile = Math.floor((10 * (this.overall() - this.offset)) / Math.max(1, this.grandTotal() - this.offset));
      if (decile === this.lastDecile || (decile === 0 && this.overall() < this.grandTotal())) return;
      this.lastDecile = decile;
      this.stream.write(`${this.line(now, note, false)}\n`);
    }
  }

  /** Ends the bar (a newline on a terminal). */
  finish(note = ''): void {
    if (this.o.quiet) return;
    if (this.tty) this.stream.write(`\r\x1b[K${this.line(performance.now(), note, true)}\n`);
    else if (this.lastDecile < 10) this.stream.write(`${this.line(performance.now(), note, false)}\n`);
  }

  /** Units done over all passes. */
  private overall(): number {
    return this.passIndex * this.total + this.done;
  }

  private grandTotal(): number {
    return this.passes * this.total;
  }

  private line(now: number, note: string, bar: boolean): string {
    const seconds = (now - this.start) / 1000;
    const rate = (this.overall() - this.offset) / Math.max(seconds, 1e-9);
    const eta = rate > 0 ? (this.grandTotal() - this.overall()) / rate : Infinity;
    const frac = Math.min(1, this.overall() / Math.max(1, this.grandTotal()));
    const filled = Math.round(frac * BAR);
    const b = bar ? ` [${'#'.repeat(filled)}${'-'.repeat(BAR - filled)}]` : '';
    const unit = this.o.unit ?? 'steps';
    const pass = this.passes > 1 ? ` ${this.o.passName ?? 'batch'} ${this.passIndex + 1}/${this.passes}` : '';
    const speed = `${rate.toFixed(rate < 10 ? 2 : 1)} ${unit}/s`;
    const tail = `${clock(seconds)} elapsed, ETA ${clock(eta)}${note ? `, ${note}` : ''}`;
    return `${this.label}${b} ${this.done}/${this.total}${pass} ${speed}, ${tail}`;
  }
}
