import { sql } from 'drizzle-orm';
import { pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';

/** API clients: machine identities that exchange id + secret for a JWT. */
export const apiClients = pgTable('api_clients', {
  id: uuid('id').primaryKey().defaultRandom(),
  clientId: text('client_id').notNull().unique(),
  name: text('name').notNull(),
  /** `scrypt$N$r$p$<salt b64>$<hash b64>`; the secret itself is never stored. */
  secretHash: text('secret_hash').notNull(),
  roles: text('roles').array().notNull().default(sql`'{}'::text[]`),
  createdBy: text('created_by'),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  revokedAt: timestamp('revoked_at', { withTimezone: true }),
});

export type ApiClientRow = typeof apiClients.$inferSelect;
