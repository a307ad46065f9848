import { parseArgs } from 'node:util';
import { EnvError, loadCliEnv } from '../env';
import { SluiceClient, SluiceRequestError } from '../sdk/client';
import { VERSION } from '../version';
import { CliError, ExitCode, UsageError, type CliContext, type Command, type OptionSpec, type OptionValues } from './command';
import { commands } from './commands';
import { CliConfigStore, normaliseUrl } from './config';
import { paint, terminalOf, type Terminal } from './terminal';

const DEFAULT_URL = 'http://localhost:4000';

/** Options every command takes. */
const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  url: { type: 'string', arg: '<url>', description: `Service base URL (default: SLUICE_URL, else the server of the last login, else ${DEFAULT_URL})` },
  json: { type: 'boolean', description: 'Print the result as JSON on stdout (progress stays on stderr)' },
  help: { type: 'boolean', short: 'h', description: 'Show help' },
};
const VALUE_OPTIONS = new Set(['--url']);

export interface CliIo {
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  env?: Record<string, string | undefined>;
}

/** Finds the command named by the leading words of argv (global options may come first). */
function findCommand(argv: string[]): { command?: Command; rest: string[]; words: string[] } {
  const words: Array<{ word: string; index: number }> = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') break;
    if (a.startsWith('-')) {
      // A global option's value is not a command word; other options come after the command.
      if (VALUE_OPTIONS.has(a)) i++;
      if (words.length) break;
      continue;
    }
    words.push({ word: a, index: i });
  }
  let best: Command | undefined;
  for (const c of commands) {
    if (c.name.length <= words.length && c.name.every((w, i) => words[i]!.word === w) && c.name.length > (best?.name.length ?? 0)) best = c;
  }
  if (!best) return { rest: argv, words: words.map((w) => w.word) };
  const drop = new Set(words.slice(0, best.name.length).map((w) => w.index));
  return { command: best, rest: argv.filter((_, i) => !drop.has(i)), words: words.map((w) => w.word) };
}

function optionHelp(options: Record<string, OptionSpec>): string {
  return Object.entries(options)
    .map(([name, o]) => {
      const flag = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.arg ? ` ${o.arg}` : ''}`;
      return `  ${flag.padEnd(34)} ${o.description}`;
    })
    .join('\n');
}

function commandHelp(c: Command): string {
  return [
    `Usage: sluice ${c.name.join(' ')}${c.args ? ` ${c.args}` : ''} [options]`,
    '',
    c.summary,
    c.help ? `\n${c.help.trim()}\n` : '',
    'Options:',
    optionHelp({ ...(c.options ?? {}), ...GLOBAL_OPTIONS }),
    '',
  ].join('\n');
}

/** The text of `sluice --help`; the build stores it so bin/sluice.mjs prints it without loading the CLI. */
export function generalHelp(): string {
  const width = Math.max(...commands.map((c) => c.name.join(' ').length)) + 2;
  return [
    'Usage: sluice <command> [options]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.join(' ').padEnd(width)} ${c.summary}`),
    '',
    'Global options:',
    optionHelp(GLOBAL_OPTIONS),
    `  ${'-V, --version'.padEnd(34)} Print the version`,
    '',
    'Exit codes: 0 success; 2 success with errors (some rows or items failed and were reported);',
    '1 failure (job failed or cancelled, request refused, bad usage, service unreachable).',
    'Run "sluice <command> --help" for a command\'s options.',
    '',
  ].join('\n');
}

/** Socket errors that mean the service could not be reached, or went away mid-request. */
const NETWORK_ERROR_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH']);

