import type { Database } from './db/client';
import type { Env } from './env';
import type { TokenConfig } from './shared/auth';
import type { Logger } from './shared/logger';
import { ClientsService } from './modules/clients/clients.service';
import { ClientsStore } from './modules/clients/clients.store';

/** Everything resolvers reach through the context. Built once per process. */
export interface Services {
  env: Env;
  database: Database;
  log: Logger;
  clients: ClientsService;
}

export function createServices(env: Env, database: Database, log: Logger, tokens: TokenConfig): Services {
  return {
    env,
    database,
    log,
    clients: new ClientsService(new ClientsStore(database.db), tokens, log),
  };
}
