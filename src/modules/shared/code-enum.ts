import { registerEnumType } from 'type-graphql';
import { codeValues, valuesConfig, type CodeTable } from '../../shared/codes';

// The GraphQL side of src/shared/codes.ts: kept here so that the tables load without type-graphql.

/** Registers a code table as a GraphQL enum whose every value is described by the table. */
export function registerCodeEnum(table: CodeTable, name: string, description: string): { readonly [code: string]: string } {
  const values = codeValues(table);
  registerEnumType(values, { name, description, valuesConfig: valuesConfig(table) });
  return values;
}
