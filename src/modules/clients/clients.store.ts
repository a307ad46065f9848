import { and, asc, count, eq, isNull, sql } from 'drizzle-orm';
import type { Db } from '../../db/client';
import { apiClients, type ApiClientRow } from '../../db/schema';

/** NOTIFY channel of client revocations; every API instance closes that client's WebSockets. */
export const CLIENT_REVOKED_CHANNEL = 'sluice_client_revoked';

/** Payload of a CLIENT_REVOKED_CHANNEL notification. */
export interface ClientRevoked {
  clientId: string;
}

export class ClientsStore {
  constructor(private readonly db: Db) {}

  async findByClientId(clientId: string): Promise<ApiClientRow | undefined> {
    const [row] = await this.db.select().from(apiClients).where(eq(apiClients.clientId, clientId)).limit(1);
    return row;
  }

  /** Returns undefined when the client id is taken. */
  async insert(values: {
    clientId: string;
    name: string;
    secretHash: string;
    roles: string[];
    createdBy: string | null;
  }): Promise<ApiClientRow | undefined> {
    const [row] = await this.db.insert(apiClients).values(values).onConflictDoNothing({ target: apiClients.clientId }).returning();
    return row;
  }

  async list(includeRevoked: boolean): Promise<ApiClientRow[]> {
    const where = includeRevoked ? undefined : isNull(apiClients.revokedAt);
    return this.db.select().from(apiClients).where(where).orderBy(asc(apiClients.createdAt), asc(apiClients.clientId));
  }

  async countAll(): Promise<number> {
    const [row] = await this.db.select({ n: count() }).from(apiClients);
    return row?.n ?? 0;
  }

  async countActiveAdmins(): Promise<number> {
    const [row] = await this.db
      .select({ n: count() })
      .from(apiClients)
      .where(and(isNull(apiClients.revokedAt), sql`'ADMIN' = any(${apiClients.roles})`));
    return row?.n ?? 0;
  }

  /** Marks the client revoked and notifies CLIENT_REVOKED_CHANNEL in the same transaction. */
  async revoke(clientId: string): Promise<ApiClientRow | undefined> {
    return this.db.transaction(async (tx) => {
      const [row] = await tx
        .update(apiClients)
        .set({ revokedAt: sql`coalesce(${apiClients.revokedAt}, now())` })
        .where(eq(apiClients.clientId, clientId))
        .returning();
      if (row) {
        const payload: ClientRevoked = { clientId: row.clientId };
        await tx.execute(sql`select pg_notify(${CLIENT_REVOKED_CHANNEL}, ${JSON.stringify(payload)})`);
      }
      return row;
    });
  }
}
