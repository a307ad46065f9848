import { GraphQLJSON, GraphQLSafeInt } from 'graphql-scalars';
import { Field, GraphQLISODateTime, ID, Int, ObjectType, registerEnumType } from 'type-graphql';
import { Connection } from '../shared/connection';
import { JobType } from '../jobs/jobs.type';
import { BulkKind } from './directory.columns';
import type { BulkProcess } from './directory.store';
import { valuesConfig } from '../../shared/codes';
import { DIRECTORY_ROW_ERROR_CODES, DirectoryRowErrorCode, LocationType, OrganisationStatus, OrganisationType, UserType } from './rules';

registerEnumType(BulkKind, {
  name: 'BulkUploadKind',
  description: 'What a bulk upload creates or updates (Sunbird objectType).',
  valuesConfig: {
    LOCATION: { description: 'Locations (state, district, block, cluster, school), keyed by code.' },
    ORGANISATION: { description: 'Organisations (schools, boards), keyed by SCHOOL ID or EXTERNAL ID.' },
    USER: { description: 'Users, keyed by USER ID, phone or email.' },
  },
});
registerEnumType(LocationType, {
  name: 'LocationType',
  description: 'Location level, top to bottom: STATE > DISTRICT > BLOCK > CLUSTER > SCHOOL.',
  valuesConfig: {
    STATE: { description: 'The top level; has no parent.' },
    DISTRICT: { description: 'Under a state.' },
    BLOCK: { description: 'Under a district; organisations are placed in a block.' },
    CLUSTER: { description: 'Under a block.' },
    SCHOOL: { description: 'Under a cluster; the lowest level.' },
  },
});
registerEnumType(OrganisationStatus, {
  name: 'OrganisationStatus',
  description: 'Whether an organisation is in use.',
  valuesConfig: {
    ACTIVE: { description: 'In use.' },
    INACTIVE: { description: 'No longer in use (kept, not deleted).' },
  },
});
registerEnumType(OrganisationType, {
  name: 'OrganisationType',
  description: 'Kind of organisation.',
  valuesConfig: {
    SCHOOL: { description: 'A school.' },
    BOARD: { description: 'An education board.' },
  },
});
registerEnumType(UserType, {
  name: 'UserType',
  description: 'Kind of user.',
  valuesConfig: {
    TEACHER: { description: 'A teacher.' },
    OTHER: { description: 'Any other user.' },
  },
});
registerEnumType(DirectoryRowErrorCode, {
  name: 'DirectoryRowErrorCode',
  description: 'Why a bulk upload row failed. Stable; see the README for each.',
  valuesConfig: valuesConfig(DIRECTORY_ROW_ERROR_CODES),
});

export enum BulkProcessStatus {
  NOT_STARTED = 'NOT_STARTED',
  IN_PROGRESS = 'IN_PROGRESS',
  COMPLETED = 'COMPLETED',
  FAILED = 'FAILED',
}
registerEnumType(BulkProcessStatus, {
  name: 'BulkProcessStatus',
  description: 'Sunbird process status, derived from the job state and never guessed.',
  valuesConfig: {
    NOT_STARTED: { description: 'Queued; no row read yet (job QUEUED).' },
    IN_PROGRESS: { description: 'A worker is applying rows (job RUNNING).' },
    COMPLETED: { description: 'Every row was applied or reported as failed, at least one succeeded (job SUCCEEDED or SUCCEEDED_WITH_ERRORS).' },
    FAILED: { description: 'Every row failed, or the process stopped (job FAILED or CANCELLED); rows already applied stay applied and are listed.' },
  },
});

export enum BulkOperation {
  CREATE = 'CREATE',
  UPDATE = 'UPDATE',
}
registerEnumType(BulkOperation, {
  name: 'BulkOperation',
  description: 'What a row did (or, for a failed row, tried to do).',
  valuesConfig: {
    CREATE: { description: 'The row created a new record.' },
    UPDATE: { description: 'The row updated an existing record.' },
  },
});

@ObjectType({ description: 'The outcome of one row.' })
export class BulkRowResult {
  @Field(() => Int, { description: 'Line in the file where the row starts (header = 1).' })
  line!: number;

