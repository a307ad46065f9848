import type { Env } from './env';
import { VERSION } from './version';

/** A database URL with its password hidden, for printing. */
export function maskPassword(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable DATABASE_URL)';
  }
}

/**
 * The lines printed once Sluice is up: where to point a browser, a GraphQL client and `psql`.
 * Plain text on stdout (whatever the log format), so a newcomer sees it in any terminal.
 */
export function startBanner(env: Env, app: { url?: string; embeddedDatabase?: { url: string; busyPort?: number } }): string {
  const lines = [`Sluice ${VERSION} is ready (role ${env.SLUICE_ROLE})`];
  const row = (what: string, value: string) => lines.push(`  ${what.padEnd(10)} ${value}`);
  if (app.url) {
    row('Jobs page', `${app.url}/`);
    if (env.SLUICE_PLAYGROUND) row('GraphiQL', `${app.url}/graphql`);
    row('GraphQL', `${app.url}/graphql (subscriptions: graphql-ws on ${app.url.replace(/^http/, 'ws')}/graphql)`);
  }
  if (app.embeddedDatabase) {
    row('psql', `psql ${app.embeddedDatabase.url}`);
    if (app.embeddedDatabase.busyPort) {
      row('', `(port ${app.embeddedDatabase.busyPort} was taken, so this port is for this run only; set SLUICE_EMBEDDED_PG_PORT to choose)`);
    }
  } else if (env.DATABASE_URL) {
    row('Database', maskPassword(env.DATABASE_URL));
  }
  return `${lines.join('\n')}\n`;
}
