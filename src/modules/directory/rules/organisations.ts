import { randomUUID } from 'node:crypto';
import { BulkKind, COLUMNS } from '../directory.columns';
import { checkSeen, DirectoryRowErrorCode, enumCell, fail, field, q, remember, run, type Operation, type Planned, type SeenKeys } from './common';
import { LocationType, type LocationRef } from './locations';

/** Bulk upload rules for organisations (see common.ts). */

export enum OrganisationStatus {
  ACTIVE = 'ACTIVE',
  INACTIVE = 'INACTIVE',
}

export enum OrganisationType {
  SCHOOL = 'SCHOOL',
  BOARD = 'BOARD',
}

export interface OrganisationRef {
  id: string;
  name: string;
  externalId: string | null;
  locationId: string | null;
  status: OrganisationStatus;
  description: string | null;
  type: OrganisationType;
}

export interface OrganisationLookup {
  byId: Map<string, OrganisationRef>;
  byExternalId: Map<string, OrganisationRef>;
  locationsByCode: Map<string, LocationRef>;
}

export interface OrganisationWrite {
  id: string;
  name: string;
  external_id: string | null;
  location_id: string;
  status: OrganisationStatus;
  description: string | null;
  type: OrganisationType;
}

export function organisationKeys(rows: Array<Record<string, string>>): { ids: string[]; externalIds: string[]; locationCodes: string[] } {
  const ids = new Set<string>();
  const ext = new Set<string>();
  const locs = new Set<string>();
  for (const r of rows) {
    if (r['organisationId']) ids.add(r['organisationId']);
    if (r['externalId']) ext.add(r['externalId']);
    if (r['locationCode']) locs.add(r['locationCode']);
  }
  return { ids: [...ids], externalIds: [...ext], locationCodes: [...locs] };
}

/**
 * SCHOOL ID present = update that organisation (it must exist). Otherwise EXTERNAL ID is required:
 * an existing external id = update, a new one = create, so uploading a file twice never doubles.
 * Empty optional cells of an update keep the stored value.
 */
export function planOrganisation(values: Record<string, string>, line: number, lookup: OrganisationLookup, seen: SeenKeys): Planned<OrganisationWrite> {
  const K = BulkKind.ORGANISATION;
  const data: Record<string, unknown> = Object.fromEntries(COLUMNS[K].map((c) => [c.key, values[c.key] || null]));
  const ctx = { operation: null as Operation | null, id: null as string | null };
  try {
    return run(data, ctx, () => {
      const orgId = field(K, values, 'organisationId');
      const externalId = field(K, values, 'externalId');
      if (orgId) checkSeen(seen, `id:${orgId}`, DirectoryRowErrorCode.DUPLICATE_ORGANISATION, 'SCHOOL ID', `SCHOOL ID ${q(orgId)}`);
      if (externalId) checkSeen(seen, `ext:${externalId}`, DirectoryRowErrorCode.DUPLICATE_EXTERNAL_ID, 'EXTERNAL ID', `EXTERNAL ID ${q(externalId)}`);
      const name = field(K, values, 'orgName', true);
      const locationCode = field(K, values, 'locationCode', true);
      const statusCell = field(K, values, 'status');
      const status = statusCell ? enumCell(statusCell, [OrganisationStatus.ACTIVE, OrganisationStatus.INACTIVE]) : null;
      if (statusCell && !status) fail(DirectoryRowErrorCode.INVALID_STATUS, 'STATUS', `STATUS ${q(statusCell)} must be active or inactive`);
      const typeCell = field(K, values, 'organisationType');
      const type = typeCell ? enumCell(typeCell, [OrganisationType.SCHOOL, OrganisationType.BOARD]) : null;
      if (typeCell && !type)
        fail(DirectoryRowErrorCode.INVALID_ORGANISATION_TYPE, 'ORGANISATION TYPE', `ORGANISATION TYPE ${q(typeCell)} must be school or board`);
      const description = field(K, values, 'description');

      let existing: OrganisationRef | undefined;
      const byExt = externalId ? lookup.byExternalId.get(externalId) : undefined;
      if (orgId) {
        ctx.operation = 'UPDATE';
        ctx.id = orgId;
        existing = lookup.byId.get(orgId);
        if (!existing) fail(DirectoryRowErrorCode.ORGANISATION_NOT_FOUND, 'SCHOOL ID', `No organisation has SCHOOL ID ${q(orgId)}`);
        if (byExt && byExt.id !== existing.id)
          fail(DirectoryRowErrorCode.DUPLICATE_EXTERNAL_ID, 'EXTERNAL ID', `EXTERNAL ID ${q(externalId)} belongs to organisation ${q(byExt.id)}`);
      } else {
        if (!externalId)
          fail(
            DirectoryRowErrorCode.MISSING_FIELD,
            'EXTERNAL ID',
            'EXTERNAL ID is required when SCHOOL ID is empty (it identifies the organisation on a re-upload)',
          );
        existing = byExt;
        ctx.operation = existing ? 'UPDATE' : 'CREATE';
        ctx.id = existing?.id ?? null;
      }
      const location = lookup.locationsByCode.get(locationCode);
      if (!location) fail(DirectoryRowErrorCode.LOCATION_NOT_FOUND, 'BLOCK CODE', `No location has code ${q(locationCode)}`);
      if (location.type !== LocationType.BLOCK)
        fail(DirectoryRowErrorCode.LOCATION_WRONG_TYPE, 'BLOCK CODE', `Location ${q(locationCode)} is a ${location.type.toLowerCase()}, not a block`);

      const id = existing?.id ?? randomUUID();
      const ref: OrganisationRef = {
        id,
        name,
        externalId: externalId || existing?.externalId || null,
        locationId: location.id,
        status: status ?? existing?.status ?? OrganisationStatus.ACTIVE,
        description: description || existing?.description || null,
        type: type ?? existing?.type ?? OrganisationType.SCHOOL,
      };
      lookup.byId.set(id, ref);
      if (ref.externalId) lookup.byExternalId.set(ref.externalId, ref);
      Object.assign(data, { status: ref.status.toLowerCase(), organisationType: ref.type.toLowerCase(), externalId: ref.externalId, locationId: location.id });
      return {
        ok: true,
        operation: existing ? 'UPDATE' : 'CREATE',
        id,
        write: { id, name, external_id: ref.externalId, location_id: location.id, status: ref.status, description: ref.description, type: ref.type },
        data,
      };
    });
  } finally {
    rememberOrganisation(values, line, seen);
  }
}

/** Registers a organisation row's keys so later lines see them. */
export function rememberOrganisation(values: Record<string, string>, line: number, seen: SeenKeys): void {
  remember(seen, line, [values['organisationId'] ? `id:${values['organisationId']}` : null, values['externalId'] ? `ext:${values['externalId']}` : null]);
}
