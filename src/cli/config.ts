import fs from 'node:fs/promises';
import path from 'node:path';

/** A token `sluice login` obtained for one server. The client secret is never stored. */
export interface SavedLogin {
  clientId: string;
  accessToken: string;
  /** ISO time the token expires. */
  expiresAt: string;
  roles: string[];
}

export interface CliConfig {
  /** The server of the last login: the default when neither --url nor SLUICE_URL is given. */
  url?: string;
  /** Logins by server base URL. */
  servers: Record<string, SavedLogin>;
}

/** The CLI's config file (SLUICE_CLI_CONFIG, or <XDG_CONFIG_HOME or ~/.config>/sluice/config.json), mode 0600. */
export class CliConfigStore {
  constructor(readonly file: string) {}

  async load(): Promise<CliConfig> {
    try {
      const parsed = JSON.parse(await fs.readFile(this.file, 'utf8')) as Partial<CliConfig>;
      return { url: parsed.url, servers: parsed.servers ?? {} };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { servers: {} };
      throw new Error(`Cannot read the CLI config ${this.file}: ${(err as Error).message}`);
    }
  }

  /** Writes atomically (temp file + rename) and readable by the owner only: it holds tokens. */
  async save(config: CliConfig): Promise<void> {
    await fs.mkdir(path.dirname(this.file), { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.${process.pid}.tmp`;
    await fs.writeFile(tmp, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
    await fs.rename(tmp, this.file);
  }
}

/** `http://host:4000/` and `http://host:4000/graphql` name the same server. */
export function normaliseUrl(url: string): string {
  return url
    .trim()
    .replace(/\/+$/, '')
    .replace(/\/graphql$/, '');
}
