import { sql } from 'drizzle-orm';
import {
  type AnyPgColumn,
  bigint,
  boolean,
  check,
  index,
  integer,
  jsonb,
  pgEnum,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';
// Types only (`.$type<…>()` narrows the row type to the TypeScript enums the directory code uses; no SQL).
import type { CsvDialectOptions } from '../../ingest/csv-dialect';
import type { BulkKind } from '../../modules/directory/directory.columns';
import type { LocationType, Operation, OrganisationStatus, OrganisationType, UserType } from '../../modules/directory/rules';

/** The location hierarchy, top to bottom: a parent is always exactly one level up. */
export const locationTypeEnum = pgEnum('location_type', ['STATE', 'DISTRICT', 'BLOCK', 'CLUSTER', 'SCHOOL']);
export const organisationStatusEnum = pgEnum('organisation_status', ['ACTIVE', 'INACTIVE']);
export const organisationTypeEnum = pgEnum('organisation_type', ['SCHOOL', 'BOARD']);
export const userTypeEnum = pgEnum('user_type', ['TEACHER', 'OTHER']);
export const bulkKindEnum = pgEnum('bulk_kind', ['LOCATION', 'ORGANISATION', 'USER']);

/*
 * Directory ids are text, not uuid: new rows get a UUID, but ids carried over from Sunbird
 * (`0131650814782423040`) stay valid, so a migrated directory keeps its references.
 */

/** Locations: state > district > block > cluster > school. `code` is the business key. */
export const locations = pgTable(
  'locations',
  {
    id: text('id').primaryKey().default(sql`gen_random_uuid()::text`),
    code: text('code').notNull(),
    name: text('name').notNull(),
    type: locationTypeEnum('type').$type<LocationType>().notNull(),
    parentId: text('parent_id').references((): AnyPgColumn => locations.id),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('locations_code_idx').on(t.code),
    index('locations_type_code_idx').on(t.type, t.code),
    index('locations_parent_code_idx').on(t.parentId, t.code),
  ],
);

/** Organisations (schools, boards), attached to a block. `external_id` is the business key. */
export const organisations = pgTable(
  'organisations',
  {
    id: text('id').primaryKey().default(sql`gen_random_uuid()::text`),
    name: text('name').notNull(),
    externalId: text('external_id'),
    locationId: text('location_id').references(() => locations.id),
    status: organisationStatusEnum('status')
      .$type<OrganisationStatus>()
      .notNull()
      .default('ACTIVE' as OrganisationStatus),
    description: text('description'),
    type: organisationTypeEnum('type')
      .$type<OrganisationType>()
      .notNull()
      .default('SCHOOL' as OrganisationType),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('organisations_external_id_idx').on(t.externalId),
    index('organisations_name_idx').on(t.name, t.id),
    index('organisations_location_idx').on(t.locationId),
  ],
);

/** Users. Phone (10 digits) and email (lower-case) identify a person: each is unique. */
export const directoryUsers = pgTable(
  'directory_users',
  {
    id: text('id').primaryKey().default(sql`gen_random_uuid()::text`),
    name: text('name').notNull(),
    phone: text('phone'),
    email: text('email'),
    organisationId: text('organisation_id').references(() => organisations.id),
    userType: userTypeEnum('user_type')
      .$type<UserType>()
      .notNull()
      .default('TEACHER' as UserType),
    roles: text('roles').array().notNull().default(sql`'{}'::text[]`),
    externalId: text('external_id'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('directory_users_phone_idx').on(t.phone),
    uniqueIndex('directory_users_email_idx').on(t.email),
    uniqueIndex('directory_users_external_id_idx').on(t.externalId),
    index('directory_users_name_idx').on(t.name, t.id),
    index('directory_users_organisation_idx').on(t.organisationId),
    check('directory_users_contact_check', sql`${t.phone} is not null or ${t.email} is not null`),
  ],
);

/** One bulk upload (Sunbird's "process"): the stored CSV and the job that applies it. */
export const bulkProcesses = pgTable(
  'bulk_processes',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    kind: bulkKindEnum('kind').$type<BulkKind>().notNull(),
    /** The file's location type (LOCATION uploads); rows may override it with a `type` column. */
    locationType: locationTypeEnum('location_type').$type<LocationType>(),
    fileName: text('file_name').notNull(),
    storageKey: text('storage_key').notNull(),
    size: bigint('size', { mode: 'number' }).notNull(),
    sha256: text('sha256').notNull(),
    /** Data rows counted when the upload was accepted. */
    totalRows: integer('total_rows').notNull(),
    /** The encoding and delimiter the upload named (`{ encoding?, delimiter? }`); absent ones are detected. */
    dialect: jsonb('dialect').$type<CsvDialectOptions>(),
    jobId: uuid('job_id'),
    idempotencyKey: text('idempotency_key'),
    createdBy: text('created_by').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [uniqueIndex('bulk_processes_idempotency_idx').on(t.createdBy, t.idempotencyKey)],
);

/** The outcome of each row of a bulk upload; keyed by line so a retried job never doubles a row. */
export const bulkResults = pgTable(
  'bulk_results',
  {
    processId: uuid('process_id')
      .notNull()
      .references(() => bulkProcesses.id, { onDelete: 'cascade' }),
    line: integer('line').notNull(),
    ok: boolean('ok').notNull(),
    /** CREATE or UPDATE (also for a failed row: what it attempted, when known). */
    operation: text('operation').$type<Operation>(),
    /** The created or updated row's id. */
    entityId: text('entity_id'),
    errorCode: text('error_code'),
    errorColumn: text('error_column'),
    errorMessage: text('error_message'),
    /** The row as read and resolved (Sunbird echoes it in its results). */
    data: jsonb('data').$type<Record<string, unknown>>().notNull(),
  },
  (t) => [primaryKey({ columns: [t.processId, t.line] }), index('bulk_results_ok_idx').on(t.processId, t.ok, t.line)],
);
