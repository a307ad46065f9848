import { IssueTokenDocument } from '../../sdk/client';
import { ExitCode, UsageError, type Command } from '../command';
import { ask, askHidden, readAll } from '../prompt';

export const login: Command = {
  name: ['login'],
  summary: 'Get a token with a client id and secret and cache it for later commands',
  options: {
    'client-id': { type: 'string', arg: '<id>', description: 'API client id (default: SLUICE_CLIENT_ID, else asked)' },
    'client-secret-stdin': { type: 'boolean', description: 'Read the secret from standard input (default: SLUICE_CLIENT_SECRET, else asked without echo)' },
  },
  help: `
The secret is never stored, and never taken as a flag (it would show in the process list and the
shell history). The token is cached, readable by you only, in SLUICE_CLI_CONFIG or
$XDG_CONFIG_HOME/sluice/config.json (~/.config/sluice/config.json), per server; the server becomes
the default for later commands. Log in again when it expires (1 hour by default).

Example:
  printf %s "$SECRET" | sluice login --url http://localhost:4000 --client-id team-a --client-secret-stdin`,
  async run(ctx, positionals, options) {
    if (positionals.length) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
    const interactive = Boolean(ctx.stdin.isTTY);
    const clientId =
      (options['client-id'] as string | undefined) ?? ctx.env.SLUICE_CLIENT_ID ?? (interactive ? await ask(ctx.stdin, 'Client id: ') : undefined);
    if (!clientId) throw new UsageError('a client id is needed: --client-id or SLUICE_CLIENT_ID');
    const secret = options['client-secret-stdin']
      ? (await readAll(ctx.stdin)).trim()
      : (ctx.env.SLUICE_CLIENT_SECRET ?? (interactive ? await askHidden(ctx.stdin, 'Client secret: ') : undefined));
    if (!secret) throw new UsageError('a client secret is needed: --client-secret-stdin, SLUICE_CLIENT_SECRET, or a terminal to ask on');

    const { issueToken } = await ctx.anonymous().request(IssueTokenDocument, { clientId, clientSecret: secret });
    const config = await ctx.config.load();
    config.url = ctx.url;
    config.servers[ctx.url] = { clientId, accessToken: issueToken.accessToken, expiresAt: issueToken.expiresAt, roles: issueToken.roles };
    await ctx.config.save(config);
    if (ctx.json) {
      ctx.stdout.write(
        `${JSON.stringify({ url: ctx.url, clientId, roles: issueToken.roles, expiresAt: issueToken.expiresAt, configFile: ctx.config.file })}\n`,
      );
    } else {
      ctx.stdout.write(`Logged in to ${ctx.url} as ${clientId} (${issueToken.roles.join(', ')}); the token is valid until ${issueToken.expiresAt}.\n`);
    }
    return ExitCode.OK;
  },
};
