import { registerEnumType } from 'type-graphql';
import { JOB_ERROR_CODES, JobErrorCode } from '../../jobs/errors';
import { valuesConfig } from '../../shared/codes';
import { JobState } from '../../jobs/state';

// The engine's enums (src/jobs/) as GraphQL enums. Registered here, not beside the enums, so that
// the engine loads without type-graphql; every type that uses them imports this file.

registerEnumType(JobState, {
  name: 'JobState',
  description:
    'QUEUED -> RUNNING -> SUCCEEDED | SUCCEEDED_WITH_ERRORS | FAILED | CANCELLED. RUNNING returns to QUEUED when its worker is lost or stops; FAILED returns to QUEUED on retryJob.',
  valuesConfig: {
    QUEUED: { description: 'Waiting for a worker.' },
    RUNNING: { description: 'A worker is processing it.' },
    SUCCEEDED: { description: 'Finished; every row or item succeeded.' },
    SUCCEEDED_WITH_ERRORS: { description: 'Finished; some rows or items failed and were reported.' },
    FAILED: { description: 'Finished without a usable result; see error.' },
    CANCELLED: { description: 'Stopped on request; nothing it wrote stays visible.' },
  },
});

registerEnumType(JobErrorCode, { name: 'JobErrorCode', description: 'Why a job failed.', valuesConfig: valuesConfig(JOB_ERROR_CODES) });
