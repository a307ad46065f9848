// Shared by the fuzzers in this folder (see the README, "Fuzzing a running service"): the
// service's address, an admin token, a seeded random source, and the verdict on an answer.
import process from 'node:process';

export const BASE = (process.env.SLUICE_URL ?? 'http://127.0.0.1:4000').replace(/\/$/, '');
export const GRAPHQL = `${BASE}/graphql`;
export const SEED = Number(process.argv[2] ?? 1);
export const COUNT = Number(process.argv[3] ?? 500);

/** A token for SLUICE_CLIENT_ID / SLUICE_CLIENT_SECRET (an ADMIN client: the fuzzers reach every operation). */
export async function adminToken() {
  const id = process.env.SLUICE_CLIENT_ID;
  const secret = process.env.SLUICE_CLIENT_SECRET;
  if (!id || !secret) throw new Error('set SLUICE_CLIENT_ID and SLUICE_CLIENT_SECRET (an ADMIN client)');
  const r = await fetch(GRAPHQL, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      query: 'mutation ($id: String!, $s: String!) { issueToken(clientId: $id, clientSecret: $s) { accessToken } }',
      variables: { id, s: secret },
    }),
  });
  const json = await r.json();
  const token = json.data?.issueToken?.accessToken;
  if (!token) throw new Error(`issueToken failed: ${JSON.stringify(json.errors)}`);
  return token;
}

/** A seeded generator (the same seed sends the same requests), and pick(). */
export function random(seed = SEED) {
  let s = seed;
  const rnd = () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648;
  };
  return { rnd, pick: (a) => a[Math.floor(rnd() * a.length)] };
}

/** The error codes of a GraphQL answer's text (UNPARSEABLE when it is not JSON; undefined for an error without a code). */
export function errorCodes(text) {
  try {
    return (JSON.parse(text).errors ?? []).map((e) => e.extensions?.code);
  } catch {
    return ['UNPARSEABLE'];
  }
}

/** Counts findings, prints the first few, and ends the run: exit 1 if anything was found or the service stopped answering. */
export function report(name) {
  const found = [];
  return {
    bad(what) {
      found.push(what);
      if (found.length <= 10) console.log(`BAD ${what}`);
    },
    async done(sent, extra = '') {
      const health = await fetch(`${BASE}/healthz`).then(
        (r) => r.status,
        (e) => String(e),
      );
      console.log(`${name}: seed ${SEED}, sent ${sent}, findings ${found.length}, /healthz ${health}${extra ? `, ${extra}` : ''}`);
      process.exit(found.length === 0 && health === 200 ? 0 : 1);
    },
  };
}
