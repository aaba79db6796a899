/**
 * Safe defaults at start: the key is loaded (a broken key source stops the daemon), and a listener reachable from
 * other machines is never served without a key unless `--allow-open` says so on purpose.
 *
 * Both refusals are configuration errors (exit 2): nothing is wrong with the machine, a setting must change.
 */
import net from 'node:net';
import { ConfigError } from '../config.ts';
import { ApiKey, KeyError } from './key.ts';

const LOOPBACK = new net.BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/**
 * Loopback: 127.0.0.0/8, ::1 (IPv4-mapped forms included) and the name `localhost`. Any other name counts as
 * reachable from elsewhere: what it resolves to can change, and a wrong guess would expose the status.
 */
export function isLoopback(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost') return true;
  const family = net.isIP(h);
  if (family === 0) return false;
  return LOOPBACK.check(h, family === 4 ? 'ipv4' : 'ipv6');
}

export function openExposureMessage(where: string): string {
  return (
    `refusing to serve the status without an API key on ${where}, which other machines can reach. ` +
    'Set a key (--api-key-file PATH, POCKETPAW_STATUS_API_KEY_FILE, the systemd credential status-api-key, or ' +
    'POCKETPAW_STATUS_API_KEY), or listen on 127.0.0.1, or pass --allow-open (POCKETPAW_STATUS_ALLOW_OPEN=1) to serve it ' +
    'open on purpose'
  );
}

/** Throws ConfigError when `address` is not loopback, no key is set, and open exposure was not asked for. */
export function checkExposure(address: string, apiKey: ApiKey, allowOpen: boolean): void {
  if (apiKey.required || allowOpen || isLoopback(address)) return;
  throw new ConfigError(openExposureMessage(address));
}

/** Loads the key for `serve`; a source that exists but cannot be used is a configuration error. */
export function loadStartupKey(keyFile: string | null, env: NodeJS.ProcessEnv): { apiKey: ApiKey; warnings: readonly string[] } {
  try {
    return ApiKey.load(keyFile, env);
  } catch (error) {
    if (error instanceof KeyError) throw new ConfigError(error.message);
    throw error;
  }
}
