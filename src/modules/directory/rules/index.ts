import { BulkKind } from '../directory.columns';
import type { SeenKeys } from './common';
import { rememberLocation } from './locations';
import { rememberOrganisation } from './organisations';
import { rememberUser } from './users';

/** The bulk upload row rules, by kind: common.ts, locations.ts, organisations.ts, users.ts. */

export * from './common';
export * from './locations';
export * from './organisations';
export * from './users';

/** Registers a row's keys without planning it (rows a resumed job already applied). */
export function rememberRow(kind: BulkKind, values: Record<string, string>, line: number, seen: SeenKeys): void {
  if (kind === BulkKind.LOCATION) rememberLocation(values, line, seen);
  else if (kind === BulkKind.ORGANISATION) rememberOrganisation(values, line, seen);
  else rememberUser(values, line, seen);
}
