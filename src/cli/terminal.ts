/** An output stream and what it can do. Tests pass plain pipes, so everything degrades to plain lines. */
export interface Terminal {
  write(text: string): void;
  /** True on an interactive terminal: progress bars redraw in place with \r. */
  readonly isTTY: boolean;
  /** Visible width in characters (80 when unknown). */
  readonly columns: number;
  readonly color: boolean;
}

export function terminalOf(stream: NodeJS.WriteStream, noColor: boolean): Terminal {
  return {
    write: (text) => void stream.write(text),
    isTTY: Boolean(stream.isTTY),
    get columns() {
      return stream.columns || 80;
    },
    color: Boolean(stream.isTTY) && !noColor,
  };
}

const codes = { red: 31, green: 32, yellow: 33, dim: 2, bold: 1 } as const;

/** Wraps `text` in an ANSI colour when the terminal shows colours. */
export function paint(t: Terminal, colour: keyof typeof codes, text: string): string {
  return t.color ? `\x1b[${codes[colour]}m${text}\x1b[0m` : text;
}
