#!/usr/bin/env node
// Mends defects of dependencies in node_modules, in place and idempotently (run by postinstall,
// prestart, pretest, predev and prebench, and by the Dockerfile, so an `--ignore-scripts` install
// gets it too; test/unit/postgres-closed-socket.test.ts, test/unit/postgres-copy-data.test.ts and
// test/unit/ws-close-ends.test.ts fail without them): in postgres.js a crash, below, and a copy of
// every COPY byte (COPY_EDITS); in ws, an error object built and dropped twice per closed
// connection (WS_EDITS).
//
// postgres.js 3.4.9 (src/connection.js) defers writes under 1 KiB to a setImmediate. When the
// socket has closed before it runs (a terminated backend, a proxy dropping the connection),
// `nextWrite` writes to a null socket and throws from the immediate callback, where no caller can
// catch it: an uncaught TypeError that ends the process (upstream porsager/postgres#1154, #1208;
// the fix proposed there, #1209, is the one applied here). With the guard the write's query is
// rejected with CONNECTION_CLOSED; the teardown paths also forget the dead socket's pending write,
// and the COPY stream's writes reject instead of writing to a null socket.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const MARK = 'sluice-patch: closed-socket';
const COPY_MARK = 'sluice-patch: copy-data-without-concat';
const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const pkgDir = path.join(root, 'node_modules', 'postgres');

/** [what upstream has, what it becomes]; each occurs once, the COPY streams' writes twice (COPY FROM and the duplex COPY BOTH). */
const EDITS = [
  [
    '  function nextWrite(fn) {\n    const x = socket.write(chunk, fn)\n',
    `  function nextWrite(fn) {\n    if (socket === null) { // ${MARK}\n      nextWriteTimer !== null && clearImmediate(nextWriteTimer)\n      chunk = nextWriteTimer = null\n      const err = Errors.connection('CONNECTION_CLOSED', options)\n      error(err)\n      fn && fn(err)\n      return false\n    }\n    const x = socket.write(chunk, fn)\n`,
  ],
  ['    clearImmediate(nextWriteTimer)\n    if (socket) {\n', '    clearImmediate(nextWriteTimer)\n    chunk = nextWriteTimer = null\n    if (socket) {\n'],
  [
    "    clearImmediate(nextWriteTimer)\n    socket.removeListener('data', data)\n",
    "    clearImmediate(nextWriteTimer)\n    chunk = nextWriteTimer = null\n    socket.removeListener('data', data)\n",
  ],
  [
    '        socket.write(b().d().raw(chunk).end(), callback)\n',
    "        socket ? socket.write(b().d().raw(chunk).end(), callback) : callback(Errors.connection('CONNECTION_CLOSED', options))\n",
  ],
  [
    '        callback(error)\n        socket.write(b().f().str(error + b.N).end())\n',
    '        callback(error)\n        socket && socket.write(b().f().str(error + b.N).end())\n',
  ],
  [
    '      final(callback) {\n        socket.write(b().c().end())\n        final = callback\n',
    "      final(callback) {\n        if (!socket) return callback(Errors.connection('CONNECTION_CLOSED', options))\n        socket.write(b().c().end())\n        final = callback\n",
  ],
];

/**
 * The COPY streams' writes, after the guard above: postgres.js builds each CopyData message with
 * `Buffer.concat([header, chunk])`, a copy of every byte of a COPY (about 140 MB for 1M rows of
 * binary COPY) and as many bytes of fresh memory for the collector. Here the 5-byte header and
 * the chunk go to the socket as they are, in one corked write (one writev); the write callback
 * still runs once the socket has taken the chunk.
 */
const COPY_EDITS = [
  [
    "        socket ? socket.write(b().d().raw(chunk).end(), callback) : callback(Errors.connection('CONNECTION_CLOSED', options))\n",
    "        socket ? copyData(chunk, callback) : callback(Errors.connection('CONNECTION_CLOSED', options))\n",
  ],
  [
    '  function CopyInResponse() {\n',
    `  function copyData(chunk, callback) { // ${COPY_MARK}\n    const head = Buffer.allocUnsafe(5)\n    head[0] = 100\n    head.writeUInt32BE(Buffer.byteLength(chunk) + 4, 1)\n    const cork = typeof socket.cork === 'function'\n    cork && socket.cork()\n    socket.write(head)\n    socket.write(chunk, callback)\n    cork && socket.uncork()\n  }\n\n  function CopyInResponse() {\n`,
  ],
];

