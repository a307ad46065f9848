import { pipeline } from 'node:stream/promises';
import type express from 'express';
import type { Services } from '../services';
import { requireViewer } from '../shared/authorize';
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
 * is the one download the jobs page and the CLI need.
 */
export function errorReportRoute(services: Services): express.RequestHandler {
  return async (req, res, next) => {
    try {
      const ctx = await httpContext(services, req.headers.authorization);
      const viewer = requireViewer(ctx, Role.VIEWER);
      const id = String(req.params['id'] ?? '');
      const file = await services.files.get(viewer, id);
      if (!file.errorOutputKey) {
        throw new SluiceError(ErrorCode.NOT_FOUND, `File ${id} has no error report (no invalid rows, or not processed yet)`);
      }
      const body = await services.storage.get(file.errorOutputKey);
      const name = `${file.fileName.replace(/\.[^.]*$/, '').replace(/[^A-Za-z0-9_.-]+/g, '_') || 'file'}_errors.csv`;
      res.setHeader('content-type', 'text/csv; charset=utf-8');
      res.setHeader('content-disposition', `attachment; filename="${name}"`);
      res.setHeader('cache-control', 'no-store');
      await pipeline(body, res);
    } catch (err) {
      if (res.headersSent) {
        services.log.warn({ err }, 'error report download aborted');
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
