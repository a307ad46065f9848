import { JobsChangedDocument, type SluiceClient, SluiceRequestError, SpecsDocument, type JobFieldsFragment, type SpecsQuery } from '../../../src/sdk/client';
import { flash } from './dom';
import type { Session } from './session';

/** What every screen shares: the signed-in client, the specs, errors, navigation and the live job feed. */

export type Spec = SpecsQuery['specs'][number];
export type Job = JobFieldsFragment;

export const app = {
  session: undefined as Session | undefined,
  client: undefined as SluiceClient | undefined,
  specs: [] as Spec[],
};

export function client(): SluiceClient {
  if (!app.client) throw new Error('Not signed in');
  return app.client;
}

let signOutHandler: (message?: string) => void = () => {};
export const onSignOut = (fn: (message?: string) => void): void => {
  signOutHandler = fn;
};
export const signOut = (message?: string): void => signOutHandler(message);

/** An error in plain words, with the stable code in brackets for support. */
export function messageOf(err: unknown): string {
  if (err instanceof SluiceRequestError) {
    const e = err.response.errors?.[0];
    return e ? `${e.message} (${String(e.extensions?.['code'] ?? 'ERROR')})` : err.message;
  }
  return err instanceof Error ? err.message : String(err);
}

/** A request failed: an expired or revoked token signs out, anything else is shown. */
export function fail(err: unknown): void {
  if (err instanceof SluiceRequestError && err.code === 'UNAUTHENTICATED') {
    signOut('Your session ended; sign in again.');
    return;
  }
  flash(messageOf(err));
}

export async function loadSpecs(): Promise<Spec[]> {
  ({ specs: app.specs } = await client().request(SpecsDocument, {}));
  return app.specs;
}

// ---------------------------------------------------------------- navigation

export type Route = { view: string; params: URLSearchParams };
const routeListeners: Array<(r: Route) => void> = [];
export const onRoute = (fn: (r: Route) => void): void => {
  routeListeners.push(fn);
};
export function currentRoute(): Route {
  const params = new URL(window.location.href).searchParams;
  return { view: params.get('view') ?? 'import', params };
}
/** Goes to `?view=…&…` (one history entry) and tells the screens. */
export function navigate(params: Record<string, string | undefined>, opts: { replace?: boolean } = {}): void {
  const url = new URL(window.location.href);
  url.search = '';
  for (const [k, v] of Object.entries(params)) if (v !== undefined && !(k === 'view' && v === 'import')) url.searchParams.set(k, v);
  if (opts.replace) window.history.replaceState(null, '', url);
  else window.history.pushState(null, '', url);
  route();
}
export function route(): void {
  const r = currentRoute();
  for (const fn of routeListeners) fn(r);
}
window.addEventListener('popstate', route);

// ---------------------------------------------------------------- live job feed

const jobListeners = new Set<(job: Job) => void>();
let feedGen = 0;

/** Calls `fn` with every change to the viewer's jobs (the `jobs` subscription); returns an unsubscribe. */
export function onJobChange(fn: (job: Job) => void): () => void {
  jobListeners.add(fn);
  return () => jobListeners.delete(fn);
}

/** One `jobs` subscription for the whole page; a dropped socket is resubscribed with back-off. */
export async function startJobFeed(): Promise<void> {
  const gen = ++feedGen;
  for (let attempt = 0; gen === feedGen && app.client; attempt++) {
    const c = app.client;
    try {
      for await (const r of c.subscribe(JobsChangedDocument, {})) {
        if (gen !== feedGen) return;
        attempt = 0;
        if (r.data) for (const fn of jobListeners) fn(r.data.jobs);
      }
    } catch {
      // Lost connection: retried below.
    }
    await new Promise((r) => setTimeout(r, Math.min(500 * 2 ** attempt, 10_000)));
  }
}
export const stopJobFeed = (): void => {
  feedGen++;
};