  @Field(() => BulkOperation, { nullable: true, description: 'CREATE or UPDATE; null when the row failed before that was known.' })
  operation!: BulkOperation | null;

  @Field(() => String, { nullable: true, description: 'Id of the created or updated location, organisation or user (for a failed update: the id it named).' })
  id!: string | null;

  @Field(() => DirectoryRowErrorCode, { nullable: true, description: 'Why the row failed (failureResult only).' })
  errorCode!: DirectoryRowErrorCode | null;

  @Field(() => String, { nullable: true, description: 'The column concerned, by its display name.' })
  errorColumn!: string | null;

  @Field(() => String, { nullable: true, description: 'Explanation naming the value and the rule.' })
  errorMessage!: string | null;

  @Field(() => GraphQLJSON, {
    description:
      'The row as read and resolved, by internal column name (Sunbird echoes it: code, name, type, parentCode, parentId, ...). Phone and email are masked unless the viewer is ADMIN.',
  })
  data!: unknown;
}

export const BulkRowResultConnection = Connection(BulkRowResult, 'BulkRowResultConnection', {
  description: 'A page of row results, by line.',
  nodes: 'Rows on this page.',
  totalCount: 'All such rows of the process so far.',
});
export type BulkRowResultConnection = InstanceType<typeof BulkRowResultConnection>;

@ObjectType({ description: 'Row counts of a bulk upload.' })
export class BulkUploadCounts {
  @Field(() => Int, { description: 'Data rows in the file (counted when the upload was accepted).' })
  total!: number;

  @Field(() => Int, { description: 'Rows with a result so far.' })
  processed!: number;

  @Field(() => Int, { description: 'Rows created or updated.' })
  succeeded!: number;

  @Field(() => Int, { description: 'Rows that failed (nothing written for them).' })
  failed!: number;
}

@ObjectType('BulkUploadStatus', { description: 'A bulk upload process and its per-row results (Sunbird upload status, with line numbers).' })
export class BulkUploadStatusType {
  @Field(() => ID, { description: 'Process id: a string (UUID), never a number.' })
  processId!: string;

  @Field(() => BulkKind, { description: 'LOCATION, ORGANISATION or USER.' })
  objectType!: BulkKind;

  @Field(() => LocationType, { nullable: true, description: 'The locationType the upload was given (LOCATION).' })
  locationType!: LocationType | null;

  @Field(() => BulkProcessStatus, { description: 'NOT_STARTED, IN_PROGRESS, COMPLETED or FAILED.' })
  status!: BulkProcessStatus;

  @Field(() => String, { description: 'Human-readable status, e.g. "Operation is completed."' })
  message!: string;

  @Field(() => String, { description: 'Name the file was uploaded under.' })
  fileName!: string;

  @Field(() => GraphQLSafeInt, { description: 'Size in bytes as stored.' })
  size!: number;

  @Field(() => String, { description: 'SHA-256 of the stored bytes (hex).' })
  sha256!: string;

  @Field(() => BulkUploadCounts, { description: 'Row counts.' })
  counts!: BulkUploadCounts;

  @Field(() => JobType, { description: 'The job applying the rows; watch it with jobUpdated.' })
  job!: JobType;

  @Field(() => String, { description: 'clientId that uploaded it.' })
  createdBy!: string;

  @Field(() => GraphQLISODateTime, { description: 'When it was uploaded.' })
  createdAt!: Date;

  /** Internal: the stored process, for the result field resolvers. */
  process!: BulkProcess;
}

@ObjectType({ description: 'A bulk upload accepted: the file is stored and its job queued.' })
export class BulkUploadResult {
  @Field(() => ID, { description: 'Process id for uploadStatus.' })
  processId!: string;

  @Field(() => Boolean, { description: 'False when the idempotency key returned an earlier upload.' })
  created!: boolean;

  @Field(() => BulkUploadStatusType, { description: 'The process as of now.' })
  status!: BulkUploadStatusType;
}

@ObjectType('Location', { description: 'A location in the hierarchy state > district > block > cluster > school.' })
export class LocationGql {
  @Field(() => ID, { description: 'Location id.' })
  id!: string;

