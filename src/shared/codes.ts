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

/** Several tables as one (a field that can carry codes of several sets); a code in two tables is a bug. */
export function mergeCodeTables<T extends CodeTable[]>(...tables: T): CodeTable {
  const merged: Record<string, string> = {};
  for (const table of tables) {
    for (const [code, description] of Object.entries(table)) {
      if (code in merged) throw new Error(`Code ${code} is defined twice`);
      merged[code] = description;
    }
  }
  return merged;
}
