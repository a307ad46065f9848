import type { Terminal } from './terminal';

export interface ProgressFrame {
  /** What is being done: "Uploading data.csv", "RUNNING". */
  label: string;
  /** 0..1, or undefined when the total is unknown (the bar then shows activity only). */
  ratio?: number;
  /** Counts and rates after the bar. */
  detail?: string;
}

const BAR_WIDTH = 20;

function bar(ratio: number | undefined, tick: number): string {
  if (ratio === undefined) {
    // Unknown total: a block sweeping back and forth says "working" without claiming a fraction.
    const span = BAR_WIDTH - 4;
    const pos = Math.abs((tick % (2 * span)) - span);
    return `[${' '.repeat(pos)}████${' '.repeat(BAR_WIDTH - 4 - pos)}]`;
  }
  const r = Math.min(1, Math.max(0, ratio));
  const full = Math.round(r * BAR_WIDTH);
  return `[${'█'.repeat(full)}${'░'.repeat(BAR_WIDTH - full)}] ${(r * 100).toFixed(r < 0.1 ? 1 : 0).padStart(3)}%`;
}

/**
 * One progress line. On a terminal it redraws in place (`\r`, at most `ttyIntervalMs` apart) and
 * is cleared before any other output; elsewhere (a pipe, a CI log) it prints a plain line when the
 * label changes and otherwise at most every `plainIntervalMs`, so logs stay short and readable.
 */
export class ProgressLine {
  private lastDraw = 0;
  private lastPlain = 0;
  private lastLabel: string | undefined;
  private drawn = false;
  private tick = 0;
  private pending: ProgressFrame | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly out: Terminal,
    private readonly opts: { ttyIntervalMs?: number; plainIntervalMs?: number } = {},
  ) {}

  update(frame: ProgressFrame): void {
    const now = Date.now();
    if (this.out.isTTY) {
      this.pending = frame;
      if (now - this.lastDraw >= (this.opts.ttyIntervalMs ?? 100)) this.draw();
      else this.timer ??= setTimeout(() => this.draw(), this.opts.ttyIntervalMs ?? 100).unref();
      return;
    }
    if (frame.label !== this.lastLabel || now - this.lastPlain >= (this.opts.plainIntervalMs ?? 1000)) {
      this.lastLabel = frame.label;
      this.lastPlain = now;
      this.pending = undefined;
      this.writePlain(frame);
    } else {
      this.pending = frame;
    }
  }

  private writePlain(frame: ProgressFrame): void {
    const pct = frame.ratio === undefined ? '' : ` ${(Math.min(1, frame.ratio) * 100).toFixed(1)}%`;
    this.out.write(`${frame.label}${pct}${frame.detail ? `  ${frame.detail}` : ''}\n`);
  }

  /** Prints a line of its own above the bar. */
  log(line: string): void {
    this.clear();
    this.out.write(`${line}\n`);
    if (this.pending && this.out.isTTY) this.draw();
  }

  /** Removes the bar on a terminal; elsewhere prints the last frame if it was held back. */
  done(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.out.isTTY && this.pending) this.writePlain(this.pending);
    this.pending = undefined;
    this.clear();
  }

  private draw(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const f = this.pending;
    if (!f) return;
    this.lastDraw = Date.now();
    this.tick++;
    const text = `${f.label} ${bar(f.ratio, this.tick)}${f.detail ? `  ${f.detail}` : ''}`;
    // Never wrap: a wrapped line cannot be redrawn with \r.
    const width = Math.max(10, this.out.columns - 1);
    this.out.write(`\r\x1b[2K${text.length > width ? `${text.slice(0, width - 1)}…` : text}`);
    this.drawn = true;
  }

  private clear(): void {
    if (this.drawn && this.out.isTTY) this.out.write('\r\x1b[2K');
    this.drawn = false;
  }
}
