import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RequestHandler } from 'express';
import type { Logger } from '../shared/logger';
import type { Metrics } from '../shared/metrics';
import { handleHttpEdges } from './http-edges';

export const METRICS_PATH = '/metrics';

async function write(metrics: Metrics, res: http.ServerResponse): Promise<void> {
  const { contentType, body } = await metrics.text();
  res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' }).end(body);
}

/** `GET /metrics` on the main server (SLUICE_METRICS=on without SLUICE_METRICS_PORT). */
export function metricsRoute(metrics: Metrics): RequestHandler {
  return (_req, res, next) => {
    write(metrics, res).catch(next);
  };
}

/**
 * `GET /metrics` alone on a port of its own (SLUICE_METRICS_PORT), so it can stay off the public
 * network, and so a worker-only process, which has no HTTP server, can be scraped.
 */
export async function startMetricsServer(metrics: Metrics, host: string, port: number, log: Logger): Promise<{ url: string; dispose(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0];
    if (path !== METRICS_PATH || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`Metrics are served at GET ${METRICS_PATH}\n`);
      return;
    }
    write(metrics, res).catch((err) => {
      log.error({ err }, 'metrics scrape failed');
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('metrics unavailable\n');
    });
  });
  // CONNECT, upgrade offers, parser errors and Expect as on the main port (http-edges.ts).
  handleHttpEdges(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  const url = `http://${host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host}:${bound}${METRICS_PATH}`;
  log.info({ url }, 'metrics are served');
  return {
    url,
    dispose: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
