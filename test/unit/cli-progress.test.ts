import { describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/cli/command';
import { ProgressLine } from '../../src/cli/progress';
import type { Terminal } from '../../src/cli/terminal';
import { exitCodeFor } from '../../src/cli/watch-job';
import { averageRate, formatBytes, formatCount, formatDuration, formatRate, RateMeter } from '../../src/sdk/progress';

function fakeTerminal(isTTY: boolean, columns = 100): Terminal & { text: string } {
  const t = {
    text: '',
    isTTY,
    columns,
    color: false,
    write: (s: string) => {
      t.text += s;
    },
  };
  return t;
}

describe('ProgressLine', () => {
  it('on a terminal redraws one line in place with a bar and clears it before other output', () => {
    const out = fakeTerminal(true);
    const line = new ProgressLine(out, { ttyIntervalMs: 0 });
    line.update({ label: 'Uploading a.csv', ratio: 0.5, detail: '5 MiB of 10 MiB' });
    expect(out.text).toBe(`\r\x1b[2KUploading a.csv [${'█'.repeat(10)}${'░'.repeat(10)}]  50%  5 MiB of 10 MiB`);
    line.log('RUNNING');
    expect(out.text).toContain('\r\x1b[2KRUNNING\n');
    line.done();
    expect(out.text.endsWith('\r\x1b[2K')).toBe(true);
    expect(out.text).not.toContain('\n\n');
  });

  it('never wraps: a line wider than the terminal is cut', () => {
    const out = fakeTerminal(true, 30);
    new ProgressLine(out, { ttyIntervalMs: 0 }).update({ label: 'x'.repeat(100), ratio: undefined });
    const drawn = out.text.replace('\r\x1b[2K', '');
    expect(drawn.length).toBe(29);
    expect(drawn.endsWith('…')).toBe(true);
  });

  it('elsewhere prints plain lines: every label change, other updates at most once per interval, the last one at the end', () => {
    const out = fakeTerminal(false);
    const line = new ProgressLine(out, { plainIntervalMs: 60_000 });
    line.update({ label: 'QUEUED', detail: '0 rows' });
    line.update({ label: 'RUNNING', ratio: 0.1, detail: '10 rows' });
    line.update({ label: 'RUNNING', ratio: 0.2, detail: '20 rows' });
    line.update({ label: 'RUNNING', ratio: 0.3, detail: '30 rows' });
    line.done();
    expect(out.text).toBe('QUEUED  0 rows\nRUNNING 10.0%  10 rows\nRUNNING 30.0%  30 rows\n');
    expect(out.text).not.toMatch(/[\r\x1b]/);
  });
});

describe('progress numbers', () => {
  it('RateMeter measures over its window', () => {
    const m = new RateMeter(3000);
    expect(m.perSecond()).toBeUndefined();
    m.push(0, 1000);
    m.push(500, 1500);
    expect(m.perSecond()).toBe(1000);
    m.push(1500, 2000);
    expect(m.perSecond()).toBe(1500);
    // Older samples leave the window; the newest one at least a window old stays as the anchor.
    m.push(1600, 6000);
    m.push(1700, 7000);
    expect(m.perSecond()).toBeCloseTo((1700 - 1500) / 5, 5);
    m.push(2700, 11_000);
    expect(m.perSecond()).toBeCloseTo((2700 - 1700) / 4, 5);
  });

  it('formats counts, bytes, rates and durations', () => {
    expect(formatCount(1234567)).toBe('1,234,567');
    expect(formatCount(null)).toBe('?');
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(200 * 1024 * 1024)).toBe('200 MiB');
    expect(formatRate(12345.6)).toBe('12,346 rows/s');
    expect(formatRate(undefined)).toBe('– rows/s');
    expect(formatDuration(75_000)).toBe('1m15s');
    expect(formatDuration(3_700_000)).toBe('1h01m');
    expect(averageRate(1000, '2024-01-01T00:00:00Z', '2024-01-01T00:00:02Z')).toBe(500);
    expect(averageRate(1000, null, '2024-01-01T00:00:02Z')).toBeUndefined();
  });

  it('maps job states to exit codes', () => {
    expect(exitCodeFor('SUCCEEDED')).toBe(ExitCode.OK);
    expect(exitCodeFor('SUCCEEDED_WITH_ERRORS')).toBe(ExitCode.SUCCEEDED_WITH_ERRORS);
    expect(exitCodeFor('FAILED')).toBe(ExitCode.FAILURE);
    expect(exitCodeFor('CANCELLED')).toBe(ExitCode.FAILURE);
  });
});
