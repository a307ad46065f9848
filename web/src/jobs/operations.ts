import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { parse } from 'graphql';
import type {
  FileWarningFieldsFragment,
  IngestMode,
  MergeDiffFieldsFragment,
  OnUnknownColumns,
  UploadFileMutation,
  UploadFileMutationVariables,
  ValidateFileMutation,
  ValidateFileMutationVariables,
} from '../../../src/sdk/client';

/**
 * The two import requests of the page that combine arguments no SDK operation combines: a dry run
 * with a column mapping *and* the merge diff, and an upload with a column mapping *and* a merge
 * mode. Written here rather than in src/sdk/operations so the SDK's operations stay as they are;
 * the browser tests run both against the real schema.
 */

const FILE_WARNING = /* GraphQL */ `
  fragment WebFileWarningFields on FileWarning {
    code
    message
    count
    columns {
      name
      position
      suggestion
    }
  }
`;

export type WebValidateFileMutation = {
  validateFile: ValidateFileMutation['validateFile'] & { mode: IngestMode | null; diff: MergeDiffFieldsFragment | null; warnings: FileWarningFieldsFragment[] };
};
export type WebValidateFileVariables = ValidateFileMutationVariables & { mode?: IngestMode | null; deleteMissing?: boolean };

export const WebValidateFileDocument = parse(/* GraphQL */ `
  mutation WebValidateFile(
    $spec: String!
    $file: Upload!
    $maxErrors: Int
    $onUnknownColumns: OnUnknownColumns
    $columnMap: JSON
    $mode: IngestMode
    $deleteMissing: Boolean! = false
  ) {
    validateFile(spec: $spec, file: $file, maxErrors: $maxErrors, onUnknownColumns: $onUnknownColumns, columnMap: $columnMap, mode: $mode, deleteMissing: $deleteMissing) {
      valid
      mode
      header
      headerProblems {
        code
        column
        message
        suggestion
      }
      headerProblemCount
      warnings {
        ...WebFileWarningFields
      }
      total
      validRows
      invalidRows
      empty
      errors {
        line
        column
        code
        message
      }
      diff {
        inserted
        updated
        unchanged
        deleted
        changes {
          line
          key {
            column
            value
          }
          previousFileId
          previousLine
          changes {
            column
            before
            after
          }
        }
      }
    }
  }
  ${FILE_WARNING}
`) as TypedDocumentNode<WebValidateFileMutation, WebValidateFileVariables>;

export type WebUploadFileVariables = UploadFileMutationVariables & { mode?: IngestMode | null; deleteMissing?: boolean; onUnknownColumns?: OnUnknownColumns | null };

export const WebUploadFileDocument = parse(/* GraphQL */ `
  mutation WebUploadFile(
    $program: String!
    $spec: String!
    $file: Upload!
    $onInvalidRows: OnInvalidRows
    $onUnknownColumns: OnUnknownColumns
    $columnMap: JSON
    $mode: IngestMode
    $deleteMissing: Boolean! = false
  ) {
    uploadFile(
      program: $program
      spec: $spec
      file: $file
      onInvalidRows: $onInvalidRows
      onUnknownColumns: $onUnknownColumns
      columnMap: $columnMap
      mode: $mode
      deleteMissing: $deleteMissing
    ) {
      file {
        id
      }
      job {
        id
        state
      }
    }
  }
`) as TypedDocumentNode<{ uploadFile: { file: Pick<UploadFileMutation['uploadFile']['file'], 'id'>; job: Pick<UploadFileMutation['uploadFile']['job'], 'id' | 'state'> } }, WebUploadFileVariables>;
