/** The signed-in client, kept in localStorage so a reload (or GraphiQL) reuses the token. Never the secret. */
export interface Session {
  clientId: string;
  token: string;
  /** ISO time the token expires. */
  expiresAt: string;
  roles: string[];
}

const KEY = 'sluice.session';

export function loadSession(): Session | undefined {
  try {
    const s = JSON.parse(localStorage.getItem(KEY) ?? 'null') as Session | null;
    if (!s?.token || Date.parse(s.expiresAt) <= Date.now()) return undefined;
    return s;
  } catch {
    return undefined;
  }
}

export function saveSession(s: Session): void {
  localStorage.setItem(KEY, JSON.stringify(s));
}

export function clearSession(): void {
  localStorage.removeItem(KEY);
}
