import { gzipSync } from 'node:zlib';
import yazl from 'yazl';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  CreateClientDocument,
  FileDocument,
  FileRowErrorsDocument,
  FilesDocument,
  JobUpdatedDocument,
  RegisterSpecDocument,
  UploadFileDocument,
  ValidateFileDocument,
  type SluiceClient,
} from '../../src/sdk/client';
import type { CsvDelimiter, CsvEncoding } from '../../src/sdk/generated';
import { codeOf, startTestApp, type TestApp } from '../helpers/app';
import { collectJobEvents, FAST_JOBS } from '../helpers/jobs';

/**
 * Hostile bytes through the public API: each ends in a coded answer (never INTERNAL_ERROR) and
 * nothing of it is stored as data; validation stays linear in the input.
 */
let t: TestApp;
let ingestor: SluiceClient;

const spec = {
  program: 'hostile',
  input: {
    type: 'object',
    properties: {
      id: { type: 'integer', shouldNotNull: true },
      amount: { type: 'number' },
      name: { type: 'string' },
      code: { type: 'string', pattern: '^[A-Z]+$' },
    },
    required: ['id'],
  },
};

beforeAll(async () => {
  t = await startTestApp({ ...FAST_JOBS });
  ingestor = await t.clientWith(['INGESTOR']);
  await t.admin.request(RegisterSpecDocument, { kind: 'EVENT', spec });
});

async function ingest(body: Uint8Array | string, name = 'hostile.csv', dialect: { encoding?: CsvEncoding; delimiter?: CsvDelimiter } = {}) {
  const { uploadFile } = await ingestor.upload(
    UploadFileDocument,
    { program: 'hostile', spec: 'hostile', file: null, ...dialect },
    { file: { body: typeof body === 'string' ? Buffer.from(body) : body, filename: name, contentType: 'text/csv' } },
  );
  const events = await collectJobEvents(ingestor, uploadFile.job.id, { afterSeq: 0, timeoutMs: 60_000 });
  const { file } = await ingestor.request(FileDocument, { id: uploadFile.file.id });
  return { last: events.at(-1)!, file, id: uploadFile.file.id };
}

async function rowsOf(fileId: string) {
  return t.database.sql`select id, amount, name, code from ds_hostile_v1 where _file_id = ${fileId} order by _line`;
}

function zipOf(name: string, body: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const z = new yazl.ZipFile();
    z.addBuffer(Buffer.from(body), name);
    z.end();
    const parts: Buffer[] = [];
    z.outputStream
      .on('data', (c: Buffer) => parts.push(c))
      .on('end', () => resolve(Buffer.concat(parts)))
      .on('error', reject);
  });
}

describe('validation is linear in the input', () => {
  it('a file of ~1 MB adversarial cells (digits then a letter, for number, integer and pattern) finishes promptly', async () => {
    const digits = '1'.repeat(300_000);
    const csv = `id,amount,name,code\n1,${digits}a,x,A\n2,1.5,y,${'A'.repeat(300_000)}1\n3,${digits}.${digits}x,z,B\n4,2,ok,C\n`;
    const started = Date.now();
    const { last, file } = await ingest(csv);
    // The quadratic number regex needed minutes for this file; the bound is generous for a slow machine.
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(last).toMatchObject({ state: 'SUCCEEDED_WITH_ERRORS' });
    expect(file.rows).toEqual({ total: 4, valid: 1, invalid: 3 });
    const { file: errs } = await ingestor.request(FileRowErrorsDocument, { id: file.id, first: 10 });
    expect(errs.rowErrors.nodes.map((e) => [e.line, e.column, e.code])).toEqual([
      [2, 'amount', 'NOT_A_NUMBER'],
      [3, 'code', 'TOO_LONG'],
      [4, 'amount', 'NOT_A_NUMBER'],
    ]);
    expect(errs.rowErrors.nodes.every((e) => e.message.length < 300)).toBe(true);
  });

  it('refuses a spec whose pattern backtracks polynomially', async () => {
    const res = await t.admin.raw(RegisterSpecDocument, {
      kind: 'EVENT',
      spec: { program: 'poly', input: { type: 'object', properties: { s: { type: 'string', pattern: '^\\d+\\d+\\d+x' } } } },
    });
    expect(codeOf(res.body), JSON.stringify(res.body)).toBe('BAD_USER_INPUT');
    expect((res.body.errors![0]!.extensions!['problems'] as Array<{ code: string }>).map((p) => p.code)).toEqual(['UNSAFE_PATTERN']);
  });
});

