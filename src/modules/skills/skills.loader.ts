import DataLoader from 'dataloader';
import type { Context } from '../../server/context';
import type { SkillRecord } from './skills.service';

// One loader per operation (keyed by its context object): parents and children of every skill on
// a page are fetched in one query per tree level, and nothing is cached across requests.
const loaders = new WeakMap<Context, DataLoader<string, SkillRecord | null>>();

/** Skills by id, batched and cached for the current operation. */
export function skillLoader(ctx: Context): DataLoader<string, SkillRecord | null> {
  let l = loaders.get(ctx);
  if (!l) {
    l = new DataLoader<string, SkillRecord | null>(async (ids) => {
      const byId = new Map((await ctx.services.skills.byIds(ids)).map((s) => [s.id, s]));
      return ids.map((id) => byId.get(id) ?? null);
    });
    loaders.set(ctx, l);
  }
  return l;
}
