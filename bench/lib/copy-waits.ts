/**
 * What the COPY backend of a load does while it runs, sampled from pg_stat_activity: working (no
 * wait event), waiting for the client (`Client:ClientRead`: the service has not sent the next rows
 * yet), or waiting on something else (I/O, a lock). For bench/ingest.bench.ts (BENCH_COPY_WAITS=1):
 * where PostgreSQL waits for the service, the load runs slower than PostgreSQL alone could.
 */
import postgres from 'postgres';

export interface CopyWaits {
  /** Samples that found a COPY running in the database. */
  samples: number;
  /** Sample counts by what the backend was doing: `running`, `Client:ClientRead`, `IO:DataFileWrite`, ... */
  by: Record<string, number>;
  /** The same, for samples taken after `mark()` (the upload was answered). */
  afterMark: { samples: number; by: Record<string, number> };
  intervalMs: number;
}

/** Samples every `intervalMs` the COPY backends of database `database` (over a connection of its own) until stop(). */
export function sampleCopyWaits(serverUrl: string, database: string, intervalMs = 10): { mark: () => void; stop: () => Promise<CopyWaits> } {
  const sql = postgres(serverUrl, { max: 1, onnotice: () => undefined, connection: { application_name: 'sluice-bench-copy-waits' } });
  const result: CopyWaits = { samples: 0, by: {}, afterMark: { samples: 0, by: {} }, intervalMs };
  let marked = false;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const rows = await sql<{ wait: string | null }[]>`
        select wait_event_type || ':' || wait_event as wait from pg_stat_activity
        where datname = ${database} and backend_type = 'client backend' and state = 'active' and query ilike 'copy %'`;
      for (const r of rows) {
        const key = r.wait ?? 'running';
        result.samples++;
        result.by[key] = (result.by[key] ?? 0) + 1;
        if (marked) {
          result.afterMark.samples++;
          result.afterMark.by[key] = (result.afterMark.by[key] ?? 0) + 1;
        }
      }
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  })();
  return {
    mark: () => {
      marked = true;
    },
    async stop() {
      stopped = true;
      await loop;
      await sql.end();
      return result;
    },
  };
}

/** "running 62 %, Client:ClientRead 30 %, IO:DataFileWrite 8 %" (largest first). */
export function formatCopyWaits(samples: number, by: Record<string, number>): string {
  if (samples === 0) return 'no COPY seen';
  return Object.entries(by)
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k} ${Math.round((100 * n) / samples)} %`)
    .join(', ');
}