/** Explains a failure in one or a few lines; never a stack trace for expected failures. */
function describe(err: unknown, url: string): string {
  if (err instanceof SluiceRequestError) {
    const lines = (err.response.errors ?? []).map((e) => `${String(e.extensions?.['code'] ?? 'ERROR')}: ${e.message}`);
    if (err.code === 'UNAUTHENTICATED') lines.push(`Run "sluice login --url ${url}" for a new token.`);
    return lines.join('\n') || err.message;
  }
  if (err instanceof TypeError && err.message === 'fetch failed') {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return `Cannot reach ${url}: ${cause?.code ?? cause?.message ?? 'connection failed'}`;
  }
  // File uploads go over node:http (src/cli/upload-stream.ts), whose errors are the socket's own.
  const code = err instanceof Error ? (err as NodeJS.ErrnoException).code : undefined;
  if (code && NETWORK_ERROR_CODES.has(code)) return `Cannot reach ${url}: ${code}`;
  if (err instanceof CliError || err instanceof UsageError || err instanceof EnvError) return err.message;
  if (err instanceof Error && (err as NodeJS.ErrnoException).code === 'ENOENT') return err.message;
  return err instanceof Error ? (err.stack ?? err.message) : String(err);
}

/** Runs the CLI with `argv` (without node and the script); resolves with the exit code. */
export async function main(argv: string[], io: CliIo = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin }): Promise<number> {
  let stderr: Terminal = terminalOf(io.stderr, false);
  let url = DEFAULT_URL;
  const clients: SluiceClient[] = [];
  try {
    const env = loadCliEnv(io.env);
    stderr = terminalOf(io.stderr, env.NO_COLOR !== undefined);
    const stdout = terminalOf(io.stdout, env.NO_COLOR !== undefined);
    const { command, rest, words } = findCommand(argv);
    if (!command && argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
      stdout.write(`${VERSION}\n`);
      return ExitCode.OK;
    }
    if (!command) {
      if (words.length && words[0] !== 'help') {
        stderr.write(`${paint(stderr, 'red', 'error:')} unknown command "${words.join(' ')}"\n\n${generalHelp()}`);
        return ExitCode.FAILURE;
      }
      stdout.write(generalHelp());
      return argv.length === 0 ? ExitCode.FAILURE : ExitCode.OK;
    }

    const specs = { ...(command.options ?? {}), ...GLOBAL_OPTIONS };
    let values: OptionValues;
    let positionals: string[];
    try {
      let parsed;
      ({ values: parsed, positionals } = parseArgs({
        args: rest,
        options: Object.fromEntries(
          Object.entries(specs).map(([k, o]) => [k, { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) }]),
        ),
        allowPositionals: true,
        strict: true,
      }));
      values = parsed as OptionValues;
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    if (values['help']) {
      stdout.write(commandHelp(command));
      return ExitCode.OK;
    }

    const config = new CliConfigStore(env.configFile);
    const saved = await config.load();
    url = normaliseUrl((values['url'] as string | undefined) ?? env.SLUICE_URL ?? saved.url ?? DEFAULT_URL);
    if (!/^https?:\/\//.test(url)) throw new UsageError(`--url must start with http:// or https://, got ${JSON.stringify(url)}`);
    const ctx: CliContext = {
      env,
      url,
      json: Boolean(values['json']),
      stdout,
      stderr,
      config,
      stdin: io.stdin,
      anonymous() {
        const c = new SluiceClient({ url });
        clients.push(c);
        return c;
      },
      client() {
        let token = env.SLUICE_TOKEN;
        if (!token) {
          const login = saved.servers[url];
          if (!login) throw new CliError(`Not logged in to ${url}. Run "sluice login --url ${url}" (or set SLUICE_TOKEN).`);
          if (Date.parse(login.expiresAt) <= Date.now()) {
            throw new CliError(`The token of ${login.clientId} for ${url} expired at ${login.expiresAt}. Run "sluice login --url ${url}".`);
          }
          token = login.accessToken;
        }
        const c = new SluiceClient({ url, token });
        clients.push(c);
        return c;
      },
    };
    return await command.run(ctx, positionals, values);
  } catch (err) {
    stderr.write(`${paint(stderr, 'red', 'error:')} ${describe(err, url)}\n`);
    if (err instanceof UsageError) {
      const { command } = findCommand(argv);
      stderr.write(command ? `Usage: sluice ${command.name.join(' ')}${command.args ? ` ${command.args}` : ''} [options]; see --help\n` : generalHelp());
    }
    return ExitCode.FAILURE;
  } finally {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
  }
}
