import fs from 'node:fs';
import path from 'node:path';
import express from 'express';
import { PACKAGE_ROOT } from '../shared/paths';
import { GRAPHQL_PATH } from './http';

/** Where `vite build` (web/vite.config.ts) writes the jobs page and GraphiQL. */
export const WEB_DIST_DIR = path.join(PACKAGE_ROOT, 'web', 'dist');
const GRAPHIQL_HTML = 'graphiql.html';

function notBuilt(res: express.Response, what: string): void {
  res.status(503).type('text/plain').send(`${what} is not built. Run "npm run build:web" (npm start and npm test do it for you).\n`);
}

/**
 * The browser side, all from local files (no CDN): the jobs page at `/` and its assets, and, when
 * `playground` is on, GraphiQL at `GET /graphql` for requests that want HTML. A GET that carries a
 * `query` parameter or prefers JSON stays a GraphQL request.
 */
export function webRoutes(opts: { playground: boolean; distDir?: string }): express.Router {
  const dist = opts.distDir ?? WEB_DIST_DIR;
  const router = express.Router();

  router.get(GRAPHQL_PATH, (req, res, next) => {
    const wantsHtml = req.accepts(['application/json', 'application/graphql-response+json', 'text/html']) === 'text/html';
    if (!opts.playground || !wantsHtml || req.query['query'] !== undefined) return next();
    const file = path.join(dist, GRAPHIQL_HTML);
    if (!fs.existsSync(file)) return notBuilt(res, 'GraphiQL');
    res.setHeader('cache-control', 'no-cache');
    res.sendFile(file);
  });

  router.use((req, res, next) => {
    // The playground's page only answers at /graphql, and only when it is on.
    if (req.path === `/${GRAPHIQL_HTML}`) return next('router');
    if (req.method === 'GET' && req.path === '/' && !fs.existsSync(path.join(dist, 'index.html'))) return notBuilt(res, 'The jobs page');
    next();
  });
  router.use(
    express.static(dist, {
      index: 'index.html',
      // Hashed asset names change with their content: cache them for good; HTML is revalidated.
      setHeaders(res, file) {
        res.setHeader('cache-control', file.includes(`${path.sep}assets${path.sep}`) ? 'public, max-age=31536000, immutable' : 'no-cache');
      },
    }),
  );
  return router;
}
