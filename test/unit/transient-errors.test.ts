import { describe, expect, it } from 'vitest';
import { transientCode } from '../../src/jobs/transient-errors';
import { pipelineErrorData, revivePipelineError } from '../../src/ingest/csv-errors';

const withCode = (code: string, extra: Record<string, unknown> = {}) => Object.assign(new Error(code), { code, ...extra });

describe('transient database faults (retry table)', () => {
  it('knows connection loss, serialization failures and deadlocks, by SQLSTATE or socket code', () => {
    for (const code of [
      '57P01',
      '57P02',
      '57P03',
      '08006',
      '08003',
      '40001',
      '40P01',
      'ECONNRESET',
      'EPIPE',
      'CONNECTION_CLOSED',
      'CONNECTION_DESTROYED',
      'CONNECT_TIMEOUT',
    ]) {
      expect(transientCode(withCode(code)), code).toBe(code);
    }
  });

  it('still knows a fault that crossed from a pipeline thread (its connection lost there): the code crosses with it', () => {
    for (const code of ['EPIPE', '57P01', 'ECONNRESET']) {
      const revived = revivePipelineError(structuredClone(pipelineErrorData(withCode(code))));
      expect(transientCode(revived), code).toBe(code);
    }
  });

  it('finds the code in a wrapped cause or an AggregateError', () => {
    expect(transientCode(new Error('pipeline failed', { cause: withCode('57P01') }))).toBe('57P01');
    expect(transientCode(new AggregateError([new Error('x'), withCode('ECONNREFUSED')]))).toBe('ECONNREFUSED');
  });

  it('leaves everything else to fail the job', () => {
    for (const code of ['23505', '22P02', '42P01', '57014', '53100', 'ENOENT', 'ENOSPC']) expect(transientCode(withCode(code)), code).toBeUndefined();
    expect(transientCode(new Error('plain'))).toBeUndefined();
    expect(transientCode('57P01')).toBeUndefined();
    expect(transientCode(null)).toBeUndefined();
  });
});
