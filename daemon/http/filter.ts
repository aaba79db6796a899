/** `?session=KEY` and `?channel=NAME`, each repeatable: one matching value of a parameter is enough; both parameters must match. */
import type { Context } from 'hono';
import { NO_FILTER, type SessionFilter } from '../state/snapshot.ts';

export function filterFromQuery(c: Context): SessionFilter {
  const sessions = c.req.queries('session');
  const channels = c.req.queries('channel');
  const nodes = c.req.queries('node');
  if (!sessions && !channels && !nodes) return NO_FILTER;
  return { sessions: sessions ? new Set(sessions) : null, channels: channels ? new Set(channels) : null, nodes: nodes ? new Set(nodes) : null };
}
