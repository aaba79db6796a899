/**
 * The status API key: where it comes from, how a presented key is checked, and how SIGHUP replaces it.
 *
 * Sources, first found wins: the key file (`--api-key-file` / `POCKETPAW_STATUS_API_KEY_FILE`), the systemd credential
 * `$CREDENTIALS_DIRECTORY/status-api-key`, the variable `POCKETPAW_STATUS_API_KEY`. No key means open access, as
 * upstream. Unlike upstream (pocketpaw-behaviour.md §14, defect 13) the key is loaded at start and on reload, never
 * cached at first use, and compared in constant time.
 *
 * Only a SHA-256 digest of the key is kept: comparing digests of equal length with `timingSafeEqual` leaks neither the
 * key's bytes nor its length, and no code path can log the key because no code path holds it after loading.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log.ts';

export const KEY_ENV = 'POCKETPAW_STATUS_API_KEY';
export const CREDENTIAL_NAME = 'status-api-key';
/** A key file larger than this is almost certainly the wrong file (a path typo pointing at a log, say). */
const MAX_KEY_FILE_BYTES = 4096;
/** Below this many characters a key is guessable over the network: warn (the rate limit does not protect it, see rate-limit.ts). */
export const SHORT_KEY_CHARS = 16;
const KEY_ADVICE = 'use a random key such as the output of `openssl rand -hex 32`';

/** Says what is wrong with a key source and what to do; never contains the key. */
export class KeyError extends Error {}

export type KeySource =
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 'credential'; readonly path: string }
  | { readonly kind: 'env' }
  | { readonly kind: 'none' };

export function describeSource(source: KeySource): string {
  switch (source.kind) {
    case 'file':
      return `key file ${source.path}`;
    case 'credential':
      return `systemd credential ${source.path}`;
    case 'env':
      return KEY_ENV;
    case 'none':
      return 'none';
  }
}

/** Keys travel in a header, a query string or a Bearer token: only visible ASCII survives all three unchanged. */
function validateKey(key: string, where: string): void {
  if (key === '') throw new KeyError(`${where} is empty; put the key in it (${KEY_ADVICE})`);
  if (!/^[\x21-\x7e]+$/.test(key)) {
    throw new KeyError(`${where} holds spaces or characters other than visible ASCII, which cannot be presented in a header; ${KEY_ADVICE}`);
  }
}

/** Reads a key file: its contents without trailing newlines. Throws KeyError saying why it cannot be used. */
export function readKeyFile(path: string, what = `key file ${path}`): string {
  let bytes: Buffer;
  try {
    if (statSync(path).size > MAX_KEY_FILE_BYTES) {
      throw new KeyError(`${what} is larger than ${MAX_KEY_FILE_BYTES} bytes, so it is not a key file; check the path`);
    }
    bytes = readFileSync(path);
  } catch (error) {
    if (error instanceof KeyError) throw error;
    const e = error as NodeJS.ErrnoException;
    throw new KeyError(`cannot read ${what} (${e.code ?? e.message}); check that it exists and that the daemon's user may read it`);
  }
  const key = bytes.toString('utf8').replace(/[\r\n]+$/, '');
  validateKey(key, what);
  return key;
}

/** For the configuration: fails at start, naming the flag, when the file cannot be used. Returns the path. */
export function checkKeyFile(path: string): string {
  if (path.trim() === '') throw new KeyError('expected the path of a file holding the key');
  readKeyFile(path, 'the file');
  return path;
}

export interface LoadedKey {
  /** SHA-256 of the key, or null for open access. */
  readonly digest: Buffer | null;
  readonly source: KeySource;
  /** Things worth a warning (never the key). */
  readonly warnings: readonly string[];
}

function worldReadable(path: string): boolean {
  try {
    return (statSync(path).mode & 0o004) !== 0;
  } catch {
    return false;
  }
}

