/**
 * One client process of the fan-out benchmark (bench/fanout.bench.ts forks a few): opens its
 * share of the graphql-ws subscribers, reports their SNAPSHOTs, then records what each receives
 * and when, and reports it all once they are done. Its own event-loop delay and CPU time during
 * the job are reported too, so the run shows how much of the latency is the clients' own.
 *
 * Messages from the parent: `open` (start connecting), `watch` (the job is about to start),
 * `timeout` (give up on those not done), `close`. To the parent: `ready`, `done`.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { print } from 'graphql';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { type JobEventFieldsFragment, JobUpdatedDocument } from '../../src/sdk/client';

export interface OpenMessage {
  type: 'open';
  wsUrl: string;
  token: string;
  jobId: string;
  count: number;
  /** Connections opened at once by this process. */
  batch: number;
}

export type ToClients = OpenMessage | { type: 'watch' } | { type: 'timeout' } | { type: 'close' };

export interface SubscriberResult {
  snapshotSeq: number | null;
  /** seqs of live events, as received. */
  seqs: number[];
  /** Commit-to-client ms of each live event. */
  latency: number[];
  terminal: boolean;
  completed: boolean;
  error: string | null;
}

export type FromClients =
  | { type: 'ready'; snapshotSeqs: Array<number | null>; error: string | null }
  | { type: 'done'; subscribers: SubscriberResult[]; lagMs: { p50: number; p99: number; max: number }; cpuSeconds: number };

interface Subscriber extends SubscriberResult {
  client: Client;
  ready: Promise<void>;
  done: Promise<void>;
}

function subscribe(wsUrl: string, token: string, jobId: string): Subscriber {
  const client = createClient({
    url: wsUrl,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${token}` },
    retryAttempts: 0,
    lazy: true,
  });
  let onReady!: () => void;
  let onDone!: () => void;
  const s: Subscriber = {
    client,
    snapshotSeq: null,
    seqs: [],
    latency: [],
    terminal: false,
    completed: false,
    error: null,
    ready: new Promise<void>((r) => (onReady = r)),
    done: new Promise<void>((r) => (onDone = r)),
  };
  const fail = (message: string) => {
    s.error ??= message;
    onReady();
    onDone();
  };
  client.on('closed', (e) => {
    if (!s.completed) fail(`socket closed ${(e as { code?: number }).code ?? ''} ${(e as { reason?: string }).reason ?? ''}`.trim());
  });
  client.subscribe<{ jobUpdated: JobEventFieldsFragment }>(
    { query: print(JobUpdatedDocument), variables: { id: jobId } },
    {
      next: (r) => {
        const receivedAt = Date.now();
        const e = r.data?.jobUpdated;
        if (!e) return fail(`error: ${JSON.stringify(r.errors)}`);
        if (e.kind === 'SNAPSHOT') {
          if (s.snapshotSeq !== null) return fail(`second SNAPSHOT at seq ${e.seq}`);
          s.snapshotSeq = e.seq;
          if (e.terminal) s.terminal = true;
          return onReady();
        }
        s.seqs.push(e.seq);
        s.latency.push(receivedAt - Date.parse(e.at));
        if (e.terminal) s.terminal = true;
      },
      error: (err) => fail(`subscription error: ${err instanceof Error ? err.message : JSON.stringify(err)}`),
      complete: () => {
        s.completed = true;
        onReady();
        onDone();
      },
    },
  );
  return s;
}

const subs: Subscriber[] = [];
const send = (m: FromClients) => process.send!(m);
const result = ({ snapshotSeq, seqs, latency, terminal, completed, error }: Subscriber): SubscriberResult => ({
  snapshotSeq,
  seqs,
  latency,
  terminal,
  completed,
  error,
});

process.on('message', (m: ToClients) => {
  if (m.type === 'open') {
    void (async () => {
      for (let i = 0; i < m.count; i += m.batch) {
        const wave = Array.from({ length: Math.min(m.batch, m.count - i) }, () => subscribe(m.wsUrl, m.token, m.jobId));
        subs.push(...wave);
        await Promise.all(wave.map((s) => s.ready));
        const failed = wave.find((s) => s.error || s.snapshotSeq === null);
        if (failed) return send({ type: 'ready', snapshotSeqs: [], error: failed.error ?? 'no SNAPSHOT' });
      }
      send({ type: 'ready', snapshotSeqs: subs.map((s) => s.snapshotSeq), error: null });
    })();
  } else if (m.type === 'watch') {
    const cpu = process.cpuUsage();
    const lag = monitorEventLoopDelay({ resolution: 10 });
    lag.enable();
    void Promise.all(subs.map((s) => s.done)).then(() => {
      lag.disable();
      const used = process.cpuUsage(cpu);
      send({
        type: 'done',
        subscribers: subs.map(result),
        lagMs: { p50: lag.percentile(50) / 1e6, p99: lag.percentile(99) / 1e6, max: lag.max / 1e6 },
        cpuSeconds: (used.user + used.system) / 1e6,
      });
    });
  } else if (m.type === 'timeout') {
    for (const s of subs) s.error ??= s.terminal ? 'no complete after the terminal event' : `timed out after ${s.seqs.length} events`;
    // Unblocks the `done` report above.
    for (const s of subs) void s.client.dispose();
  } else if (m.type === 'close') {
    void Promise.all(subs.map((s) => s.client.dispose())).finally(() => process.exit(0));
  }
});
