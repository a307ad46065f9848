import { registerEnumType } from 'type-graphql';

/**
 * A closed set of stable codes, each with its description: the one place a code set is defined.
 * Clients branch on the codes (never on messages); the schema documents each value from the table.
 */
export type CodeTable = Readonly<Record<string, string>>;

/** `{ CODE: 'CODE', ... }` for a table, so callers can write `Codes.CODE` as with a TS enum. */
export function codeValues<T extends CodeTable>(table: T): { readonly [K in keyof T]: K } {
  return Object.freeze(Object.fromEntries(Object.keys(table).map((k) => [k, k]))) as { readonly [K in keyof T]: K };
}

/** GraphQL value descriptions (type-graphql valuesConfig) from a table. */
export function valuesConfig(table: CodeTable): Record<string, { description: string }> {
  return Object.fromEntries(Object.entries(table).map(([code, description]) => [code, { description }]));
}

/** Registers a code table as a GraphQL enum whose every value is described by the table. */
export function registerCodeEnum(table: CodeTable, name: string, description: string): { readonly [code: string]: string } {
  const values = codeValues(table);
  registerEnumType(values, { name, description, valuesConfig: valuesConfig(table) });
  return values;
}
