import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { PGCOPY_HEADER, PGCOPY_TRAILER } from './fast-path';

/**
 * Lines per block of a split load (see splitBinaryCopy): 4,096 lines (2^12), about 250 KB of
 * binary rows for 10 columns, so a block is written in a few socket writes and the streams take
 * turns often enough to stay equally busy.
 */
export const LINE_BLOCK_SHIFT = 12;

/** The stream (0..streams-1) a line's row goes to; the partition key of a split file partition is the same expression in SQL. */
export function lineStream(line: number, streams: number): number {
  return (line >>> LINE_BLOCK_SHIFT) % streams;
}

/** The SQL form of lineStream over `_line` (a split file partition's LIST key). */
export function lineStreamSql(streams: number): string {
  return `((_line >> ${LINE_BLOCK_SHIFT}) % ${streams})`;
}

/**
 * One binary COPY (the pipeline's: header, tuples whose first field is `_line` as int4, trailer)
 * split over `targets` COPYs, each row to `targets[lineStream(_line)]`: every target gets its own
 * header, its rows in file order and the trailer. Rows are passed on as views of the written
 * chunks (no copy); a chunk's write calls back once every target has taken its part of it, so
 * the writer may reuse the chunk's memory then, as with one COPY. Ending it ends every target
 * and waits until each has finished (PostgreSQL has taken its rows); a target's error destroys
 * it, and destroying it destroys the targets.
 */
export function splitBinaryCopy(targets: Writable[]): Writable {
  const n = targets.length;
  let headerLeft = PGCOPY_HEADER.length;
  /** The end of a tuple cut by a chunk's end, joined with the next chunk. */
  let carry: Buffer | null = null;
  let sawTrailer = false;
  for (const t of targets) t.write(PGCOPY_HEADER);

  const out = new Writable({
    highWaterMark: 0,
    write(chunk: Buffer, _enc, cb) {
      const buf = carry ? Buffer.concat([carry, chunk]) : chunk;
      carry = null;
      let pos = 0;
      if (headerLeft > 0) {
        const skip = Math.min(headerLeft, buf.length);
        if (!buf.subarray(0, skip).equals(PGCOPY_HEADER.subarray(PGCOPY_HEADER.length - headerLeft, PGCOPY_HEADER.length - headerLeft + skip))) {
          cb(new Error('split COPY: the input does not start with the binary COPY header'));
          return;
        }
        headerLeft -= skip;
        pos = skip;
      }
      const parts: Buffer[][] = targets.map(() => []);
      let runStart = pos;
      let runTarget = -1;
      while (pos < buf.length) {
        if (sawTrailer) {
          cb(new Error('split COPY: bytes after the binary COPY trailer'));
          return;
        }
        if (buf.length - pos < 2) break;
        const fields = buf.readInt16BE(pos);
        if (fields === -1) {
          if (runTarget >= 0 && pos > runStart) parts[runTarget]!.push(buf.subarray(runStart, pos));
          runTarget = -1;
          sawTrailer = true;
          pos += 2;
          runStart = pos;
          continue;
        }
        // The tuple's end, or -1 when the chunk cuts it.
        let p = pos + 2;
        let line = -1;
        for (let f = 0; f < fields; f++) {
          if (p + 4 > buf.length) {
            p = -1;
            break;
          }
          const len = buf.readInt32BE(p);
          p += 4;
          if (f === 0) {
            if (len !== 4 || p + 4 > buf.length) {
              p = len !== 4 ? -2 : -1;
              break;
            }
            line = buf.readInt32BE(p);
          }
          if (len > 0) p += len;
        }
        if (p === -2) {
          cb(new Error('split COPY: a row whose first field is not a 4-byte _line'));
          return;
        }
        if (p === -1 || p > buf.length) break;
        const t = lineStream(line, n);
        if (t !== runTarget) {
          if (runTarget >= 0 && pos > runStart) parts[runTarget]!.push(buf.subarray(runStart, pos));
          runTarget = t;
          runStart = pos;
        }
        pos = p;
      }
      if (runTarget >= 0 && pos > runStart) parts[runTarget]!.push(buf.subarray(runStart, pos));
      if (pos < buf.length) carry = Buffer.from(buf.subarray(pos));

      let waiting = 1;
      let failed: Error | null = null;
      const done = (err?: Error | null) => {
        if (err) failed ??= err;
        if (--waiting === 0) cb(failed);
      };
      for (let i = 0; i < n; i++) {
        for (const part of parts[i]!) {
          waiting++;
          targets[i]!.write(part, done);
        }
      }
      done();
    },
    final(cb) {
      if (carry !== null || headerLeft > 0) {
        cb(new Error('split COPY: the input ended inside a row'));
        return;
      }
      // Each target ends with its own trailer (the input's went nowhere).
      Promise.all(
        targets.map((t) => {
          t.end(PGCOPY_TRAILER);
          return finished(t);
        }),
      ).then(() => cb(), cb);
    },
    destroy(err, cb) {
      for (const t of targets) if (!t.destroyed) t.destroy(err ?? undefined);
      cb(err);
    },
  });
  for (const t of targets) t.on('error', (err) => out.destroy(err));
  return out;
}
