import type { IncomingMessage, ServerResponse } from 'node:http';
import { PassThrough, type Readable } from 'node:stream';
import busboy from 'busboy';
import type { RequestHandler } from 'express';
import { Upload, type FileUpload } from 'graphql-upload-minimal';
import { KiB, MiB } from '../shared/units';
import { ErrorCode, PayloadTooLargeError, SluiceError, withHttpStatus } from '../shared/errors';
import { closeUnfinishedBodyAfterAnswer, uploadStalled, watchIdleBody } from './request-body';

const SPEC_URL = 'https://github.com/jaydenseric/graphql-multipart-request-spec';
/** Longest accepted `filename`, in characters (the usual file system limit). */
const FILENAME_MAX = 255;
/** Control characters (C0, DEL, C1): never part of a real file name, and unsafe in logs and paths. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
/** Path segments that would reach an object's prototype when the `map` paths are applied. */
const FORBIDDEN_SEGMENTS = new Set(['__proto__', 'constructor', 'prototype']);
/**
 * Buffer of the parser and of each file stream. Above the 64 KiB a socket read delivers, so a
 * chunk passes every stage without tripping backpressure (16 KiB by default: a pause, a drain
 * and a resume per chunk); a slow consumer still pauses the request after this many bytes.
 */
const STREAM_BUFFER_BYTES = 256 * KiB;

export interface MultipartOptions {
  /** Largest file, in bytes: one byte more ends the request with PAYLOAD_TOO_LARGE (413). */
  maxFileBytes: number;
  /** Most files in one request (PAYLOAD_TOO_LARGE past it). */
  maxFiles: number;
  /** Longest client silence while the body arrives, in milliseconds (REQUEST_TIMEOUT, 408). */
  idleTimeoutMs: number;
  /** Largest `operations` or `map` field, in bytes. Default 1 MiB. */
  maxFieldBytes?: number;
}

/** The slot `map` creates for one file; graphql-upload's Upload scalar resolves it to the file. */
interface UploadSlot {
  promise: Promise<FileUpload>;
  file?: FileUpload;
  resolve(file: FileUpload): void;
  reject(err: unknown): void;
}

function badRequest(message: string): SluiceError {
  return withHttpStatus(new SluiceError(ErrorCode.BAD_REQUEST, message), 400);
}

function tooLarge(message: string, details: Record<string, unknown>): SluiceError {
  return withHttpStatus(new PayloadTooLargeError(message, details), 413);
}

/**
 * Messages for busboy's own errors. Its header parser refuses (as "Malformed part header") a part
 * header line that starts with a space or tab, lacks a colon, holds a control byte (NUL, CR, DEL)
 * or makes the header longer than 16 KiB.
 */
function parserError(err: unknown): SluiceError {
  const message = err instanceof Error ? err.message : '';
  if (message === 'Malformed part header') {
    return badRequest(
      'Malformed multipart part header: each header line must be "Name: value" without control characters, not start with a space, and a part header must stay under 16 KiB',
    );
  }
  if (message === 'Unexpected end of form' || message === 'Unexpected end of file') {
    return badRequest('The multipart body ended before its closing boundary (truncated request)');
  }
  return badRequest('The multipart body could not be parsed');
}

