/**
 * DNS rebinding guard: a request must name this machine in its `Host` header.
 *
 * A web page on a name its owner controls can make that name resolve to 127.0.0.1 after it loaded ("rebinding"); its
 * scripts then read the daemon as same-origin, past CORS, whenever no API key is set. Such a request still carries the
 * page's name in `Host`. So a Host is answered only when it is an IP literal (nobody can rebind an address),
 * `localhost`, this machine's hostname (and `<hostname>.local`, its mDNS name), or a name given with
 * `--allowed-host`; anything else gets `421 Misdirected Request` with a JSON `detail` saying what to do.
 *
 * The port is ignored (a rebinding page can use any port), and so are letter case and a trailing dot.
 */
import type { MiddlewareHandler } from 'hono';
import { isIP } from 'node:net';
import { hostname as osHostname } from 'node:os';
import { jsonError } from './errors.ts';
import type { NodeEnv } from './stream.ts';

/** Decisions per raw Host value, so the common case is one Map lookup; bounded, since clients choose the values. */
const CACHE_LIMIT = 256;

/** One `--allowed-host` value: a DNS name (no scheme, port, path or wildcard), in lower case, without a final dot. */
export function parseAllowedHost(raw: string): string {
  const text = raw.trim().toLowerCase().replace(/\.$/, '');
  if (text.includes('*')) throw new Error(`${JSON.stringify(raw)}: wildcards are not allowed; list each name`);
  if (!/^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$/.test(text) || text.length > 253) {
    throw new Error(`${JSON.stringify(raw)} is not a host name; expected a name such as status.example.lan (no scheme, port or path)`);
  }
  return text;
}

/** A comma-separated list (the environment variable's form; also accepted in one flag). Blank items are skipped. */
export function parseAllowedHostList(raw: string): string[] {
  return [...new Set(raw.split(',').map((s) => s.trim()).filter((s) => s !== '').map(parseAllowedHost))];
}

/** The names this machine answers to besides IP literals and --allowed-host. */
export function machineNames(hostname = osHostname()): string[] {
  const names = new Set(['localhost']);
  const full = hostname.trim().toLowerCase().replace(/\.$/, '');
  if (full !== '') {
    const short = full.split('.')[0]!;
    for (const name of [full, short]) {
      names.add(name);
      names.add(`${name}.local`);
    }
  }
  return [...names];
}

/** The host part of a Host header value, lower case, without port or final dot; null when it cannot be one. */
export function hostOf(header: string): string | null {
  let host = header.trim().toLowerCase();
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    if (end < 0) return null;
    const rest = host.slice(end + 1);
    if (rest !== '' && !/^:\d*$/.test(rest)) return null;
    return host.slice(0, end + 1);
  }
  const colon = host.lastIndexOf(':');
  if (colon >= 0) {
    if (!/^\d*$/.test(host.slice(colon + 1))) return null;
    host = host.slice(0, colon);
  }
  return host.replace(/\.$/, '');
}

/** Whether a request with this Host header may be answered. */
export function hostAllowed(header: string | undefined, names: ReadonlySet<string>): boolean {
  // HTTP/1.0 without Host: no browser sends that, so no page can be behind it.
  if (header === undefined) return true;
  const host = hostOf(header);
  if (host === null) return false;
  if (host.startsWith('[')) return isIP(host.slice(1, -1)) === 6;
  return isIP(host) === 4 || names.has(host);
}

export function hostMiddleware(allowedHosts: readonly string[], hostname = osHostname()): MiddlewareHandler<NodeEnv> {
  const names = new Set([...machineNames(hostname), ...allowedHosts]);
  const decided = new Map<string, boolean>();
  // Not async (see malformed.ts): a request that passes costs a header read and a Map lookup.
  return (c, next) => {
    const header = c.env?.incoming?.headers.host ?? c.req.header('host');
    const key = header ?? '';
    let ok = decided.get(key);
    if (ok === undefined) {
      ok = hostAllowed(header, names);
      if (decided.size >= CACHE_LIMIT) decided.clear();
      decided.set(key, ok);
    }
    if (ok) return next();
    const shown = JSON.stringify((header ?? '').slice(0, 100));
    return Promise.resolve(
      jsonError(
        c,
        421,
        `Misdirected Request: this daemon does not answer to the name ${shown} (a page on a name that resolves here could read the status: DNS rebinding). Use an IP address, localhost or this machine's hostname, or start the daemon with --allowed-host NAME`,
      ),
    );
  };
}