function digestOf(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

function loaded(key: string, source: KeySource, warnings: string[]): LoadedKey {
  if (key.length < SHORT_KEY_CHARS) {
    warnings.push(`the API key from ${describeSource(source)} is shorter than ${SHORT_KEY_CHARS} characters and can be guessed; ${KEY_ADVICE}`);
  }
  return { digest: digestOf(key), source, warnings };
}

/**
 * Finds the key, first found wins. A source that exists but cannot be used throws KeyError: it never falls through to
 * the next source, so a broken key file cannot silently open the API or switch to a different key.
 */
export function loadKey(keyFile: string | null, env: NodeJS.ProcessEnv): LoadedKey {
  const warnings: string[] = [];
  if (keyFile !== null) {
    const key = readKeyFile(keyFile);
    if (worldReadable(keyFile)) warnings.push(`key file ${keyFile} is readable by every local user; chmod 600 (or 640 with a group) it`);
    return loaded(key, { kind: 'file', path: keyFile }, warnings);
  }
  if (env.CREDENTIALS_DIRECTORY) {
    const path = join(env.CREDENTIALS_DIRECTORY, CREDENTIAL_NAME);
    let present = true;
    try {
      statSync(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new KeyError(`cannot read the systemd credential ${path} (${(error as NodeJS.ErrnoException).code})`);
      present = false;
    }
    if (present) return loaded(readKeyFile(path, `the systemd credential ${path}`), { kind: 'credential', path }, warnings);
  }
  const fromEnv = env[KEY_ENV];
  if (fromEnv !== undefined && fromEnv !== '') {
    validateKey(fromEnv, KEY_ENV);
    return loaded(fromEnv, { kind: 'env' }, warnings);
  }
  // Empty means open access, as upstream; but an empty variable is often a template whose value went missing.
  if (fromEnv === '') warnings.push(`${KEY_ENV} is set but empty: no API key, the status is open to whoever can reach the port`);
  return { digest: null, source: { kind: 'none' }, warnings };
}

/** The key as presented by a request, in upstream's order. Undefined means "not presented". */
export interface Presented {
  /** The `key` query parameter. */
  readonly query?: string | undefined;
  /** The `X-Status-Key` header. */
  readonly header?: string | undefined;
  /** The `Authorization` header. */
  readonly authorization?: string | undefined;
}

/**
 * `?key=`, then `X-Status-Key`, then `Authorization: Bearer`: the first one present decides. An empty value counts as
 * absent (upstream's `query or header`: `?key=` plus a good header passes, `?key=bad` plus a good header does not).
 */
export function presentedKey(p: Presented): string | null {
  if (p.query) return p.query;
  if (p.header) return p.header;
  const bearer = /^Bearer[ \t]+(.+)$/i.exec(p.authorization?.trim() ?? '');
  return bearer ? bearer[1]!.trim() : null;
}

export type CheckResult = 'open' | 'ok' | 'missing' | 'wrong';

/** Constant time in the presented key's contents and length: both sides are 32-byte digests. */
export function checkDigest(expected: Buffer | null, p: Presented): CheckResult {
  if (expected === null) return 'open';
  const key = presentedKey(p);
  if (key === null) return 'missing';
  return timingSafeEqual(digestOf(key), expected) ? 'ok' : 'wrong';
}

/** The key in force; SIGHUP replaces it through `reload`. */
export class ApiKey {
  private digest: Buffer | null;
  private current: KeySource;

  private constructor(
    private readonly keyFile: string | null,
    private readonly env: NodeJS.ProcessEnv,
    first: LoadedKey,
  ) {
    this.digest = first.digest;
    this.current = first.source;
  }

  /** Loads the key at start; throws KeyError when a source exists but cannot be used. */
  static load(keyFile: string | null, env: NodeJS.ProcessEnv): { apiKey: ApiKey; warnings: readonly string[] } {
    const first = loadKey(keyFile, env);
    return { apiKey: new ApiKey(keyFile, env, first), warnings: first.warnings };
  }

  /** A fixed key (tests, and upstream's scenarios): null or '' means open access. */
  static fixed(key: string | null): ApiKey {
    const source: KeySource = key ? { kind: 'env' } : { kind: 'none' };
    return new ApiKey(null, {}, { digest: key ? digestOf(key) : null, source, warnings: [] });
  }

  get required(): boolean {
    return this.digest !== null;
  }

  get source(): KeySource {
    return this.current;
  }

  check(p: Presented): CheckResult {
    return checkDigest(this.digest, p);
  }

  /**
   * Re-reads the sources. A key that cannot be read keeps the old one; so does finding no key at all where there was
   * one (only a restart opens the API: a vanished credential must not expose a LAN listener). Logs what happened,
   * never the key. Requests already admitted, SSE streams included, are not touched.
   */
  reload(log: Logger): boolean {
    let next: LoadedKey;
    try {
      next = loadKey(this.keyFile, this.env);
    } catch (error) {
      const why = error instanceof KeyError ? error.message : String(error);
      log.error({ keySource: describeSource(this.current) }, `API key not reloaded, the previous key stays in force: ${why}`);
      return false;
    }
    if (next.digest === null && this.digest !== null) {
      log.error({ keySource: describeSource(this.current) }, 'API key not reloaded: no key source was found now; the previous key stays in force (restart the daemon to serve without a key)');
      return false;
    }
    for (const warning of next.warnings) log.warn(warning);
    const changed = !(next.digest === null ? this.digest === null : this.digest !== null && timingSafeEqual(next.digest, this.digest));
    this.digest = next.digest;
    this.current = next.source;
    log.info({ keySource: describeSource(next.source), changed }, changed ? 'API key reloaded: a new key is in force for new requests' : 'API key reloaded: unchanged');
    return true;
  }
}