describe('bad bytes get a coded answer', () => {
  it.each([
    ['a ZIP (xlsx) uploaded as CSV', async () => zipOf('hostile.csv', 'id\n1\n'), 'NOT_A_CSV'],
    ['a gzip file', async () => gzipSync(Buffer.from('id,amount\n1,2\n')), 'NOT_A_CSV'],
    ['an ELF executable', async () => Buffer.concat([Buffer.from('7f454c4602010100', 'hex'), Buffer.alloc(2000)]), 'NOT_A_CSV'],
    ['a UTF-16LE file without BOM', async () => Buffer.from('id,amount\n1,2\n', 'utf16le'), 'UNSUPPORTED_ENCODING'],
    ['mixed CR-only and LF line endings', async () => Buffer.from('id,name\n1,a\n2,b\r3,c\r4,d\n'), 'MIXED_LINE_ENDINGS'],
  ])('%s fails the file with %s and stores no row', async (_label, body, code) => {
    const { last, file, id } = await ingest(await body());
    expect(last).toMatchObject({ state: 'FAILED', error: { code } });
    expect(file).toMatchObject({ state: 'FAILED', error: { code }, rows: { valid: 0 } });
    expect(await rowsOf(id)).toHaveLength(0);
  });

  it('a NUL in the header is a HEADER_INVALID problem, with the cell made printable', async () => {
    const { last, file } = await ingest('id,na\u0000me\n1,a\n');
    expect(last).toMatchObject({ state: 'FAILED', error: { code: 'HEADER_INVALID' } });
    expect(file.error).toMatchObject({ code: 'HEADER_INVALID', problems: [{ code: 'INVALID_CHARACTER', column: 'na\ufffdme' }] });
  });

  it('invalid UTF-8 (0x93, C3 28, C0 AF) is an INVALID_UTF8 row error with line and column, never stored', async () => {
    const pad = 'p'.repeat(1500);
    const csv = Buffer.concat([
      Buffer.from(`id,name\n1,${pad}\n2,a`),
      Buffer.from([0x93]),
      Buffer.from('b\n3,c'),
      Buffer.from([0xc3, 0x28]),
      Buffer.from('d\n4,"e'),
      Buffer.from([0xc0, 0xaf]),
      Buffer.from('f"\n5,ok\n'),
    ]);
    const { last, file, id } = await ingest(csv);
    expect(last).toMatchObject({ state: 'SUCCEEDED_WITH_ERRORS' });
    expect(file.rows).toEqual({ total: 5, valid: 2, invalid: 3 });
    const { file: errs } = await ingestor.request(FileRowErrorsDocument, { id, first: 10 });
    expect(errs.rowErrors.nodes.map((e) => [e.line, e.column, e.code])).toEqual([
      [3, 'name', 'INVALID_UTF8'],
      [4, 'name', 'INVALID_UTF8'],
      [5, 'name', 'INVALID_UTF8'],
    ]);
    const rows = await rowsOf(id);
    expect(rows.map((r) => r['name'])).toEqual([pad, 'ok']);
  });

  it('a 120,000-column header gets a bounded problem list and message, with the count', async () => {
    const header = Array.from({ length: 120_000 }, (_, i) => `c${i}`).join(','); // 0.8 MB, under the 1 Mi record bound
    const { last, file } = await ingest(`${header}\n1\n`);
    expect(last).toMatchObject({ state: 'FAILED', error: { code: 'HEADER_INVALID' } });
    expect(file.error!.problems as unknown[]).toHaveLength(20);
    expect(file.error!.message).toContain('(120001 problems; the first 20 are listed)');
    expect(file.error!.message.length).toBeLessThanOrEqual(2000);
    expect(JSON.stringify(file).length).toBeLessThan(20_000);

    const dry = await ingestor.upload(
      ValidateFileDocument,
      { spec: 'hostile', file: null },
      { file: { body: Buffer.from(`${header}\n1\n`), filename: 'x.csv' } },
    );
    expect(dry.validateFile.headerProblems).toHaveLength(20);
    expect(dry.validateFile.headerProblemCount).toBe(120_001);
  });

  it('a dry run of a binary file is BAD_USER_INPUT naming the reason', async () => {
    const res = await ingestor.uploadRaw(
      ValidateFileDocument,
      { spec: 'hostile', file: null },
      { file: { body: gzipSync(Buffer.from('id\n1\n')), filename: 'x.csv' } },
    );
    expect(codeOf(res.body), JSON.stringify(res.body)).toBe('BAD_USER_INPUT');
    expect(res.body.errors![0]!.extensions).toMatchObject({ reason: 'NOT_A_CSV' });
  });

  it('a spec holding a NUL is refused with INVALID_CHARACTER, and a spec with many problems gets a bounded list', async () => {
    const nul = await t.admin.raw(RegisterSpecDocument, {
      kind: 'EVENT',
      spec: { program: 'nul', input: { type: 'object', properties: { 'a\u0000b': { type: 'string', enum: ['x\u0000'] } } } },
    });
    expect(codeOf(nul.body), JSON.stringify(nul.body)).toBe('BAD_USER_INPUT');
    expect(nul.body.errors![0]!.extensions!['problems']).toEqual([
      { path: '/input/properties/a\\u0000b', code: 'INVALID_CHARACTER', message: 'the key holds a NUL character (\\u0000), which cannot be stored' },
      { path: '/input/properties/a\\u0000b/enum/0', code: 'INVALID_CHARACTER', message: 'the string holds a NUL character (\\u0000), which cannot be stored' },
    ]);

    const properties = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`c${i}`, { type: 'float' }]));
    const many = await t.admin.raw(RegisterSpecDocument, { kind: 'EVENT', spec: { program: 'many', input: { type: 'object', properties } } });
    expect(codeOf(many.body)).toBe('BAD_USER_INPUT');
    const ext = many.body.errors![0]!.extensions!;
    expect(ext['problems'] as unknown[]).toHaveLength(20);
    expect(ext['problemCount']).toBe(5001);
    expect(many.body.errors![0]!.message.length).toBeLessThanOrEqual(2000);
  });
});

