/**
 * Liveness and readiness, Kubernetes style: machines read only the status code; `?verbose` lists the checks.
 *
 * Both are open (no API key) and say nothing about sessions: only that the process answers (`/livez`) and that it
 * takes events and is not shutting down (`/readyz`).
 */
import type { Context, Env, Hono } from 'hono';

export const LIVEZ_PATH = '/livez';
export const READYZ_PATH = '/readyz';

export interface Check {
  readonly name: string;
  readonly ok: boolean;
}

/** Whether the daemon takes events: the ingest socket is bound, and shutdown has not begun. */
export class Readiness {
  private ingestBound = false;
  private draining = false;
  private readonly optional: { readonly name: string; readonly ok: () => boolean }[] = [];

  /**
   * A dependency `/readyz?verbose` reports without readiness depending on it (the MQTT broker: the daemon serves
   * HTTP, SSE and ingest whether or not the broker is there, so a load balancer must not drop it for that).
   */
  addOptional(name: string, ok: () => boolean): void {
    this.optional.push({ name, ok });
  }

  optionalChecks(): Check[] {
    return this.optional.map((o) => ({ name: o.name, ok: o.ok() }));
  }

  markIngestBound(): void {
    this.ingestBound = true;
  }

  /** Shutdown began: readiness fails from now on, before anything is closed. */
  startDraining(): void {
    this.draining = true;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  get ready(): boolean {
    return this.ingestBound && !this.draining;
  }

  checks(): Check[] {
    return [
      { name: 'ingest', ok: this.ingestBound },
      { name: 'shutdown', ok: !this.draining },
    ];
  }
}

const TEXT_HEADERS = { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' } as const;

function verbose(c: Context): boolean {
  return c.req.query('verbose') !== undefined;
}

function report(endpoint: string, checks: readonly Check[], optional: readonly Check[] = []): string {
  const passed = checks.every((check) => check.ok);
  const lines = checks.map((check) => (check.ok ? `[+]${check.name} ok` : `[-]${check.name} failed`));
  for (const check of optional) lines.push(check.ok ? `[+]${check.name} ok` : `[-]${check.name} not connected (optional: readiness does not depend on it)`);
  return `${lines.join('\n')}\n${endpoint} check ${passed ? 'passed' : 'failed'}\n`;
}

export function registerHealthRoutes<E extends Env>(app: Hono<E>, readiness: Readiness): void {
  app.get(LIVEZ_PATH, (c) => c.body(verbose(c) ? report('livez', [{ name: 'ping', ok: true }]) : 'ok\n', 200, TEXT_HEADERS));
  app.get(READYZ_PATH, (c) => {
    const checks = readiness.checks();
    const ready = checks.every((check) => check.ok);
    // A failure always names the failed check: the names are harmless, and an operator needs them.
    const body = ready && !verbose(c) ? 'ok\n' : report('readyz', checks, readiness.optionalChecks());
    return c.body(body, ready ? 200 : 503, TEXT_HEADERS);
  });
}
