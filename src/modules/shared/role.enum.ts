import { registerEnumType } from 'type-graphql';
import { Role } from '../../shared/roles';

// Role as a GraphQL enum; every type with a Role field imports this file.
registerEnumType(Role, {
  name: 'Role',
  description: 'What a client may do. ADMIN includes INGESTOR, which includes VIEWER.',
  valuesConfig: {
    ADMIN: { description: 'Manage clients and specs; sees every job.' },
    INGESTOR: { description: 'Upload files and start imports.' },
    VIEWER: { description: 'Read specs, files, jobs and directory data.' },
  },
});
