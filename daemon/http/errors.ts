/** JSON error bodies in PocketPaw's (FastAPI's) shape: `{"detail": "..."}`. */
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';

export function jsonError(c: Context, status: ContentfulStatusCode, detail: string, headers: Record<string, string> = {}): Response {
  return c.json({ detail }, status, headers);
}
