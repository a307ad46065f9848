/**
 * The first lines of a CSV, parsed in the browser for the preview (RFC 4180 quoting, CRLF or LF).
 * Only the first `maxBytes` are read, so a large file previews at once.
 */
export interface CsvPreview {
  header: string[];
  /** Data rows with the file line each starts on (header = 1). */
  rows: Array<{ line: number; cells: string[] }>;
  /** Byte length of the text parsed, cut at the end of the last whole row. */
  bytes: number;
}

export async function previewCsv(file: Blob, maxRows = 20, maxBytes = 256 * 1024): Promise<CsvPreview> {
  const text = await file.slice(0, maxBytes).text();
  const records: Array<{ line: number; cells: string[] }> = [];
  let cells: string[] = [];
  let cell = '';
  let quoted = false;
  let line = 1;
  let start = 1;
  let end = 0;
  for (let i = 0; i < text.length && records.length <= maxRows; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else {
        if (ch === '\n') line++;
        cell += ch;
      }
      continue;
    }
    if (ch === '"' && cell === '') quoted = true;
    else if (ch === ',') {
      cells.push(cell);
      cell = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      cells.push(cell);
      if (cells.length > 1 || cells[0] !== '') records.push({ line: start, cells });
      cells = [];
      cell = '';
      line++;
      start = line;
      end = i + 1;
    } else cell += ch;
  }
  // A file shorter than the window ends without a newline: its last row counts.
  if (text.length < maxBytes && (cell !== '' || cells.length) && records.length <= maxRows) {
    cells.push(cell);
    records.push({ line: start, cells });
    end = text.length;
  }
  const [head, ...rows] = records;
  return {
    header: (head?.cells ?? []).map((c, i) => (i === 0 ? c.replace(/^\uFEFF/, '') : c)),
    rows: rows.slice(0, maxRows),
    bytes: new TextEncoder().encode(text.slice(0, end)).length,
  };
}
