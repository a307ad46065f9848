import type postgres from 'postgres';
import type { Sql } from './client';

/** A transaction, or the pool itself when the statement needs none: what stores write through. */
export type Tx = postgres.TransactionSql | Sql;
