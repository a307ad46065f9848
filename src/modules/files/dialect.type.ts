import { Field, ObjectType, registerEnumType } from 'type-graphql';
import type { CsvDelimiter, CsvDialect, CsvDialectOptions, CsvEncoding } from '../../ingest/csv-dialect';

/** GraphQL names of the encodings csv-dialect.ts reads; the values are the same names. */
export enum CsvEncodingEnum {
  UTF_8 = 'UTF_8',
  UTF_16LE = 'UTF_16LE',
  UTF_16BE = 'UTF_16BE',
  WINDOWS_1252 = 'WINDOWS_1252',
  ISO_8859_1 = 'ISO_8859_1',
  ISO_8859_15 = 'ISO_8859_15',
  WINDOWS_1250 = 'WINDOWS_1250',
  WINDOWS_1251 = 'WINDOWS_1251',
}
registerEnumType(CsvEncodingEnum, {
  name: 'CsvEncoding',
  description:
    'Text encoding of a CSV. Without the argument: UTF-8, or UTF-16 LE/BE when the file starts with a UTF-16 byte order mark; a byte order mark always wins over the argument. Other encodings are transcoded to UTF-8 while streaming.',
  valuesConfig: {
    UTF_8: { description: 'UTF-8, with or without a BOM (the default).' },
    UTF_16LE: { description: 'UTF-16 little-endian (Excel "Unicode Text"); needed only when the file has no BOM.' },
    UTF_16BE: { description: 'UTF-16 big-endian; needed only when the file has no BOM.' },
    WINDOWS_1252: { description: 'Windows-1252 (Western European; Excel "CSV" on Windows).' },
    ISO_8859_1: { description: 'ISO-8859-1 (Latin-1).' },
    ISO_8859_15: { description: 'ISO-8859-15 (Latin-9, with €).' },
    WINDOWS_1250: { description: 'Windows-1250 (Central European).' },
    WINDOWS_1251: { description: 'Windows-1251 (Cyrillic).' },
  },
});

export enum CsvDelimiterEnum {
  COMMA = 'COMMA',
  SEMICOLON = 'SEMICOLON',
  TAB = 'TAB',
  PIPE = 'PIPE',
}
registerEnumType(CsvDelimiterEnum, {
  name: 'CsvDelimiter',
  description:
    'Cell delimiter of a CSV. Without the argument it is detected from the header line (the first non-blank line): the candidate occurring most often outside quotes; a tie or none means COMMA.',
  valuesConfig: { COMMA: { description: '`,`' }, SEMICOLON: { description: '`;`' }, TAB: { description: 'a tab character' }, PIPE: { description: '`|`' } },
});

export enum LineEndingEnum {
  LF = 'LF',
  CRLF = 'CRLF',
  CR = 'CR',
}
registerEnumType(LineEndingEnum, {
  name: 'LineEnding',
  description: 'Line break of a CSV (one kind per file: mixing them is MIXED_LINE_ENDINGS).',
  valuesConfig: {
    LF: { description: '`\\n` (Unix).' },
    CRLF: { description: '`\\r\\n` (Windows, and RFC 4180).' },
    CR: { description: '`\\r` alone (classic Mac OS).' },
  },
});

const DELIMITERS: Record<CsvDelimiterEnum, CsvDelimiter> = { COMMA: ',', SEMICOLON: ';', TAB: '\t', PIPE: '|' };

@ObjectType('FileDialect', { description: 'How a CSV was read.' })
export class FileDialectType {
  @Field(() => CsvDelimiterEnum, { description: 'Cell delimiter, as named by the upload or detected from the header line.' })
  delimiter!: CsvDelimiterEnum;

  @Field(() => CsvEncodingEnum, { description: 'Encoding the bytes were read in (transcoded to UTF-8 when not UTF-8).' })
  encoding!: CsvEncodingEnum;

  @Field(() => Boolean, { description: 'The file started with a byte order mark (dropped).' })
  bom!: boolean;

  @Field(() => LineEndingEnum, { description: 'Line break.' })
  lineEnding!: LineEndingEnum;
}

/** The pipeline's options from the mutation arguments (null: detect). */
export function dialectOptions(encoding: CsvEncodingEnum | null | undefined, delimiter: CsvDelimiterEnum | null | undefined): CsvDialectOptions {
  const options: CsvDialectOptions = {};
  if (encoding) options.encoding = encoding as CsvEncoding;
  if (delimiter) options.delimiter = DELIMITERS[delimiter];
  return options;
}

export function toFileDialectType(d: CsvDialect | null | undefined): FileDialectType | null {
  if (!d) return null;
  const delimiter = (Object.keys(DELIMITERS) as CsvDelimiterEnum[]).find((k) => DELIMITERS[k] === d.delimiter)!;
  return { delimiter, encoding: d.encoding as CsvEncodingEnum, bom: d.bom, lineEnding: d.lineEnding as LineEndingEnum };
}
