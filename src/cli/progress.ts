// A progress bar on stderr: redrawn in place on a terminal, a plain line every ~10% otherwise (logs, CI).
export interface ProgressOptions {
  quiet?: boolean;
  stream?: NodeJS.WriteStream;
  /** What one unit is called in the rate ('steps', 'images' …). */
  unit?: string;
}

const REDRAW_MS = 100;
const BAR = 24;

function clock(s: number): string {
  if (!Number.isFinite(s)) return '--:--';
  s = Math.round(s);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const mm = String(m).padStart(2, '0'), ss = String(sec).padStart(2, '0');
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

export class Progress {
  private readonly stream: NodeJS.WriteStream;
  private readonly tty: boolean;
  private readonly start = performance.now();
  private lastDraw = 0;
  private lastDecile: number;
  private done = 0;

  constructor(private readonly label: string, private readonly total: number, private readonly o: ProgressOptions = {}) {
    this.stream = o.stream ?? process.stderr;
    this.tty = !!this.stream.isTTY;
    this.lastDecile = -1;
  }

  /** Sets the units done (absolute), with an optional note ('loss 0.031'). */
  update(done: number, note = ''): void {
    this.done = done;
    if (this.o.quiet) return;
    const now = performance.now();
    if (this.tty) {
      if (now - this.lastDraw < REDRAW_MS && done < this.total) return;
      this.lastDraw = now;
      this.stream.write(`\r\x1b[K${this.line(now, note, true)}`);
    } else {
      const decile = Math.floor((10 * done) / Math.max(1, this.total));
      if (decile === this.lastDecile || (decile === 0 && done < this.total)) return;
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

  private line(now: number, note: string, bar: boolean): string {
    const seconds = (now - this.start) / 1000;
    const rate = this.done / Math.max(seconds, 1e-9);
    const eta = rate > 0 ? (this.total - this.done) / rate : Infinity;
    const frac = Math.min(1, this.done / Math.max(1, this.total));
    const filled = Math.round(frac * BAR);
    const b = bar ? ` [${'#'.repeat(filled)}${'-'.repeat(BAR - filled)}]` : '';
    const unit = this.o.unit ?? 'steps';
    return `${this.label}${b} ${this.done}/${this.total} ${rate.toFixed(rate < 10 ? 2 : 1)} ${unit}/s, ${clock(seconds)} elapsed, ETA ${clock(eta)}${note ? `, ${note}` : ''}`;
  }
}
