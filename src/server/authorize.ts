import type { AuthChecker } from 'type-graphql';
import type { Context } from './context';
import type { Viewer } from '../shared/auth';
import { ForbiddenError, UnauthenticatedError } from '../shared/errors';
import { hasRole, type Role } from '../shared/roles';

export function requireViewer(ctx: Context, role?: Role): Viewer {
  if (!ctx.viewer) throw ctx.authError ?? new UnauthenticatedError();
  if (role && !hasRole(ctx.viewer.roles, role)) {
    throw new ForbiddenError(`This operation needs the ${role} role; the token has ${ctx.viewer.roles.join(', ') || 'none'}`);
  }
  return ctx.viewer;
}

/** type-graphql's @Authorized(role?) hook: throws instead of returning false so the code is precise. */
export const authChecker: AuthChecker<Context, Role> = ({ context }, roles) => {
  if (roles.length === 0) {
    requireViewer(context);
    return true;
  }
  const viewer = requireViewer(context);
  if (!roles.some((r) => hasRole(viewer.roles, r))) requireViewer(context, roles[0]);
  return true;
};
