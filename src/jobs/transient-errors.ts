/**
 * Errors after which a job attempt runs again instead of failing: the fault was in the link to
 * PostgreSQL or in a collision between transactions, not in the job's input. One table, as in
 * graphile-worker; a code not listed here fails the job.
 */
const TRANSIENT_SQLSTATES: Readonly<Record<string, string>> = {
  '40001': 'serialization_failure',
  '40P01': 'deadlock_detected',
  '57P01': 'admin_shutdown (pg_terminate_backend, server stopping)',
  '57P02': 'crash_shutdown',
  '57P03': 'cannot_connect_now (server starting or in recovery)',
  '53300': 'too_many_connections',
  '25P03': 'idle_in_transaction_session_timeout',
  '08000': 'connection_exception',
  '08001': 'sqlclient_unable_to_establish_sqlconnection',
  '08003': 'connection_does_not_exist',
  '08004': 'sqlserver_rejected_establishment_of_sqlconnection',
  '08006': 'connection_failure',
  '08007': 'transaction_resolution_unknown',
};

/** Node socket errors and postgres.js connection errors (`err.code`) that mean the link was lost. */
const TRANSIENT_CLIENT_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'CONNECTION_CLOSED',
  'CONNECTION_DESTROYED',
  'CONNECTION_ENDED',
  'CONNECT_TIMEOUT',
]);

/** The transient code found in `err` or its causes (streams and pipelines wrap errors), if any. */
export function transientCode(err: unknown, depth = 0): string | undefined {
  if (!err || typeof err !== 'object' || depth > 8) return undefined;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (code in TRANSIENT_SQLSTATES || TRANSIENT_CLIENT_CODES.has(code))) return code;
  if (err instanceof AggregateError) {
    for (const e of err.errors) {
      const c = transientCode(e, depth + 1);
      if (c) return c;
    }
  }
  return transientCode((err as { cause?: unknown }).cause, depth + 1);
}

/**
 * Runs a read again when it hits a transient fault (a pool connection terminated under it), up to
 * `attempts` times with a short pause. For reads only: a write may have committed before the fault.
 * Subscriptions use it so that one lost connection does not end a client's stream.
 */
export async function retryTransientRead<T>(read: () => Promise<T>, attempts = 3, pauseMs = 100): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await read();
    } catch (err) {
      if (attempt >= attempts || !transientCode(err)) throw err;
      await new Promise((r) => setTimeout(r, pauseMs * attempt));
    }
  }
}
