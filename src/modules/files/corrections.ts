import type postgres from 'postgres';
import { ErrorSummaryBuilder, mergeErrorSummaries, type ErrorSummary } from '../../ingest/error-summary';
import { JobErrorCode, JobFailure } from '../../jobs/errors';
import type { RowErrorCode } from '../../ingest/row-validator';
import { codeValues } from '../../shared/codes';
import type { CompiledSpec } from '../../ingest/contract';
import {
  assertIdentifier,
  attachFilePartition,
  createFilePartition,
  createScratchTable,
  ensureLineIndex,
  filePartitionName,
  partitionParent,
  quoteIdentifier,
} from '../datasets/dataset-tables.store';
import type { FileRecord } from './files.store';
import type { IngestTarget } from './ingestion-load';

/** Row error codes a corrections upload adds to the pipeline's own (ROW_ERROR_CODES), each with its description. */
export const CORRECTION_ROW_CODES = {
  ALREADY_CORRECTED: "The line is in the file's data already (corrected before, or valid from the start).",
  UNKNOWN_LINE: 'The line was never an invalid row of the file (a blank line, the header, an edited _line).',
} as const;
export type CorrectionRowCode = keyof typeof CORRECTION_ROW_CODES;

/** The codes of a corrections row error; DUPLICATE_KEY (the corrected row's key equals one of the parent's rows) is the pipeline's. */
export const CorrectionRowCode = { ...codeValues(CORRECTION_ROW_CODES), DUPLICATE_KEY: 'DUPLICATE_KEY' } as const satisfies Record<
  string,
  RowErrorCode | CorrectionRowCode
>;

/** What applying a corrections file did, filled in inside its load transaction. */
export interface CorrectionsTally {
  applied: number;
  already: number;
  unknown: number;
  duplicate: number;
}

const q = quoteIdentifier;

/**
 * The parent's last line: a corrected row can only go back to a line the parent had, which bounds
 * the blank-line padding restoreCorrectedCsv writes.
 */
export async function parentLastLine(tx: postgres.TransactionSql, table: string, parentId: string): Promise<number> {
  const [errs] = await tx<{ n: number | null }[]>`select max(line)::int as n from row_errors where file_id = ${parentId}`;
  const [kind] = await tx<{ relkind: string }[]>`select relkind from pg_class where oid = to_regclass(${q(assertIdentifier(table))})`;
  const [rows] = kind ? await tx<{ n: number | null }[]>`select max(_line)::int as n from ${tx(table)} where _file_id = ${parentId}` : [{ n: null }];
  return Math.max(errs?.n ?? 0, rows?.n ?? 0);
}

/**
 * The `rows` hook of a corrections upload (see IngestTarget.rows): its valid rows are COPYed into a
 * temporary table with the parent's file id, then moved into the parent's partition under their
 * original lines, in the same fenced transaction. A line already there (ALREADY_CORRECTED), one the
 * parent never reported (UNKNOWN_LINE) or a key the parent holds (DUPLICATE_KEY) is skipped and
 * becomes a row error of the corrections file; the parent's row errors of the applied lines are
 * removed and its counts moved. The parent's file row is locked first, so two corrections of one
 * file apply one after the other and a line is applied once.
 */
export function correctionRows(parent: FileRecord, correction: FileRecord, spec: CompiledSpec, tally: CorrectionsTally): NonNullable<IngestTarget['rows']> {
  return {
    fileId: parent.id,
    prepare: async (tx, table) => {
      await tx`select 1 from files where id = ${parent.id} for update`;
      const stage = assertIdentifier(`corr_${correction.id.replace(/-/g, '').toLowerCase()}`);
      await createScratchTable(tx, stage, table);
      return { table: stage, attach: () => applyCorrections(tx, { table, stage, parent, correction, spec, tally }) };
    },
  };
}

