/**
 * Logs: one JSON object per line on stderr (pino). Never an event payload beyond its type and session key, never an
 * API key: callers log reasons and counts, not lines.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string = process.env.POCKETPAW_STATUS_LOG_LEVEL ?? 'info'): Logger {
  // Synchronous writes: logs are rare (start, stop, producer summaries) and must not be lost on exit.
  return pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ fd: 2, sync: true }));
}
