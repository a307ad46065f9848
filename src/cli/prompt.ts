import readline from 'node:readline/promises';
import { CliError } from './command';

type Input = NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };

/** Asks for a line on the terminal. */
export async function ask(input: Input, question: string): Promise<string> {
  const rl = readline.createInterface({ input, output: process.stderr, terminal: true });
  try {
    return (await rl.question(question)).trim();
  } finally {
    rl.close();
  }
}

/** Asks for a secret on the terminal without echoing it. */
export function askHidden(input: Input, question: string): Promise<string> {
  if (!input.setRawMode) return ask(input, question);
  process.stderr.write(question);
  input.setRawMode(true);
  input.setEncoding?.('utf8');
  input.resume();
  let value = '';
  return new Promise((resolve, reject) => {
    const finish = (err?: Error) => {
      input.removeListener('data', onData);
      input.setRawMode!(false);
      input.pause();
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (chunk: string | Buffer) => {
      for (const c of String(chunk)) {
        if (c === '\r' || c === '\n' || c === '\u0004') return finish();
        if (c === '\u0003') return finish(new CliError('Cancelled'));
        if (c === '\u007f' || c === '\b') value = value.slice(0, -1);
        else value += c;
      }
    };
    input.on('data', onData);
  });
}

/** All of standard input as text (for `--client-secret-stdin`). */
export async function readAll(input: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of input) text += String(chunk);
  return text;
}
