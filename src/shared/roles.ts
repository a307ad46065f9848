import { registerEnumType } from 'type-graphql';

export enum Role {
  ADMIN = 'ADMIN',
  INGESTOR = 'INGESTOR',
  VIEWER = 'VIEWER',
}

registerEnumType(Role, {
  name: 'Role',
  description: 'What a client may do. ADMIN includes INGESTOR, which includes VIEWER.',
  valuesConfig: {
    ADMIN: { description: 'Manage clients and specs; sees every job.' },
    INGESTOR: { description: 'Upload files and start imports.' },
    VIEWER: { description: 'Read specs, files, jobs and directory data.' },
  },
});

const rank: Record<Role, number> = { [Role.VIEWER]: 1, [Role.INGESTOR]: 2, [Role.ADMIN]: 3 };

export function isRole(value: string): value is Role {
  return value in rank;
}

/** True when any of `held` is at least as strong as `needed`. */
export function hasRole(held: readonly Role[], needed: Role): boolean {
  return held.some((r) => rank[r] >= rank[needed]);
}
