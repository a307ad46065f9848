/**
 * Client-side helpers for showing job and upload progress (the CLI and the jobs page share them):
 * a sliding-window rate and human-readable numbers. No I/O, no Node or DOM APIs.
 */

/** Rate of a growing counter over the last `windowMs` milliseconds. */
export class RateMeter {
  private samples: Array<{ t: number; v: number }> = [];

  constructor(private readonly windowMs = 3000) {}

  /** Records `value` (a running total) at time `t` (ms since epoch). */
  push(value: number, t = Date.now()): void {
    const last = this.samples.at(-1);
    if (last && t < last.t) return;
    this.samples.push({ t, v: value });
    while (this.samples.length > 2 && t - this.samples[1]!.t >= this.windowMs) this.samples.shift();
  }

  /** Units per second over the window; undefined until two samples at least 100 ms apart. */
  perSecond(): number | undefined {
    const first = this.samples[0];
    const last = this.samples.at(-1);
    if (!first || !last || last.t - first.t < 100) return undefined;
    return ((last.v - first.v) * 1000) / (last.t - first.t);
  }
}

/** Average units per second between two ISO or epoch-ms times; undefined when too short to say. */
export function averageRate(count: number, from: string | number | null | undefined, to: string | number | null | undefined): number | undefined {
  if (from == null || to == null) return undefined;
  const ms = new Date(to).getTime() - new Date(from).getTime();
  if (!(ms > 0)) return undefined;
  return (count * 1000) / ms;
}

const groupFormat = new Intl.NumberFormat('en-US');

/** 1234567 -> "1,234,567". */
export function formatCount(n: number | null | undefined): string {
  return n == null ? '?' : groupFormat.format(Math.round(n));
}

/** 1536 -> "1.5 KiB". */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes == null) return '?';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/** Rows (or another unit) per second: "12,345 rows/s"; "–" when unknown. */
export function formatRate(perSecond: number | undefined, unit = 'rows'): string {
  if (perSecond === undefined || !Number.isFinite(perSecond)) return `– ${unit}/s`;
  return `${formatCount(perSecond)} ${unit}/s`;
}

/** 75_000 ms -> "1m15s". */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}
