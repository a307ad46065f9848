import type { Logger } from '../shared/logger';

/** A timer that runs `fn` every `intervalMs` (never two at once); 0 turns it off. Returns its stop. */
export function every(intervalMs: number, fn: () => Promise<unknown>, log: Logger, name: string): () => Promise<void> {
  if (intervalMs <= 0) return async () => undefined;
  let running: Promise<unknown> | undefined;
  const timer = setInterval(() => {
    running ??= fn()
      .catch((err: unknown) => log.error({ err, task: name }, 'periodic task failed'))
      .finally(() => {
        running = undefined;
      });
  }, intervalMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}
