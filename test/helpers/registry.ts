import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll } from 'vitest';
import { repoRoot } from './process';

export const ceFixtures = path.resolve(repoRoot, 'test/fixtures/credential-engine');
export const FIXTURE_FRAMEWORK = 'ce-5b2f0c71-3d4e-4a9b-9c1d-2e7f8a6b4c10';

/** The fixture `/graph/<ctid>` document, parsed (a fresh copy each call, for tests to vary). */
export async function fixtureGraph(): Promise<{ '@graph': Array<Record<string, unknown>> } & Record<string, unknown>> {
  return JSON.parse(await fs.readFile(path.join(ceFixtures, 'RECONSTRUCTED.graph.framework-information-systems.json'), 'utf8'));
}

export async function fixtureResource(): Promise<Record<string, unknown>> {
  return JSON.parse(await fs.readFile(path.join(ceFixtures, 'RECONSTRUCTED.resources.framework-information-systems.json'), 'utf8'));
}

export interface Route {
  status?: number;
  /** JSON value, or a string / Buffer sent as it is. */
  body?: unknown;
  headers?: Record<string, string>;
  /** Wait before sending headers, in milliseconds. */
  delayMs?: number;
  /** Send headers at once, then the body after this many milliseconds. */
  bodyDelayMs?: number;
}

export interface FakeRegistry {
  /** Origin, e.g. http://127.0.0.1:40123. */
  url: string;
  port: number;
  routes: Map<string, Route>;
  /** Paths requested, in order. */
  requests: string[];
  /** Request headers, in the same order. */
  headers: http.IncomingHttpHeaders[];
  close(): Promise<void>;
}

/** A real HTTP server on 127.0.0.1 serving registry documents by path; unknown paths answer 404. */
export async function startFakeRegistry(): Promise<FakeRegistry> {
  const routes = new Map<string, Route>();
  const requests: string[] = [];
  const headers: http.IncomingHttpHeaders[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req.url ?? '');
    headers.push(req.headers);
    const route = routes.get(req.url ?? '') ?? { status: 404, body: { error: 'not found' } };
    const payload = typeof route.body === 'string' || Buffer.isBuffer(route.body) ? route.body : JSON.stringify(route.body ?? null);
    const send = () => {
      if (res.destroyed) return;
      res.writeHead(route.status ?? 200, { 'content-type': 'application/ld+json', ...route.headers });
      if (route.bodyDelayMs) {
        res.flushHeaders();
        setTimeout(() => !res.destroyed && res.end(payload), route.bodyDelayMs).unref();
      } else {
        res.end(payload);
      }
    };
    if (route.delayMs) setTimeout(send, route.delayMs).unref();
    else send();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  afterAll(close);
  return { url: `http://127.0.0.1:${port}`, port, routes, requests, headers, close };
}
