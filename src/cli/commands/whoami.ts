import { MeDocument } from '../../sdk/client';
import { ExitCode, type Command } from '../command';

export const whoami: Command = {
  name: ['whoami'],
  summary: 'Show the client and roles of the current token',
  async run(ctx) {
    const { me } = await ctx.client().request(MeDocument);
    if (ctx.json) ctx.stdout.write(`${JSON.stringify({ url: ctx.url, ...me })}\n`);
    else ctx.stdout.write(`${me.clientId} at ${ctx.url}: ${me.roles.join(', ')}; the token expires ${me.tokenExpiresAt}\n`);
    return ExitCode.OK;
  },
};
