import type { Sql } from '../../db/client';
import { decoder } from '../../db/rows';
import { apiClients, type ApiClientRow } from '../../db/schema';

/** NOTIFY channel of client revocations; every API instance closes that client's WebSockets. */
export const CLIENT_REVOKED_CHANNEL = 'sluice_client_revoked';

/** Payload of a CLIENT_REVOKED_CHANNEL notification. */
export interface ClientRevoked {
  clientId: string;
}

const toClient = decoder(apiClients);

export class ClientsStore {
  constructor(private readonly sql: Sql) {}

  async findByClientId(clientId: string): Promise<ApiClientRow | undefined> {
    const [row] = await this.sql`select * from api_clients where client_id = ${clientId} limit 1`;
    return row ? toClient(row) : undefined;
  }

  /** Returns undefined when the client id is taken. */
  async insert(values: { clientId: string; name: string; secretHash: string; roles: string[]; createdBy: string | null }): Promise<ApiClientRow | undefined> {
    const [row] = await this.sql`
      insert into api_clients (client_id, name, secret_hash, roles, created_by)
      values (${values.clientId}, ${values.name}, ${values.secretHash}, ${values.roles}::text[], ${values.createdBy})
      on conflict (client_id) do nothing
      returning *`;
    return row ? toClient(row) : undefined;
  }

  async list(includeRevoked: boolean): Promise<ApiClientRow[]> {
    const rows = await this.sql`
      select * from api_clients ${includeRevoked ? this.sql`` : this.sql`where revoked_at is null`} order by created_at, client_id`;
    return rows.map(toClient);
  }

  async countAll(): Promise<number> {
    const [row] = await this.sql<{ n: number }[]>`select count(*)::int as n from api_clients`;
    return row?.n ?? 0;
  }

  async countActiveAdmins(): Promise<number> {
    const [row] = await this.sql<{ n: number }[]>`select count(*)::int as n from api_clients where revoked_at is null and 'ADMIN' = any(roles)`;
    return row?.n ?? 0;
  }

  /** Marks the client revoked and notifies CLIENT_REVOKED_CHANNEL in the same transaction. */
  async revoke(clientId: string): Promise<ApiClientRow | undefined> {
    return this.sql.begin(async (tx) => {
      const [row] = await tx`update api_clients set revoked_at = coalesce(revoked_at, now()) where client_id = ${clientId} returning *`;
      if (!row) return undefined;
      const client = toClient(row);
      const payload: ClientRevoked = { clientId: client.clientId };
      await tx`select pg_notify(${CLIENT_REVOKED_CHANNEL}, ${JSON.stringify(payload)})`;
      return client;
    }) as Promise<ApiClientRow | undefined>;
  }
}
