import { BadInputError } from './errors';

/** What an idempotency key may be: the same rule for every mutation that takes one. */
export const IDEMPOTENCY_KEY = /^[A-Za-z0-9_.:-]{1,128}$/;

export function checkIdempotencyKey(key: string | null | undefined): void {
  if (key != null && !IDEMPOTENCY_KEY.test(key)) {
    throw new BadInputError('idempotencyKey must be 1-128 characters of A-Z a-z 0-9 _ . : -', { field: 'idempotencyKey' });
  }
}
