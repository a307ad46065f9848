#!/usr/bin/env node
// Mends a defect of a dependency in node_modules, in place and idempotently (run by postinstall,
// prestart, pretest, predev and prebench, and by the Dockerfile, so an `--ignore-scripts` install
// gets it too; test/unit/postgres-closed-socket.test.ts fails without it).
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

function patch(file) {
  if (!fs.existsSync(file)) return 'absent';
  let text = fs.readFileSync(file, 'utf8');
  if (text.includes(MARK)) return 'already';
  for (const [from, to] of EDITS) {
    const parts = text.split(from);
    const copyStream = from.startsWith('        ') || from.startsWith('      final');
    if (parts.length - 1 !== (copyStream ? 2 : 1)) return 'changed';
    text = parts.join(to);
  }
  fs.writeFileSync(file, text);
  return 'patched';
}

if (!fs.existsSync(pkgDir)) process.exit(0);
const version = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8')).version;
for (const rel of ['src/connection.js', 'cjs/src/connection.js', 'cf/src/connection.js']) {
  const outcome = patch(path.join(pkgDir, rel));
  if (outcome === 'changed') {
    console.warn(
      `patch-deps: postgres ${version} ${rel} is not the code this patch mends; check whether upstream fixed the closed-socket crash (test/unit/postgres-closed-socket.test.ts) and update scripts/patch-deps.mjs`,
    );
  } else if (outcome === 'patched' && process.env['npm_lifecycle_event'] === 'postinstall') {
    console.log(`patch-deps: postgres ${version} ${rel}: closed-socket guard applied`);
  }
}