  @Field(() => String, { description: 'Unique code.' })
  code!: string;

  @Field(() => String, { description: 'Name.' })
  name!: string;

  @Field(() => LocationType, { description: 'Level.' })
  type!: LocationType;

  @Field(() => String, { nullable: true, description: 'Parent location id (null for a state).' })
  parentId!: string | null;

  @Field(() => String, { nullable: true, description: 'Parent location code.' })
  parentCode!: string | null;

  @Field(() => GraphQLISODateTime, { description: 'When it was created.' })
  createdAt!: Date;

  @Field(() => GraphQLISODateTime, { description: 'When it last changed.' })
  updatedAt!: Date;
}

@ObjectType('Organisation', { description: 'An organisation (school or board), attached to a block.' })
export class OrganisationGql {
  @Field(() => ID, { description: 'Organisation id (SCHOOL ID).' })
  id!: string;

  @Field(() => String, { description: 'Name.' })
  name!: string;

  @Field(() => String, { nullable: true, description: 'Unique external id.' })
  externalId!: string | null;

  @Field(() => OrganisationStatus, { description: 'ACTIVE or INACTIVE.' })
  status!: OrganisationStatus;

  @Field(() => String, { nullable: true, description: 'Description.' })
  description!: string | null;

  @Field(() => OrganisationType, { description: 'SCHOOL or BOARD.' })
  type!: OrganisationType;

  @Field(() => String, { nullable: true, description: 'Location (block) id.' })
  locationId!: string | null;

  @Field(() => String, { nullable: true, description: 'Location (block) code.' })
  locationCode!: string | null;

  @Field(() => GraphQLISODateTime, { description: 'When it was created.' })
  createdAt!: Date;

  @Field(() => GraphQLISODateTime, { description: 'When it last changed.' })
  updatedAt!: Date;
}

@ObjectType('DirectoryUser', { description: 'A user of the directory. Phone and email are masked unless the viewer is ADMIN.' })
export class DirectoryUserGql {
  @Field(() => ID, { description: 'User id.' })
  id!: string;

  @Field(() => String, { description: 'Name.' })
  name!: string;

  @Field(() => String, { nullable: true, description: 'Mobile phone (10 digits), masked (******3210) unless the viewer is ADMIN.' })
  phone!: string | null;

  @Field(() => String, { nullable: true, description: 'Email (lower case), masked (v***@example.org) unless the viewer is ADMIN.' })
  email!: string | null;

  @Field(() => String, { nullable: true, description: 'Organisation id.' })
  organisationId!: string | null;

  @Field(() => String, { nullable: true, description: 'Organisation external id.' })
  organisationExternalId!: string | null;

  @Field(() => String, { nullable: true, description: 'Organisation name.' })
  organisationName!: string | null;

  @Field(() => UserType, { description: 'TEACHER or OTHER.' })
  userType!: UserType;

  @Field(() => [String], { description: 'Roles (upper case).' })
  roles!: string[];

  @Field(() => String, { nullable: true, description: 'Unique external id.' })
  externalId!: string | null;

  @Field(() => GraphQLISODateTime, { description: 'When it was created.' })
  createdAt!: Date;

  @Field(() => GraphQLISODateTime, { description: 'When it last changed.' })
  updatedAt!: Date;
}

export const LocationConnection = Connection(LocationGql, 'LocationConnection', {
  description: 'A page of locations, by code.',
  nodes: 'Locations on this page.',
  totalCount: 'Locations matching the filter.',
});
export type LocationConnection = InstanceType<typeof LocationConnection>;

export const OrganisationConnection = Connection(OrganisationGql, 'OrganisationConnection', {
  description: 'A page of organisations, by name.',
  nodes: 'Organisations on this page.',
  totalCount: 'Organisations matching the filter.',
});
export type OrganisationConnection = InstanceType<typeof OrganisationConnection>;

export const DirectoryUserConnection = Connection(DirectoryUserGql, 'DirectoryUserConnection', {
  description: 'A page of users, by name.',
  nodes: 'Users on this page.',
  totalCount: 'Users matching the filter.',
});
export type DirectoryUserConnection = InstanceType<typeof DirectoryUserConnection>;
