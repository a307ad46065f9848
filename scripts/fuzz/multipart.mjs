// Multipart uploads (the GraphQL multipart request spec) built from valid parts, then reordered,
// dropped, duplicated and mutated byte by byte, under several Content-Types, each on one
// kept-alive connection shared by the whole run (as an HTTP agent reuses them). No answer may be
// a 5xx or INTERNAL_SERVER_ERROR; every request gets an answer (none reset) unless its
// Content-Length lies; a connection the server closes after an answer must have been told so.
// Usage: SLUICE_URL=… SLUICE_CLIENT_ID=… SLUICE_CLIENT_SECRET=… node scripts/fuzz/multipart.mjs [seed] [count]
import http from 'node:http';
import { adminToken, BASE, COUNT, errorCodes, random, report } from './lib.mjs';

const token = await adminToken();
const { rnd, pick } = random();
const B = 'XyZbOuNdArY';
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function body() {
  const query = pick([
    'mutation ($file: Upload!) { uploadFile(program: "fuzz_attendance", spec: "fuzz_attendance", file: $file) { file { id } job { id } } }',
    'mutation ($files: [Upload!]!) { uploadFiles(program: "fuzz_attendance", spec: "fuzz_attendance", files: $files) { __typename } }',
    'mutation ($file: Upload!) { validateFile(spec: "fuzz_attendance", file: $file) { __typename } }',
  ]);
  const ops = JSON.stringify({ query, variables: { file: null, files: [null, null] } });
  const map = pick([
    JSON.stringify({ 0: ['variables.file'] }),
    JSON.stringify({ 0: ['variables.files.0'], 1: ['variables.files.1'] }),
    '{"0":["variables.nope"]}',
    '{"0":"x"}',
    '[]',
    '{',
    JSON.stringify({ 0: ['variables.file'], 1: ['variables.file'] }),
  ]);
  const csv = pick([
    'date,school_id,present\n01/03/23,s1,3\n',
    'date,school_id,present\r\n01/03/23,"s\n1",3',
    '\u00ef\u00bb\u00bfdate;school_id;present\n',
    'x'.repeat(70000),
    '',
    `--${B}\r\n`,
    'PK\u0003\u0004garbage',
  ]);
  let parts = [
    `--${B}\r\nContent-Disposition: form-data; name="operations"\r\n\r\n${ops}\r\n`,
    `--${B}\r\nContent-Disposition: form-data; name="map"\r\n\r\n${map}\r\n`,
    `--${B}\r\nContent-Disposition: form-data; name="0"; filename="a.csv"\r\nContent-Type: text/csv\r\n\r\n${csv}\r\n`,
    `--${B}\r\nContent-Disposition: form-data; name="1"; filename="b.csv"\r\n\r\n${csv}\r\n`,
  ];
  if (rnd() < 0.2) parts.reverse();
  if (rnd() < 0.2) parts = parts.filter(() => rnd() < 0.7);
  if (rnd() < 0.2) parts.push(parts[Math.floor(rnd() * parts.length)] ?? '');
  let buf = Buffer.from(parts.join('') + (rnd() < 0.85 ? `--${B}--\r\n` : ''), 'latin1');
  for (let i = Math.floor(rnd() * 4); i > 0; i--) {
    const at = Math.floor(rnd() * buf.length);
    const op = rnd();
    if (op < 0.3) buf[at] = Math.floor(rnd() * 256);
    else if (op < 0.5) buf = buf.subarray(0, at);
    else if (op < 0.75)
      buf = Buffer.concat([buf.subarray(0, at), Buffer.from(pick(['\r\n', `--${B}`, '"', '\0', 'filename="', '\r\n\r\n', ';name=0'])), buf.subarray(at)]);
    else buf = Buffer.concat([buf.subarray(0, at), buf.subarray(Math.min(buf.length, at + Math.floor(rnd() * 50)))]);
  }
  return buf;
}

function send(buf) {
  return new Promise((resolve) => {
    const contentType = pick([
      `multipart/form-data; boundary=${B}`,
      `multipart/form-data; boundary="${B}"`,
      'multipart/form-data',
      `multipart/form-data; boundary=${B}; charset=latin1`,
      `multipart/mixed; boundary=${B}`,
    ]);
    const headers = { authorization: `Bearer ${token}`, 'apollo-require-preflight': 'true', 'content-type': contentType };
    const lie = rnd() < 0.1;
    headers['content-length'] = lie ? buf.length + 10 : buf.length;
    const req = http.request(`${BASE}/graphql`, { method: 'POST', headers, timeout: 3000, agent }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode, text, lie }));
    });
    req.on('timeout', () => {
      req.destroy();
      resolve({ status: 'timeout', text: '', lie });
    });
    req.on('error', (e) => resolve({ status: `error ${e.code}`, text: '', lie }));
    req.end(buf);
  });
}

const out = report('multipart');
const statuses = {};
let previous = null;
for (let i = 0; i < COUNT; i++) {
  const buf = body();
  const r = await send(buf);
  statuses[r.status] = (statuses[r.status] ?? 0) + 1;
  const codes = r.text ? errorCodes(r.text) : [];
  const failed = typeof r.status !== 'number';
  // A lying Content-Length may time out or be cut off, and so may the request after it on the same connection.
  if (
    (typeof r.status === 'number' && r.status >= 500) ||
    codes.includes('INTERNAL_SERVER_ERROR') ||
    codes.includes(undefined) ||
    codes.includes('UNPARSEABLE') ||
    (failed && !r.lie && !previous?.lie)
  ) {
    out.bad(`${r.status} after ${previous?.status} ${r.text.slice(0, 200)} ${JSON.stringify(buf.toString('latin1').slice(0, 300))}`);
  }
  previous = r;
}
await out.done(COUNT, `answers ${JSON.stringify(statuses)}`);