/**
 * ws 8 (lib/websocket.js) ends the receiver and the socket again when a peer's connection closes,
 * though they have usually ended already; Node's Writable.end() on an ended or destroyed stream
 * builds an ERR_STREAM_ALREADY_FINISHED or ERR_STREAM_DESTROYED error, with its stack trace, and
 * drops it (no callback is passed). Measured at 5,000 subscribers closing after a job's terminal
 * event: about 140 ms of the event loop's CPU in those errors alone (bench/fanout.bench.ts, CPU
 * profile). Here each end() runs only where it can still do something: on a stream that has not
 * ended and is not destroyed, which is exactly when Writable.end() acts.
 */
const WS_MARK = 'sluice-patch: end-only-open-streams';
const WS_EDITS = [
  ['  websocket._receiver.end();\n\n  this[kWebSocket] = undefined;\n', `  endOpen(websocket._receiver); // ${WS_MARK}\n\n  this[kWebSocket] = undefined;\n`],
  [
    '  websocket._readyState = WebSocket.CLOSING;\n  websocket._receiver.end();\n  this.end();\n}\n',
    `  websocket._readyState = WebSocket.CLOSING;\n  endOpen(websocket._receiver);\n  endOpen(this);\n}\n\n/** end() where it acts: not ended, not destroyed (${WS_MARK}). */\nfunction endOpen(stream) {\n  if (!stream.writableEnded && !stream.destroyed) stream.end();\n}\n`,
  ],
];

/** Applies `edits` to `text` unless `mark` is there: each `from` must occur `times(from)` times. */
function apply(text, mark, edits, times) {
  if (text.includes(mark)) return { text, outcome: 'already' };
  for (const [from, to] of edits) {
    const parts = text.split(from);
    if (parts.length - 1 !== times(from)) return { text, outcome: 'changed' };
    text = parts.join(to);
  }
  return { text, outcome: 'patched' };
}

function patch(file) {
  if (!fs.existsSync(file)) return ['absent'];
  const before = fs.readFileSync(file, 'utf8');
  const guard = apply(before, MARK, EDITS, (from) => (from.startsWith('        ') || from.startsWith('      final') ? 2 : 1));
  // The copy edit reads the guarded line, so it applies only once the guard is in.
  const copy = guard.outcome === 'changed' ? guard : apply(guard.text, COPY_MARK, COPY_EDITS, (from) => (from.startsWith('        ') ? 2 : 1));
  if (copy.text !== before) fs.writeFileSync(file, copy.text);
  return [guard.outcome, copy.outcome];
}

const wsFile = path.join(root, 'node_modules', 'ws', 'lib', 'websocket.js');
if (fs.existsSync(wsFile)) {
  const before = fs.readFileSync(wsFile, 'utf8');
  const wsVersion = JSON.parse(fs.readFileSync(path.join(root, 'node_modules', 'ws', 'package.json'), 'utf8')).version;
  const { text, outcome } = apply(before, WS_MARK, WS_EDITS, () => 1);
  if (outcome === 'changed') {
    console.warn(
      `patch-deps: ws ${wsVersion} lib/websocket.js is not the code the end-only-open-streams edit mends; check whether upstream changed it (test/unit/ws-close-ends.test.ts) and update scripts/patch-deps.mjs`,
    );
  } else if (outcome === 'patched') {
    fs.writeFileSync(wsFile, text);
    if (process.env['npm_lifecycle_event'] === 'postinstall') console.log(`patch-deps: ws ${wsVersion} lib/websocket.js: end-only-open-streams applied`);
  }
}

if (!fs.existsSync(pkgDir)) process.exit(0);
const version = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8')).version;
const NAMES = ['closed-socket guard', 'COPY data without concat'];
for (const rel of ['src/connection.js', 'cjs/src/connection.js', 'cf/src/connection.js']) {
  const outcomes = patch(path.join(pkgDir, rel));
  outcomes.forEach((outcome, i) => {
    if (outcome === 'changed') {
      console.warn(
        `patch-deps: postgres ${version} ${rel} is not the code the ${NAMES[i]} mends; check whether upstream changed it (test/unit/postgres-closed-socket.test.ts, test/unit/postgres-copy-data.test.ts) and update scripts/patch-deps.mjs`,
      );
    } else if (outcome === 'patched' && process.env['npm_lifecycle_event'] === 'postinstall') {
      console.log(`patch-deps: postgres ${version} ${rel}: ${NAMES[i]} applied`);
    }
  });
}
