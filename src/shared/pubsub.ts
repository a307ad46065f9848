import type { Sql } from '../db/client';
import type { Logger } from './logger';

/**
 * Cross-instance notifications over PostgreSQL LISTEN/NOTIFY, one listening connection per process,
 * fanned out in memory. Notifications are hints: listeners re-read the tables, which are the truth.
 * After a reconnect, listeners get `null` so they can catch up on anything missed while offline.
 */
export class NotificationBus<T> {
  private readonly listeners = new Set<(message: T | null) => void>();
  private unlisten?: () => Promise<void>;

  private constructor(private readonly log: Logger) {}

  static async start<T>(sql: Sql, channel: string, log: Logger): Promise<NotificationBus<T>> {
    const bus = new NotificationBus<T>(log);
    let first = true;
    const { unlisten } = await sql.listen(
      channel,
      (payload) => {
        let message: T;
        try {
          message = JSON.parse(payload) as T;
        } catch (err) {
          log.warn({ err, channel }, 'ignoring malformed notification');
          return;
        }
        bus.emit(message);
      },
      () => {
        // Called on every (re)connect of the listening connection.
        if (!first) bus.emit(null);
        first = false;
      },
    );
    bus.unlisten = unlisten;
    return bus;
  }

  on(listener: (message: T | null) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(message: T | null): void {
    for (const l of this.listeners) {
      try {
        l(message);
      } catch (err) {
        this.log.error({ err }, 'notification listener failed');
      }
    }
  }

  async dispose(): Promise<void> {
    this.listeners.clear();
    await this.unlisten?.().catch(() => undefined);
  }
}
