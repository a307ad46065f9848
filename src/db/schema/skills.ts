import { sql } from 'drizzle-orm';
import { index, integer, jsonb, pgTable, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';

/** Competency frameworks imported from a registry: the framework node as fetched, and when. */
export const skillFrameworks = pgTable('skill_frameworks', {
  /** Credential Engine CTID (`ce-<uuid>`). */
  ctid: text('ce_ctid').primaryKey(),
  uri: text('uri').notNull(),
  name: text('name'),
  description: text('description'),
  sourceName: text('source_name').notNull(),
  /** The framework node exactly as fetched. */
  raw: jsonb('raw').notNull(),
  competencyCount: integer('competency_count').notNull(),
  importJobId: uuid('import_job_id'),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  importedAt: timestamp('imported_at', { withTimezone: true }).notNull().defaultNow(),
});

/**
 * Skills (competencies). One row per CTID: a re-import updates in place. parent_nodes and
 * child_nodes hold skill ids (the tree); a competency gone from its framework upstream keeps its
 * row with removed_at set.
 */
export const skills = pgTable(
  'skills',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    name: text('name').notNull(),
    description: text('description').notNull(),
    referenceId: text('reference_id').notNull(),
    // Why not "ctid": that is a PostgreSQL system column name.
    ctid: text('ce_ctid'),
    parentNodes: uuid('parent_nodes').array().notNull().default(sql`'{}'::uuid[]`),
    childNodes: uuid('child_nodes').array().notNull().default(sql`'{}'::uuid[]`),
    frameworkCtid: text('framework_ctid'),
    frameworkName: text('framework_name'),
    frameworkUri: text('framework_uri'),
    sourceUri: text('source_uri').notNull(),
    sourceName: text('source_name').notNull(),
    keywords: text('keywords').array().notNull().default(sql`'{}'::text[]`),
    category: text('category'),
    /** The competency node exactly as fetched. */
    raw: jsonb('raw').notNull(),
    /** Document order inside its framework, so a framework's skills list in registry order. */
    position: integer('position').notNull().default(0),
    importJobId: uuid('import_job_id'),
    /** Set when a re-import no longer finds the competency in its framework. */
    removedAt: timestamp('removed_at', { withTimezone: true }),
    // Why millisecond precision: the page cursor carries a JS Date (milliseconds); with
    // microseconds, rows of one import (same now()) would fall between cursor and row.
    createdAt: timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('skills_ctid_idx').on(t.ctid),
    index('skills_created_at_idx').on(t.createdAt.desc(), t.id.desc()),
    index('skills_framework_idx').on(t.frameworkCtid),
    index('skills_source_name_idx').on(t.sourceName),
  ],
);
