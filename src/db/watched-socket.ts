import net from 'node:net';

/** The connection options postgres.js hands to a `socket` factory (the parsed URL). */
interface SocketTarget {
  host: string[];
  port: number[];
  path?: string | false;
}

/** Why a watched socket was destroyed; postgres.js rejects the connection's queries with it. */
export class NoAnswerError extends Error {
  readonly code = 'ETIMEDOUT';
  constructor(readonly timeoutMs: number) {
    super(`The database sent nothing for ${timeoutMs} ms while a request was waiting; the connection was dropped as half-open`);
    this.name = 'NoAnswerError';
  }
}

/**
 * A postgres.js `socket` factory whose sockets die when the server stops answering.
 *
 * Why: on a half-open link (packets dropped, no reset) a request waits for an answer that never
 * comes; TCP keepalive does not probe a socket with unacknowledged data and Node cannot set
 * TCP_USER_TIMEOUT, so the query, its pool slot and whatever awaits it hang for good. The
 * watchdog drops a socket that has a request outstanding (bytes written after the last byte read)
 * and has made no progress (nothing read, nothing flushed to the kernel) for `noAnswerMs`.
 * Idle and LISTEN connections have no request outstanding and are never dropped; a COPY that is
 * still streaming makes progress. Every other statement is bounded by the server's
 * statement_timeout, which must be shorter than `noAnswerMs`.
 */
export function watchedSocketFactory(noAnswerMs: number): (target: SocketTarget) => net.Socket {
  let next = 0;
  return (target) => {
    const socket = target.path
      ? net.connect({ path: target.path })
      : net.connect({ host: target.host[next % target.host.length]!, port: target.port[next++ % target.port.length]! });
    watch(socket, noAnswerMs);
    deferUnexpectedClose(socket);
    return socket;
  };
}

/** How long an unexpected 'close' is held back (see deferUnexpectedClose). */
const CLOSE_DEFER_MS = 250;

/**
 * Works around porsager/postgres#1154 and #1208 (open in 3.4.9): when a connection closes under a
 * transaction, postgres.js nulls its socket on 'close' and the transaction's ROLLBACK, written a
 * moment later from a setImmediate, throws a TypeError no caller can catch, killing the process.
 * Holding back a 'close' the client did not ask for lets that write reach the dead socket (where
 * it fails harmlessly) before postgres.js forgets it; its 'error' has already failed the queries.
 */
function deferUnexpectedClose(socket: net.Socket): void {
  let endedByClient = false;
  const end = socket.end.bind(socket) as (...args: unknown[]) => net.Socket;
  socket.end = ((...args: unknown[]) => {
    // postgres.js ends with a Terminate message; Node's own end after the peer's FIN has none.
    if (args[0] !== undefined && typeof args[0] !== 'function') endedByClient = true;
    return end(...args);
  }) as typeof socket.end;
  const emit = socket.emit.bind(socket) as (event: string | symbol, ...args: unknown[]) => boolean;
  socket.emit = ((event: string | symbol, ...args: unknown[]) => {
    if (event !== 'close' || endedByClient) return emit(event, ...args);
    setTimeout(() => emit(event, ...args), CLOSE_DEFER_MS);
    return true;
  }) as typeof socket.emit;
}

function watch(socket: net.Socket, noAnswerMs: number): void {
  let readAt = Date.now();
  let writtenAtRead = 0;
  let lastFlushed = 0;
  let progressAt = Date.now();
  const onData = () => {
    readAt = Date.now();
    writtenAtRead = socket.bytesWritten;
  };
  socket.on('data', onData);
  const timer = setInterval(
    () => {
      // postgres.js removes every listener when it hands the socket to TLS: not watched then.
      if (socket.destroyed || !socket.listeners('data').includes(onData)) {
        clearInterval(timer);
        return;
      }
      const now = Date.now();
      const flushed = socket.bytesWritten - socket.writableLength;
      if (flushed !== lastFlushed) {
        lastFlushed = flushed;
        progressAt = now;
      }
      const waiting = socket.bytesWritten > writtenAtRead;
      if (waiting && now - Math.max(progressAt, readAt) > noAnswerMs) socket.destroy(new NoAnswerError(noAnswerMs));
    },
    Math.max(100, Math.floor(noAnswerMs / 4)),
  );
  timer.unref();
}
