import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  HeartbeatDocument,
  ImportFileDocument,
  RegisterSpecDocument,
  RequestUploadUrlDocument,
  RunDiagnosticJobDocument,
  UploadFileDocument,
  type SluiceClient,
} from '../../src/sdk/client';
import { freePort } from '../../src/db/embedded';
import { codeOf, startTestApp, type TestApp } from '../helpers/app';
import { rawExchange } from '../helpers/raw-http';
import { attendanceCsv, attendanceSpec } from '../helpers/attendance';
import { collectJobEvents, FAST_JOBS } from '../helpers/jobs';

/** Parses Prometheus text into `name{labels}` -> value (label order as written by prom-client). */
function parse(text: string): Map<string, number> {
  const series = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    series.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return series;
}

async function scrape(url: string): Promise<{ text: string; series: Map<string, number> }> {
  const res = await fetch(url);
  const text = await res.text();
  expect(res.status, text).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return { text, series: parse(text) };
}

/** The value of the one series whose name and labels include every `labels` pair. */
function value(series: Map<string, number>, name: string, labels: Record<string, string> = {}): number | undefined {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const hits = [...series.entries()].filter(([key]) => {
    const base = key.split('{', 1)[0];
    return base === name && want.every((w) => key.includes(w));
  });
  if (hits.length > 1) throw new Error(`${name} ${JSON.stringify(labels)} matches ${hits.length} series: ${hits.map(([k]) => k).join(', ')}`);
  return hits[0]?.[1];
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

describe('GET /metrics (Prometheus text)', () => {
  let t: TestApp;
  let ingestor: SluiceClient;

  beforeAll(async () => {
    t = await startTestApp({ ...FAST_JOBS });
    ingestor = await t.clientWith(['INGESTOR']);
    await t.admin.request(RegisterSpecDocument, { kind: 'EVENT', spec: attendanceSpec });
  });

  it('after an ingestion: requests by operation and status, job durations, rows ingested and invalid, bytes uploaded, pool, event loop', async () => {
    expect(t.app.metricsUrl).toBe(`${t.url}/metrics`);
    const before = (await scrape(`${t.url}/metrics`)).series;

    // 10 rows, every 4th invalid: 8 valid, 2 invalid, by multipart upload.
    const csv = attendanceCsv(10, 4);
    const { uploadFile } = await ingestor.upload(
      UploadFileDocument,
      { program: 'state_prog', spec: 'attendance', file: null },
      { file: { body: csv, filename: 'attendance.csv', contentType: 'text/csv' } },
    );
    const events = await collectJobEvents(ingestor, uploadFile.job.id, { afterSeq: 0 });
    expect(events.at(-1)).toMatchObject({ state: 'SUCCEEDED_WITH_ERRORS' });

    // And 3 valid rows by signed URL (counted when imported).
    const signed = 'date,school_id,present\n01/03/23,a1,1\n01/03/23,a2,2\n01/03/23,a3,3\n';
    const { requestUploadUrl: u } = await ingestor.request(RequestUploadUrlDocument, {
      input: { fileName: 'signed.csv', program: 'state_prog', spec: 'attendance', size: signed.length, sha256: sha256(signed) },
    });
    const put = await fetch(u.url, { method: 'PUT', headers: Object.fromEntries(u.headers.map((h) => [h.name, h.value])), body: signed });
    expect(put.status).toBe(200);
    const { importFile } = await ingestor.request(ImportFileDocument, { fileId: u.fileId, mode: 'SYNC' });
    expect(importFile.job.state).toBe('SUCCEEDED');

    // A refused request is counted with its status too.
    const refused = await fetch(`${t.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'query Broken { nope }' }),
    });
    expect(refused.status).toBe(400);

    const { text, series } = await scrape(`${t.url}/metrics`);
    const delta = (name: string, labels: Record<string, string> = {}) => (value(series, name, labels) ?? 0) - (value(before, name, labels) ?? 0);

    expect(delta('sluice_http_request_duration_seconds_count', { method: 'POST', route: '/graphql', operation: 'UploadFile', status: '200' })).toBe(1);
    expect(delta('sluice_http_request_duration_seconds_count', { method: 'POST', route: '/graphql', operation: 'ImportFile', status: '200' })).toBe(1);
    expect(delta('sluice_http_request_duration_seconds_count', { method: 'PUT', route: '/uploads/:fileId', operation: '(none)', status: '200' })).toBe(1);
    expect(delta('sluice_http_request_duration_seconds_count', { method: 'POST', route: '/graphql', operation: '(none)', status: '400' })).toBe(1);
    expect(value(series, 'sluice_http_request_duration_seconds_bucket', { operation: 'UploadFile', status: '200', le: '+Inf' })).toBe(1);
    expect(value(series, 'sluice_http_request_duration_seconds_sum', { operation: 'UploadFile', status: '200' })).toBeGreaterThan(0);

    expect(value(series, 'sluice_rows_ingested_total', { type: 'cqube.ingest-file' })).toBe(11);
    expect(value(series, 'sluice_rows_invalid_total', { type: 'cqube.ingest-file' })).toBe(2);
    expect(value(series, 'sluice_upload_bytes_total', { via: 'multipart' })).toBe(Buffer.byteLength(csv));
    expect(value(series, 'sluice_upload_bytes_total', { via: 'signed_url' })).toBe(signed.length);
    expect(value(series, 'sluice_job_duration_seconds_count', { type: 'cqube.ingest-file', state: 'SUCCEEDED_WITH_ERRORS' })).toBe(1);
    expect(value(series, 'sluice_job_duration_seconds_count', { type: 'cqube.ingest-file', state: 'SUCCEEDED' })).toBe(1);
    expect(value(series, 'sluice_job_duration_seconds_sum', { type: 'cqube.ingest-file', state: 'SUCCEEDED' })).toBeGreaterThan(0);

    // Nothing waits: both jobs ended.
    expect(value(series, 'sluice_job_queue_depth')).toBe(0);
    // One pool for ordinary queries (DATABASE_POOL_MAX=5); the drizzle pool that added half as many is gone.
    expect(value(series, 'sluice_db_pool_max_connections')).toBe(5);
    // At least the connection that read pg_stat_activity was active.
    expect(value(series, 'sluice_db_pool_connections', { state: 'active' })).toBeGreaterThanOrEqual(1);
    expect(value(series, 'sluice_ws_subscriptions_open')).toBe(0);
    expect(value(series, 'nodejs_eventloop_lag_seconds')).toBeGreaterThanOrEqual(0);
    expect(text).toMatch(/^# TYPE sluice_http_request_duration_seconds histogram$/m);
    expect(text).toMatch(/^# HELP sluice_rows_ingested_total /m);
  });

  it('times each round of job-event delivery to subscriptions (the feed waking them to their socket writes)', async () => {
    const before = (await scrape(`${t.url}/metrics`)).series;
    const { runDiagnosticJob: job } = await t.admin.request(RunDiagnosticJobDocument, { input: { to: 10, stepMs: 100 } });
    // No afterSeq: a SNAPSHOT, then the live events, which the job's feed hands to this subscription.
    const events = await collectJobEvents(t.admin, job.id);
    const live = events.filter((e) => e.kind !== 'SNAPSHOT');
    expect(live.length).toBeGreaterThan(0);
    const { series } = await scrape(`${t.url}/metrics`);
    const delta = (name: string) => (value(series, name) ?? 0) - (value(before, name) ?? 0);
    const rounds = delta('sluice_ws_fanout_round_seconds_count');
    // A round per read of new events: at least one, at most one per live event.
    expect(rounds).toBeGreaterThanOrEqual(1);
    expect(rounds).toBeLessThanOrEqual(live.length);
    // One subscription on the job: each round woke exactly it.
    expect(delta('sluice_ws_fanout_subscriptions_woken_total')).toBe(rounds);
    expect(delta('sluice_ws_fanout_round_seconds_sum')).toBeGreaterThan(0);
  });

  it('counts open subscriptions and queued jobs (read from the database at scrape time)', async () => {
    const beats = ingestor.subscribe(HeartbeatDocument, { intervalMs: 60_000, count: 5 });
    const first = beats.next();
    let open = 0;
    for (let i = 0; i < 100 && open < 1; i++) {
      open = value((await scrape(`${t.url}/metrics`)).series, 'sluice_ws_subscriptions_open') ?? 0;
      if (open < 1) await new Promise((r) => setTimeout(r, 50));
    }
    expect(open).toBe(1);
    await beats.return?.();
    void first.catch(() => undefined);
    let closed = 1;
    for (let i = 0; i < 100 && closed > 0; i++) {
      closed = value((await scrape(`${t.url}/metrics`)).series, 'sluice_ws_subscriptions_open') ?? -1;
      if (closed > 0) await new Promise((r) => setTimeout(r, 50));
    }
    expect(closed).toBe(0);

    // An API-only process on a database of its own: the job it queues stays QUEUED.
    const api = await startTestApp({ SLUICE_ROLE: 'api' });
    await api.admin.request(RunDiagnosticJobDocument, { input: { to: 3 } });
    await api.admin.request(RunDiagnosticJobDocument, { input: { to: 3 } });
    const { series } = await scrape(`${api.url}/metrics`);
    expect(value(series, 'sluice_job_queue_depth')).toBe(2);
    expect(value(series, 'sluice_jobs', { type: 'diagnostic.count', state: 'QUEUED' })).toBe(2);
    expect(value(series, 'sluice_jobs', { state: 'RUNNING' })).toBeUndefined();
  });

  it('SLUICE_METRICS_PORT serves them on a port of their own, and not on the main one; SLUICE_METRICS=off turns them off', async () => {
    const port = await freePort();
    const separate = await startTestApp({ SLUICE_METRICS_PORT: String(port) });
    expect(separate.app.metricsUrl).toBe(`http://127.0.0.1:${port}/metrics`);
    const { series } = await scrape(separate.app.metricsUrl!);
    expect(value(series, 'sluice_job_queue_depth')).toBe(0);
    expect((await fetch(`${separate.url}/metrics`)).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${port}/graphql`)).status).toBe(404);
    // A CONNECT is answered there too (405, JSON), not dropped unanswered.
    const connect = await rawExchange(`http://127.0.0.1:${port}`, ['CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n'], { responses: 1 });
    expect(connect.responses[0]?.status).toBe(405);
    expect(codeOf(JSON.parse(connect.responses[0]!.body))).toBe('BAD_HTTP_METHOD');

    const off = await startTestApp({ SLUICE_METRICS: 'off' });
    expect(off.app.metricsUrl).toBeUndefined();
    expect((await fetch(`${off.url}/metrics`)).status).toBe(404);
  });
});