/** Places `value` at `path` ("variables.file", "variables.files.0") inside the operations. */
function deepSet(operations: unknown, path: string, value: unknown): boolean {
  const segments = path.split('.');
  const last = segments.pop()!;
  let target = operations as Record<string, unknown> | undefined;
  for (const segment of [...segments, last]) if (segment === '' || FORBIDDEN_SEGMENTS.has(segment)) return false;
  for (const segment of segments) {
    const next = target?.[segment];
    if (next === null || typeof next !== 'object') return false;
    target = next as Record<string, unknown>;
  }
  if (!target || typeof target !== 'object') return false;
  target[last] = value;
  return true;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * Parses a GraphQL multipart request (the graphql-multipart-request-spec) with busboy and resolves
 * with the operations, each file replaced by an Upload for the `Upload` scalar; files stream to
 * the resolvers while the body arrives.
 *
 * Why not graphql-upload-minimal's processRequest: after its first error it destroys busboy,
 * which emits a second `error` that nothing listens to, and one malformed request kills the
 * process. It also merely unpipes a file that passes the size limit, so the consumer waits forever
 * and the temp file stays. Here every parser, file and request error ends in one `fail`, which
 * refuses the request once with a coded error (BAD_REQUEST 400, PAYLOAD_TOO_LARGE 413,
 * REQUEST_TIMEOUT 408), destroys the file being streamed with it (so storage aborts and removes
 * its temp file) and stops reading; no stream is ever left without an `error` listener.
 */
function parseMultipart(req: IncomingMessage, res: ServerResponse, opts: MultipartOptions): Promise<unknown> {
  const maxFieldBytes = opts.maxFieldBytes ?? 1 * MiB;
  return new Promise((resolve, reject) => {
    let failure: SluiceError | undefined;
    let operations: unknown;
    let map: Map<string, UploadSlot> | undefined;
    /** The file whose bytes are arriving now (busboy has not ended it yet). */
    let current: PassThrough | undefined;
    let parser: busboy.Busboy | undefined;
    let stopIdle: () => void = () => undefined;

    const fail = (err: SluiceError) => {
      if (failure) return;
      failure = err;
      stopIdle();
      reject(err);
      if (map) for (const slot of map.values()) if (!slot.file) slot.reject(err);
      current?.destroy(err);
      current = undefined;
      // Later, not now: fail may run inside a busboy event handler, and busboy still uses its
      // state after the handler returns (destroying it there throws inside its write).
      const p = parser;
      if (p) {
        queueMicrotask(() => {
          req.unpipe(p);
          p.destroy();
        });
      }
    };

    // IncomingMessage errors (client reset) must not go unheard either.
    req.on('error', () => fail(badRequest('The request was cut off before its body arrived')));
    req.once('close', () => {
      if (!req.complete) fail(badRequest('The request was cut off before its body arrived'));
    });
    // After the answer, nothing more of this body is wanted: detach the parser, then drain briefly and close.
    closeUnfinishedBodyAfterAnswer(req, res, () => {
      if (!req.complete) fail(badRequest('The request was answered before its body had arrived'));
      stopIdle();
    });

    try {
      parser = busboy({
        headers: req.headers,
        defParamCharset: 'utf8',
        highWaterMark: STREAM_BUFFER_BYTES,
        fileHwm: STREAM_BUFFER_BYTES,
        limits: {
          fieldSize: maxFieldBytes,
          fields: 2, // operations and map
          // One byte past the limit: busboy reports `limit` when a file reaches the limit exactly.
          fileSize: opts.maxFileBytes + 1,
          files: opts.maxFiles,
          headerPairs: 100,
        },
      });
    } catch {
      fail(badRequest('Content-Type multipart/form-data needs a boundary parameter'));
      return;
    }
    // Every error busboy emits (it may emit more than one: per bad part, then again on destroy).
    parser.on('error', (err: unknown) => fail(parserError(err)));

    parser.on('field', (name, value, info) => {
      if (failure) return;
      if (info.nameTruncated || info.valueTruncated) {
        fail(tooLarge(`The multipart field ${JSON.stringify(name.slice(0, 64))} exceeds the limit of ${maxFieldBytes} bytes`, { limitBytes: maxFieldBytes }));
        return;
      }
      if (name === 'operations') {
        try {
          operations = JSON.parse(value);
        } catch {
          fail(badRequest(`Invalid JSON in the 'operations' multipart field (${SPEC_URL})`));
          return;
        }
        if (!isObject(operations) && !Array.isArray(operations)) fail(badRequest(`The 'operations' multipart field must be a JSON object (${SPEC_URL})`));
        return;
      }
      if (name !== 'map') return;
      if (operations === undefined) {
        fail(badRequest(`Misordered multipart fields: 'map' must follow 'operations' (${SPEC_URL})`));
        return;
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(value);
      } catch {
        fail(badRequest(`Invalid JSON in the 'map' multipart field (${SPEC_URL})`));
        return;
      }
      if (!isObject(parsed)) {
        fail(badRequest(`The 'map' multipart field must be a JSON object (${SPEC_URL})`));
        return;
      }
      const entries = Object.entries(parsed);
      if (entries.length > opts.maxFiles) {
        fail(tooLarge(`The request names ${entries.length} files; the limit is ${opts.maxFiles}`, { limit: opts.maxFiles }));
        return;
      }
      map = new Map();
      for (const [fieldName, paths] of entries) {
        if (!Array.isArray(paths) || paths.length === 0) {
          fail(badRequest(`'map' entry ${JSON.stringify(fieldName.slice(0, 64))} must be a non-empty array of paths (${SPEC_URL})`));
          return;
        }
        const slot = new Upload() as unknown as UploadSlot;
        map.set(fieldName, slot);
        for (const path of paths) {
          if (typeof path !== 'string' || !deepSet(operations, path, slot)) {
            fail(
              badRequest(
                `'map' entry ${JSON.stringify(fieldName.slice(0, 64))} names the path ${JSON.stringify(String(path).slice(0, 128))}, which is not in the operations (${SPEC_URL})`,
              ),
            );
            return;
          }
        }
      }
      resolve(operations);
    });

    parser.on('file', (fieldName, stream: Readable, info) => {
      stream.on('error', () => undefined);
      const slot = map?.get(fieldName);
      if (failure || !map || !slot || slot.file) {
        // Extraneous or misordered: its bytes are read and dropped so the rest can be parsed.
        stream.resume();
        if (!failure && !map) fail(badRequest(`Misordered multipart fields: files must follow 'map' (${SPEC_URL})`));
        return;
      }
      const filename = info.filename ?? '';
      if (CONTROL.test(filename) || filename.length > FILENAME_MAX) {
        stream.resume();
        fail(
          badRequest(
            `The filename of multipart file ${JSON.stringify(fieldName.slice(0, 64))} must be at most ${FILENAME_MAX} characters without control characters`,
          ),
        );
        return;
      }
      const body = new PassThrough({ highWaterMark: STREAM_BUFFER_BYTES });
      // Errors reach the consumer through its pipeline; this keeps an unread file from crashing the process.
      body.on('error', () => undefined);
      current = body;
      stream.pipe(body);
      stream.once('end', () => {
        if (current === body) current = undefined;
      });
      stream.once('limit', () => {
        fail(tooLarge(`File ${JSON.stringify(filename)} exceeds the limit of ${opts.maxFileBytes} bytes`, { limitBytes: opts.maxFileBytes }));
      });
      // The consumer stopped early (refused the file, or only wanted to drain it): the parser must
      // still get past this part, so its remaining bytes are dropped.
      body.once('close', () => {
        if (!stream.readableEnded) {
          stream.unpipe(body);
          stream.resume();
        }
      });
      let handedOut = false;
      slot.resolve({
        fieldName,
        filename,
        mimetype: info.mimeType,
        encoding: info.encoding,
        createReadStream: () => {
          if (body.destroyed) throw failure ?? badRequest(`File ${JSON.stringify(filename)} is no longer readable`);
          if (handedOut) throw new SluiceError(ErrorCode.INTERNAL_SERVER_ERROR, 'An upload can be read only once');
          handedOut = true;
          return body as unknown as ReturnType<FileUpload['createReadStream']>;
        },
      });
    });

    parser.once('filesLimit', () => fail(tooLarge(`The request holds more than ${opts.maxFiles} files`, { limit: opts.maxFiles })));

    parser.once('close', () => {
      if (failure) return;
      stopIdle();
      if (operations === undefined) return fail(badRequest(`Missing multipart field 'operations' (${SPEC_URL})`));
      if (!map) return fail(badRequest(`Missing multipart field 'map' (${SPEC_URL})`));
      for (const [fieldName, slot] of map) {
        if (!slot.file) slot.reject(badRequest(`File ${JSON.stringify(fieldName.slice(0, 64))} is named in 'map' but missing from the request`));
      }
    });

    req.pipe(parser);
    stopIdle = watchIdleBody(req, opts.idleTimeoutMs, () => fail(withHttpStatus(uploadStalled(opts.idleTimeoutMs), 408)));
  });
}

/** The status and body of a refusal before the operation runs (the error formatter is not involved). */
function answer(res: ServerResponse & { status(code: number): { json(body: unknown): void } }, err: SluiceError): void {
  if (res.headersSent) return;
  const { http, ...extensions } = err.extensions as Record<string, unknown> & { http?: { status?: number } };
  res.status(http?.status ?? 400).json({ errors: [{ message: err.message, extensions }] });
}

/** Express middleware: multipart requests get their body parsed into operations; others pass. */
export function multipartUploads(opts: MultipartOptions): RequestHandler {
  return (req, res, next) => {
    if (!req.is('multipart/form-data')) return next();
    parseMultipart(req, res, opts).then(
      (body) => {
        req.body = body;
        next();
      },
      (err: SluiceError) => answer(res, err),
    );
  };
}
