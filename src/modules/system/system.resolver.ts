import { setTimeout as sleep } from 'node:timers/promises';
import { Arg, Authorized, Ctx, Int, Query, Resolver, Root, Subscription } from 'type-graphql';
import type { Context } from '../../server/context';
import { BadInputError } from '../../shared/errors';
import { requireViewer } from '../../server/authorize';
import { Heartbeat, ServiceInfo } from './system.type';

async function* beats(intervalMs: number, count: number): AsyncGenerator<Heartbeat> {
  for (let seq = 1; seq <= count; seq++) {
    await sleep(intervalMs);
    yield { seq, at: new Date() };
  }
}

@Resolver()
export class SystemResolver {
  @Query(() => ServiceInfo, { description: 'Version, role and error codes of this service. Needs no token.' })
  serviceInfo(@Ctx() ctx: Context): ServiceInfo {
    return ctx.services.system.info();
  }

  @Authorized()
  @Subscription(() => Heartbeat, {
    description: 'Beats every intervalMs, count times, then completes: checks that a WebSocket connection and its token work.',
    subscribe: ({ args, context }) => {
      requireViewer(context as Context);
      const { intervalMs, count } = args as { intervalMs: number; count: number };
      if (intervalMs < 10 || intervalMs > 60_000) throw new BadInputError('intervalMs must be 10-60000', { field: 'intervalMs' });
      if (count < 1 || count > 1000) throw new BadInputError('count must be 1-1000', { field: 'count' });
      return beats(intervalMs, count);
    },
  })
  heartbeat(
    @Root() beat: Heartbeat,
    @Arg('intervalMs', () => Int, { defaultValue: 1000, description: 'Milliseconds between beats, 10-60000.' }) _intervalMs: number,
    @Arg('count', () => Int, { defaultValue: 10, description: 'Beats before completing, 1-1000.' }) _count: number,
  ): Heartbeat {
    return beat;
  }
}
