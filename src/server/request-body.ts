import type { IncomingMessage, ServerResponse } from 'node:http';
import { PassThrough } from 'node:stream';
import { ErrorCode, SluiceError } from '../shared/errors';

/** How long an unwanted request body is still read (and dropped) after the answer went out, in milliseconds. */
const LINGER_MS = 2000;

/**
 * Calls `onIdle` once when the client sends no body bytes for `idleMs` while the body is still
 * arriving. Time the body is paused by the server's own backpressure (a slow store, a resolver
 * that has not started reading yet) does not count: only the client's silence does. Attach it
 * after the body is piped somewhere, since the `data` listener it adds would otherwise start the
 * flow with nobody reading. Returns the stop function.
 */
export function watchIdleBody(req: IncomingMessage, idleMs: number, onIdle: () => void): () => void {
  if (req.complete) return () => undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  // Called per chunk: refresh() restarts the one timer instead of allocating a new one.
  const arm = () => {
    if (timer) timer.refresh();
    else {
      timer = setTimeout(fire, idleMs);
      timer.unref();
    }
  };
  const fire = () => {
    if (stopped) return;
    // Paused by a pipe's backpressure: the server is the slow side, so the clock starts again.
    if (req.readableFlowing === false) return arm();
    stop();
    onIdle();
  };
  const stop = () => {
    stopped = true;
    clearTimeout(timer);
    req.off('data', arm);
    req.off('end', stop);
    req.off('close', stop);
  };
  req.on('data', arm);
  req.once('end', stop);
  req.once('close', stop);
  arm();
  return stop;
}

/**
 * Once the answer has been sent, a request body that is still arriving is unwanted (an upload
 * refused as too large, malformed or timed out; a resolver that failed before reading its file).
 * Node then closes the connection right after the answer (`socket.destroySoon()`), and closing a
 * socket with unread input sends a TCP reset, which can destroy the answer before the client has
 * read it: clients see ECONNRESET/EPIPE instead of the 413. So this does a "lingering close", as
 * web servers do: FIN after the answer, whatever else arrives is dropped for LINGER_MS, then the
 * socket is destroyed. Nobody can make the server receive a 1 GiB body for nothing, and the socket
 * does not wait for Node's 300 s request timeout. `detach` runs first to unhook whatever was
 * consuming the body (a parser, a pass-through). Call it before the answer is written.
 */
export function closeUnfinishedBodyAfterAnswer(req: IncomingMessage, res: ServerResponse, detach: () => void = () => undefined): void {
  const socket = req.socket as IncomingMessage['socket'] & { destroySoon?: () => void };
  const destroySoon = socket.destroySoon;
  let lingering = false;
  const linger = () => {
    if (lingering) return;
    lingering = true;
    const timer = setTimeout(() => socket.destroy(), LINGER_MS);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
    req.on('data', () => undefined);
    req.resume();
    socket.end();
  };
  // Node calls destroySoon from its own 'finish' handler, which runs before any added here.
  if (typeof destroySoon === 'function') {
    socket.destroySoon = function lingerUnlessComplete(this: typeof socket) {
      socket.destroySoon = destroySoon;
      if (req.complete) return destroySoon.call(this);
      linger();
    };
  }
  // An answer that goes out before the body is complete is the connection's last: it says so, or a
  // client told keep-alive sends its next request into the closing connection (ECONNRESET).
  // Every answer passes here (`end()` without headers calls writeHead too).
  const writeHead = res.writeHead;
  res.writeHead = function closingUnlessComplete(this: ServerResponse, ...args: unknown[]) {
    res.writeHead = writeHead;
    if (!req.complete && !res.headersSent) res.setHeader('Connection', 'close');
    return (writeHead as (...a: unknown[]) => ServerResponse).apply(this, args);
  } as typeof res.writeHead;
  let done = false;
  const onAnswered = () => {
    if (done) return;
    done = true;
    detach();
    // A kept-alive socket serves the next request with Node's own behaviour.
    if (socket.destroySoon !== destroySoon) socket.destroySoon = destroySoon;
    if (!req.complete && !req.destroyed && !socket.destroyed) linger();
  };
  res.once('finish', onAnswered);
  res.once('close', onAnswered);
}

/** The error of an upload whose client went silent (answered with HTTP 408). */
export function uploadStalled(idleTimeoutMs: number): SluiceError {
  return new SluiceError(ErrorCode.REQUEST_TIMEOUT, `The upload stalled: no bytes arrived for ${idleTimeoutMs} ms`, { idleTimeoutMs });
}

/**
 * The body of a raw upload (`PUT /uploads/<id>`) as a stream its consumer may destroy: a refusal
 * (too long, wrong checksum) destroys this pass-through, never the request itself, whose socket the
 * answer still needs (destroying the request resets the connection). The stream fails with
 * REQUEST_TIMEOUT when the client goes silent for `idleTimeoutMs`; after the answer, the rest of
 * the body is dropped and the connection closed (see closeUnfinishedBodyAfterAnswer).
 */
export function guardUploadBody(req: IncomingMessage, res: ServerResponse, idleTimeoutMs: number): PassThrough {
  const body = new PassThrough();
  // The consumer's pipeline reports errors; this keeps an unread body from crashing the process.
  body.on('error', () => undefined);
  req.on('error', () => body.destroy(new Error('The request was cut off')));
  req.pipe(body);
  const stopIdle = watchIdleBody(req, idleTimeoutMs, () => body.destroy(uploadStalled(idleTimeoutMs)));
  body.once('close', () => {
    stopIdle();
    req.unpipe(body);
  });
  closeUnfinishedBodyAfterAnswer(req, res, () => {
    stopIdle();
    req.unpipe(body);
    if (!body.writableEnded) body.destroy();
  });
  return body;
}
