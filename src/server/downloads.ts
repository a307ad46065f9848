import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import type express from 'express';
import { safeCsvLine } from '../ingest/csv-escape';
import { quoteIdentifier } from '../modules/datasets/dataset-tables.store';
import type { Services } from '../services';
import { requireViewer } from '../server/authorize';
import { ErrorCode, SluiceError } from '../shared/errors';
import { Role } from '../shared/roles';
import { httpContext } from './http';

/** HTTP status for each code a download can fail with. */
const STATUS: Partial<Record<ErrorCode, number>> = {
  [ErrorCode.UNAUTHENTICATED]: 401,
  [ErrorCode.FORBIDDEN]: 403,
  [ErrorCode.NOT_FOUND]: 404,
};

/**
 * `GET /files/:id/errors.csv` with `Authorization: Bearer <token>`: streams a file's error report
 * (its invalid rows, led by a `_line` column with each row's line number and followed by the
 * `error_description` column; uploadCorrections takes it back once fixed) from storage. The same visibility as the
 * `file` query: your own files, or any for ADMIN. GraphQL cannot carry a byte stream; this route
 * is the download the jobs page and the CLI need most.
 */
export function errorReportRoute(services: Services): express.RequestHandler {
  return download(services, 'error report', async (viewer, id, res) => {
    const file = await services.files.get(viewer, id);
    if (!file.errorOutputKey) {
      throw new SluiceError(ErrorCode.NOT_FOUND, `File ${id} has no error report (no invalid rows, or not processed yet)`);
    }
    const body = await services.storage.get(file.errorOutputKey);
    csvHeaders(res, `${baseName(file.fileName)}_errors.csv`);
    await pipeline(body, res);
  });
}

/** Rows read from the table per round trip of a valid-rows download. */
const VALID_ROWS_BATCH = 1000;

/**
 * `GET /files/:id/valid.csv` with `Authorization: Bearer <token>`: the rows of a CSV file that are
 * stored in its spec's table, as they are now (rows fixed with uploadCorrections included), by
 * line: a leading `_line` column, then the spec's columns under their spec names, each value as
 * PostgreSQL prints it (dates ISO), empty for NULL, formula-like cells neutralised as in the error
 * report. The same visibility as the error report. Read from the table rather than the stored
 * valid-rows output because corrections never rewrite that output.
 */
export function validRowsRoute(services: Services): express.RequestHandler {
  return download(services, 'valid rows', async (viewer, id, res) => {
    const file = await services.files.get(viewer, id);
    const spec = file.kind === 'CSV' && !file.correctsFileId && file.specId ? await services.specs.getById(file.specId) : undefined;
    if (!spec) {
      const why =
        file.kind === 'ZIP'
          ? 'a ZIP; download the valid rows of each of its CSVs'
          : file.correctsFileId
            ? `a corrections upload; its rows joined file ${file.correctsFileId}`
            : 'not a CSV with a spec';
      throw new SluiceError(ErrorCode.NOT_FOUND, `File ${id} has no valid rows of its own: it is ${why}`);
    }
    if (!file.validRows) throw new SluiceError(ErrorCode.NOT_FOUND, `File ${id} has no valid rows (none were stored, or not processed yet)`);
    const columns = spec.compiled.columns;
    const sql = services.database.sql;
    // Every value as text, so the CSV shows what PostgreSQL holds (no JavaScript Date or number formatting).
    // Ordered by the table's integer `_line` (`t._line`): a bare `_line` would name the text output column (line 10 before 2).
    const list = ['t._line::text as _line', ...columns.map((c) => `t.${quoteIdentifier(c.column)}::text as ${quoteIdentifier(c.column)}`)].join(', ');
    const rows = sql`select ${sql.unsafe(list)} from ${sql(spec.tableName)} as t where t._file_id = ${file.id} order by t._line`.cursor(VALID_ROWS_BATCH);
    csvHeaders(res, `${baseName(file.fileName)}_valid.csv`);
    res.write(safeCsvLine(['_line', ...columns.map((c) => c.sourceName)]));
    for await (const batch of rows) {
      let text = '';
      for (const r of batch as Array<Record<string, string | null>>) text += safeCsvLine([r['_line'] ?? '', ...columns.map((c) => r[c.column] ?? '')]);
      if (!res.write(text)) await once(res, 'drain');
    }
    res.end();
  });
}

/** The file name without its extension, safe in a Content-Disposition header. */
function baseName(fileName: string): string {
  return fileName.replace(/\.[^.]*$/, '').replace(/[^A-Za-z0-9_.-]+/g, '_') || 'file';
}

function csvHeaders(res: express.Response, name: string): void {
  res.setHeader('content-type', 'text/csv; charset=utf-8');
  res.setHeader('content-disposition', `attachment; filename="${name}"`);
  res.setHeader('cache-control', 'no-store');
}

/** The shared part of every download: the bearer token, the file id, and errors as JSON like GraphQL's. */
function download(
  services: Services,
  what: string,
  send: (viewer: ReturnType<typeof requireViewer>, id: string, res: express.Response) => Promise<void>,
): express.RequestHandler {
  return async (req, res, next) => {
    try {
      const ctx = await httpContext(services, req);
      const viewer = requireViewer(ctx, Role.VIEWER);
      await send(viewer, String(req.params['id'] ?? ''), res);
    } catch (err) {
      if (res.headersSent) {
        services.log.warn({ err }, `${what} download aborted`);
        res.destroy();
        return;
      }
      if (err instanceof SluiceError) {
        res.status(STATUS[err.code] ?? 400).json({ errors: [{ message: err.message, extensions: { code: err.code } }] });
        return;
      }
      next(err);
    }
  };
}