describe('no user text reaches PostgreSQL with a NUL', () => {
  it('a NUL in any string variable or literal is BAD_USER_INPUT naming where, over HTTP, multipart and graphql-ws', async () => {
    // A query variable (it would reach a SQL parameter: PostgreSQL refuses U+0000 in text).
    const byVariable = await ingestor.raw(FilesDocument, { program: 'host\u0000ile', first: 5 });
    expect(byVariable.status).toBe(400);
    expect(byVariable.body.errors?.[0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT', field: 'variables.program' } });
    // A nested input value, and a key of it.
    const nested = await t.admin.raw(CreateClientDocument, { input: { clientId: 'nul-client', name: 'Bad\u0000name', roles: ['VIEWER'] } });
    expect(nested.body.errors?.[0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT', field: 'variables.input.name' } });
    // A literal in the document.
    const res = await fetch(`${t.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ingestor.options.token}` },
      body: JSON.stringify({ query: '{ files(program: "a\\u0000b", first: 1) { totalCount } }' }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { errors: Array<{ extensions: { code: string } }> }).errors[0]!.extensions.code).toBe('BAD_USER_INPUT');
    // A multipart upload's variables.
    const upload = await ingestor.uploadRaw(
      UploadFileDocument,
      { program: 'hostile', spec: 'hos\u0000tile', file: null },
      { file: { body: 'id\n1\n', filename: 'x.csv' } },
    );
    expect(upload.body.errors?.[0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT', field: 'variables.spec' } });
    // graphql-ws.
    // (graphql-ws delivers an operation's refusal as an `error` message, which the iterator throws.)
    const it = ingestor.subscribe(JobUpdatedDocument, { id: 'a\u0000b' });
    const refused = await it.next().then(
      () => null,
      (e: unknown) => e,
    );
    expect(refused).toEqual([
      expect.objectContaining({
        message: expect.stringContaining('variables.id contains a NUL'),
        extensions: expect.objectContaining({ code: 'BAD_USER_INPUT' }),
      }),
    ]);
    // Nothing was stored, and the service is fine.
    const [{ n }] = (await t.database.sql`select count(*)::int as n from api_clients where client_id = 'nul-client'`) as unknown as [{ n: number }];
    expect(n).toBe(0);
    expect((await ingestor.request(FilesDocument, { first: 1 })).files).toBeDefined();
  });
});

describe('dialects: encodings, delimiters and the quote rule through uploadFile', () => {
  it('reads a UTF-16LE file with a BOM and semicolons (Excel "Unicode Text"), reporting file.dialect', async () => {
    const body = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('id;amount;name\r\n1;2.5;नाम\r\n2;3;é\r\n', 'utf16le')]);
    const { last, file, id } = await ingest(body);
    expect(last).toMatchObject({ state: 'SUCCEEDED' });
    expect(file.dialect).toEqual({ delimiter: 'SEMICOLON', encoding: 'UTF_16LE', bom: true, lineEnding: 'CRLF' });
    expect((await rowsOf(id)).map((r) => r['name'])).toEqual(['नाम', 'é']);
  });

  it('reads Windows-1252 with tabs when the upload names them', async () => {
    const body = Buffer.concat([Buffer.from('id\tname\n1\tcaf'), Buffer.from([0xe9, 0x80]), Buffer.from('\n')]);
    const { last, file, id } = await ingest(body, 'cp.csv', { encoding: 'WINDOWS_1252', delimiter: 'TAB' });
    expect(last).toMatchObject({ state: 'SUCCEEDED' });
    expect(file.dialect).toEqual({ delimiter: 'TAB', encoding: 'WINDOWS_1252', bom: false, lineEnding: 'LF' });
    expect((await rowsOf(id)).map((r) => r['name'])).toEqual(['café€']);
  });

  it('makes a quote inside an unquoted cell a MALFORMED_QUOTES row error', async () => {
    const { last, id } = await ingest('id,name\n1,ab"c\n2,"x""y"\n', 'q.csv');
    expect(last).toMatchObject({ state: 'SUCCEEDED_WITH_ERRORS' });
    const { file } = await ingestor.request(FileRowErrorsDocument, { id, first: 10 });
    expect(JSON.stringify(file)).toContain('MALFORMED_QUOTES');
    expect((await rowsOf(id)).map((r) => r['name'])).toEqual(['x"y']);
  });
  it('validateFile takes the same encoding and delimiter arguments and reports the dialect it read', async () => {
    const body = Buffer.concat([Buffer.from('id|name\n1|caf'), Buffer.from([0xe9]), Buffer.from('\n2|x"y\n')]);
    const { validateFile } = await ingestor.upload(
      ValidateFileDocument,
      { spec: 'hostile', file: null, encoding: 'ISO_8859_1', delimiter: 'PIPE' },
      { file: { body, filename: 'v.csv' } },
    );
    expect(validateFile).toMatchObject({
      valid: false,
      total: 2,
      validRows: 1,
      invalidRows: 1,
      dialect: { delimiter: 'PIPE', encoding: 'ISO_8859_1', bom: false, lineEnding: 'LF' },
    });
    expect(validateFile.errors.map((e) => [e.line, e.code])).toEqual([[3, 'MALFORMED_QUOTES']]);
  });
});
