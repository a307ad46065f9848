import { randomUUID } from 'node:crypto';
import { BulkKind } from '../directory.columns';
import { checkSeen, DirectoryRowErrorCode, fail, field, q, remember, run, type Operation, type Planned, type SeenKeys } from './common';

/** Bulk upload rules for locations (see common.ts). */

export enum LocationType {
  STATE = 'STATE',
  DISTRICT = 'DISTRICT',
  BLOCK = 'BLOCK',
  CLUSTER = 'CLUSTER',
  SCHOOL = 'SCHOOL',
}

/** Top to bottom. A location's parent is the type just before its own. */
export const LOCATION_LEVELS: readonly LocationType[] = [
  LocationType.STATE,
  LocationType.DISTRICT,
  LocationType.BLOCK,
  LocationType.CLUSTER,
  LocationType.SCHOOL,
];

export function parentLevel(t: LocationType): LocationType | null {
  const i = LOCATION_LEVELS.indexOf(t);
  return i > 0 ? LOCATION_LEVELS[i - 1]! : null;
}

export interface LocationRef {
  id: string;
  code: string;
  name: string;
  type: LocationType;
  parentId: string | null;
}

export interface LocationLookup {
  byCode: Map<string, LocationRef>;
  byId: Map<string, LocationRef>;
}

export interface LocationWrite {
  id: string;
  code: string;
  name: string;
  type: LocationType;
  parent_id: string | null;
}

export function parseLocationType(raw: string): LocationType | null {
  const t = raw.trim().toUpperCase();
  return (LOCATION_LEVELS as readonly string[]).includes(t) ? (t as LocationType) : null;
}

/** What a batch of location rows needs looked up. */
export function locationKeys(rows: Array<Record<string, string>>): { codes: string[]; ids: string[] } {
  const codes = new Set<string>();
  const ids = new Set<string>();
  for (const r of rows) {
    if (r['code']) codes.add(r['code']);
    if (r['parentCode']) codes.add(r['parentCode']);
    if (r['parentId']) ids.add(r['parentId']);
  }
  return { codes: [...codes], ids: [...ids] };
}

/**
 * Existing code = update, new code = create. The parent is parentCode or parentId (both: they must
 * agree) and must be exactly one level up; earlier lines of the same file count as existing.
 */
export function planLocation(
  values: Record<string, string>,
  line: number,
  fileType: LocationType | null,
  lookup: LocationLookup,
  seen: SeenKeys,
): Planned<LocationWrite> {
  const K = BulkKind.LOCATION;
  const data: Record<string, unknown> = {
    code: values['code'] ?? '',
    name: values['name'] ?? '',
    type: null,
    parentCode: values['parentCode'] || null,
    parentId: values['parentId'] || null,
  };
  const ctx = { operation: null as Operation | null, id: null as string | null };
  try {
    return run(data, ctx, () => {
      const code = field(K, values, 'code', true);
      checkSeen(seen, `code:${code}`, DirectoryRowErrorCode.DUPLICATE_CODE, 'code', `Code ${q(code)}`);
      const name = field(K, values, 'name', true);
      const typeCell = field(K, values, 'type');
      const type = typeCell ? parseLocationType(typeCell) : fileType;
      if (!type) {
        if (typeCell)
          fail(DirectoryRowErrorCode.INVALID_LOCATION_TYPE, 'type', `type ${q(typeCell)} must be one of ${LOCATION_LEVELS.join(', ').toLowerCase()}`);
        fail(DirectoryRowErrorCode.MISSING_FIELD, 'type', 'type is required (no locationType was given for the upload)');
      }
      data['type'] = type.toLowerCase();
      const existing = lookup.byCode.get(code);
      ctx.operation = existing ? 'UPDATE' : 'CREATE';
      ctx.id = existing?.id ?? null;
      if (existing && existing.type !== type) {
        fail(DirectoryRowErrorCode.LOCATION_TYPE_MISMATCH, 'code', `Code ${q(code)} exists as a ${existing.type.toLowerCase()}, not a ${type.toLowerCase()}`);
      }
      const parentCode = field(K, values, 'parentCode');
      const parentId = field(K, values, 'parentId');
      const want = parentLevel(type);
      let parent: LocationRef | null = null;
      if (!want) {
        if (parentCode || parentId)
          fail(DirectoryRowErrorCode.PARENT_NOT_ALLOWED, parentCode ? 'parentCode' : 'parentId', `A state has no parent; got ${q(parentCode || parentId)}`);
      } else {
        if (!parentCode && !parentId)
          fail(DirectoryRowErrorCode.PARENT_REQUIRED, 'parentCode', `A ${type.toLowerCase()} needs parentCode or parentId (a ${want.toLowerCase()})`);
        const byCode = parentCode ? lookup.byCode.get(parentCode) : undefined;
        const byId = parentId ? lookup.byId.get(parentId) : undefined;
        if (parentCode && !byCode) fail(DirectoryRowErrorCode.PARENT_NOT_FOUND, 'parentCode', `No location has code ${q(parentCode)}`);
        if (parentId && !byId) fail(DirectoryRowErrorCode.PARENT_NOT_FOUND, 'parentId', `No location has id ${q(parentId)}`);
        if (byCode && byId && byCode.id !== byId.id) {
          fail(
            DirectoryRowErrorCode.CONFLICTING_PARENT_REFERENCE,
            'parentId',
            `parentCode ${q(parentCode)} is location ${q(byCode.id)} but parentId is ${q(parentId)}`,
          );
        }
        parent = (byCode ?? byId)!;
        if (parent.type !== want) {
          fail(
            DirectoryRowErrorCode.PARENT_WRONG_LEVEL,
            parentCode ? 'parentCode' : 'parentId',
            `Parent ${q(parent.code)} is a ${parent.type.toLowerCase()}; the parent of a ${type.toLowerCase()} must be a ${want.toLowerCase()}`,
          );
        }
      }
      data['parentCode'] = parent?.code ?? null;
      data['parentId'] = parent?.id ?? null;
      const id = existing?.id ?? randomUUID();
      const ref: LocationRef = { id, code, name, type, parentId: parent?.id ?? null };
      // Later lines of this file may hang under this one.
      lookup.byCode.set(code, ref);
      lookup.byId.set(id, ref);
      return { ok: true, operation: ctx.operation, id, write: { id, code, name, type, parent_id: ref.parentId }, data };
    });
  } finally {
    rememberLocation(values, line, seen);
  }
}

/** Registers a location row's keys so later lines see them. */
export function rememberLocation(values: Record<string, string>, line: number, seen: SeenKeys): void {
  remember(seen, line, [values['code'] ? `code:${values['code']}` : null]);
}