async function applyCorrections(
  tx: postgres.TransactionSql,
  c: { table: string; stage: string; parent: FileRecord; correction: FileRecord; spec: CompiledSpec; tally: CorrectionsTally },
): Promise<void> {
  const target = q(await parentRowsTable(tx, c.table, c.parent.id));
  const stage = q(c.stage);
  const count = async (text: string, params: postgres.ParameterOrJSON<never>[]) => (await tx.unsafe<{ n: number }[]>(text, params))[0]?.n ?? 0;
  const skipped = `not exists (select 1 from row_errors r where r.file_id = $1 and r.line = s._line)`;
  const ids = [c.correction.id, c.parent.id, c.parent.id];

  c.tally.already = await count(
    `with x as (insert into row_errors (file_id, line, idx, "column", code, message)
       select $1, s._line, 0, null, '${CorrectionRowCode.ALREADY_CORRECTED}', 'line ' || s._line || ' of file ' || $3::text || ' is in its data already (corrected before, or valid); a line is applied once'
       from ${stage} s where exists (select 1 from ${target} t where t._file_id = $2::uuid and t._line = s._line) returning 1)
     select count(*)::int as n from x`,
    ids,
  );
  c.tally.unknown = await count(
    `with x as (insert into row_errors (file_id, line, idx, "column", code, message)
       select $1, s._line, 0, null, '${CorrectionRowCode.UNKNOWN_LINE}', 'line ' || s._line || ' was not an invalid row of file ' || $3::text || '; keep _line as the error report has it'
       from ${stage} s where ${skipped} and not exists (select 1 from row_errors p where p.file_id = $2::uuid and p.line = s._line) returning 1)
     select count(*)::int as n from x`,
    ids,
  );
  const key = c.spec.uniqueKey.map((k) => q(assertIdentifier(k)));
  if (key.length > 0) {
    const label = c.spec.uniqueKey.join(',');
    c.tally.duplicate = await count(
      `with x as (insert into row_errors (file_id, line, idx, "column", code, message)
         select $1, s._line, 0, $4::text, '${CorrectionRowCode.DUPLICATE_KEY}', $4::text || ': the same key as line ' || d.line || ' of file ' || $3::text
         from ${stage} s cross join lateral (select min(t._line) as line from ${target} t where t._file_id = $2::uuid and ${key.map((k) => `t.${k} = s.${k}`).join(' and ')}) d
         where d.line is not null and ${skipped} returning 1)
       select count(*)::int as n from x`,
      [...ids, label],
    );
  }
  const columns = ['_file_id', '_line', ...c.spec.columns.map((col) => q(assertIdentifier(col.column)))].join(', ');
  c.tally.applied = await count(
    `with ins as (insert into ${target} (${columns}) select ${columns} from ${stage} s where ${skipped} returning _line),
       del as (delete from row_errors r using ins where r.file_id = $2::uuid and r.line = ins._line)
     select count(*)::int as n from ins`,
    ids.slice(0, 2),
  );
  if (c.tally.applied > 0) {
    await tx`update files set valid_rows = coalesce(valid_rows, 0) + ${c.tally.applied}, invalid_rows = greatest(coalesce(invalid_rows, 0) - ${c.tally.applied}, 0), updated_at = now()
             where id = ${c.parent.id}`;
  }
}

/**
 * The table holding the parent's rows: its partition, created and attached when the parent kept
 * no row (every row invalid), or the spec table itself when it is not partitioned. The partition
 * gets its unique index on `_line` here if it has none (a load builds none, see prepareRowTable):
 * the lookups below go by line, and PostgreSQL refuses a line the insert would add twice.
 */
async function parentRowsTable(tx: postgres.TransactionSql, table: string, parentId: string): Promise<string> {
  const [kind] = await tx<{ relkind: string }[]>`select relkind from pg_class where oid = to_regclass(${q(table)})`;
  if (kind?.relkind !== 'p') return table;
  const partition = filePartitionName(parentId);
  const attachedTo = await partitionParent(tx, partition);
  if (attachedTo !== undefined && attachedTo !== table)
    throw new JobFailure(JobErrorCode.CORRECTIONS_INVALID, `The rows of file ${parentId} are not in the table of its spec version; they cannot be corrected`);
  if (attachedTo === undefined) {
    await createFilePartition(tx, table, parentId);
    await attachFilePartition(tx, table, parentId);
  }
  await ensureLineIndex(tx, partition);
  return partition;
}

/** The corrections file's summary with the rows its application skipped added. */
export function withSkipped(summary: ErrorSummary | null | undefined, spec: CompiledSpec, tally: CorrectionsTally): ErrorSummary {
  const skipped = new ErrorSummaryBuilder(spec);
  for (let i = 0; i < tally.already; i++) skipped.addError(CorrectionRowCode.ALREADY_CORRECTED, null);
  for (let i = 0; i < tally.unknown; i++) skipped.addError(CorrectionRowCode.UNKNOWN_LINE, null);
  for (let i = 0; i < tally.duplicate; i++) skipped.addError(CorrectionRowCode.DUPLICATE_KEY, spec.uniqueKey.join(','));
  return mergeErrorSummaries(summary ? [summary, skipped.result()] : [skipped.result()]);
}
