import type { Env } from '../../env';
import { ErrorCode } from '../../shared/errors';
import { VERSION } from '../../version';

/** What the service says about itself (serviceInfo): the one setting resolvers may read. */
export class SystemService {
  constructor(private readonly role: Env['SLUICE_ROLE']) {}

  info(): { version: string; role: Env['SLUICE_ROLE']; errorCodes: ErrorCode[] } {
    return { version: VERSION, role: this.role, errorCodes: Object.values(ErrorCode) };
  }
}
