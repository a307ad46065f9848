/** What a client may do (the GraphQL enum is registered in src/modules/shared/role.enum.ts). */
export enum Role {
  ADMIN = 'ADMIN',
  INGESTOR = 'INGESTOR',
  VIEWER = 'VIEWER',
}

const rank: Record<Role, number> = { [Role.VIEWER]: 1, [Role.INGESTOR]: 2, [Role.ADMIN]: 3 };

export function isRole(value: string): value is Role {
  return value in rank;
}

/** True when any of `held` is at least as strong as `needed`. */
export function hasRole(held: readonly Role[], needed: Role): boolean {
  return held.some((r) => rank[r] >= rank[needed]);
}
