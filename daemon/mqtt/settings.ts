/**
 * The MQTT settings' parsers and the broker password's sources. Plain Node only: config.ts loads this at every start,
 * while the MQTT library (daemon/mqtt/output.ts and what it imports) is loaded only when `--mqtt-url` is set.
 */
import { readFileSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

/** The systemd credential read when no `--mqtt-password-file` is given (LoadCredential=mqtt-password:...). */
export const PASSWORD_CREDENTIAL = 'mqtt-password';
/** A password file larger than this is almost certainly the wrong file. */
const MAX_PASSWORD_FILE_BYTES = 4096;
/** A CA bundle larger than this is not a CA bundle (the system's whole store is about 200 KB). */
const MAX_CA_FILE_BYTES = 1024 * 1024;

export function parseMqttUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new Error('expected a URL such as mqtt://localhost:1883 or mqtts://broker.example:8883');
  }
  if (url.protocol !== 'mqtt:' && url.protocol !== 'mqtts:') {
    throw new Error(`expected mqtt:// or mqtts://, not ${url.protocol}//`);
  }
  if (url.hostname === '') throw new Error('expected a host, as in mqtt://localhost:1883');
  // A password in the URL would show in `ps`, the unit file and the logs.
  if (url.username !== '' || url.password !== '') {
    throw new Error('put no user name or password in the URL: use --mqtt-username and --mqtt-password-file (or the systemd credential mqtt-password)');
  }
  if ((url.pathname !== '' && url.pathname !== '/') || url.search !== '' || url.hash !== '') {
    throw new Error('expected only scheme, host and port, as in mqtt://localhost:1883');
  }
  return url;
}

/** The URL as an error may quote it: a password in it (refused by parseMqttUrl) shows as `***`. */
export function redactUrlPassword(raw: string): string {
  return raw.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*:)[^@/]*@/i, '$1***@');
}

/** Node ids name topics and Home Assistant ids: letters, digits, `_` and `-` are safe in both. */
export function parseNodeId(raw: string): string {
  const id = raw.trim();
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) throw new Error('expected 1 to 64 letters, digits, _ or -');
  return id;
}

/** The hostname, lower-cased, each run of other characters (dots, spaces) made one `-`. */
export function defaultNodeId(host: string = hostname()): string {
  const id = host
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 64);
  return id === '' ? 'pocketpaw' : id;
}

/** A topic prefix: no wildcards (a publish topic cannot have them), no empty levels at the ends, not a `$` topic. */
export function parseTopicPrefix(raw: string): string {
  const topic = raw.trim();
  if (topic === '') throw new Error('expected a topic such as pocketpaw-status/laptop');
  if (/[+#\u0000]/.test(topic)) throw new Error('a topic prefix cannot contain +, # or NUL');
  if (topic.startsWith('/') || topic.endsWith('/')) throw new Error('a topic prefix neither starts nor ends with /');
  if (topic.startsWith('$')) throw new Error('topics starting with $ are the broker\'s own');
  if (Buffer.byteLength(topic) > 1024) throw new Error('expected a topic prefix of at most 1024 bytes');
  return topic;
}

function readSmallFile(path: string, max: number, what: string): Buffer {
  try {
    if (statSync(path).size > max) throw new Error(`${what} is larger than ${max} bytes; check the path`);
    return readFileSync(path);
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    if (e.code === undefined) throw error;
    throw new Error(`cannot read ${what} (${e.code}); check that it exists and that the daemon's user may read it`);
  }
}

export function checkCaFile(path: string): string {
  if (path.trim() === '') throw new Error('expected the path of a PEM file');
  const pem = readSmallFile(path, MAX_CA_FILE_BYTES, 'the file').toString('utf8');
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error('the file holds no PEM certificate (-----BEGIN CERTIFICATE-----)');
  return path;
}

/** Reads a password file: its contents without trailing newlines. Throws saying why it cannot be used. */
export function readPasswordFile(path: string, what = `password file ${path}`): string {
  const password = readSmallFile(path, MAX_PASSWORD_FILE_BYTES, what).toString('utf8').replace(/[\r\n]+$/, '');
  if (password === '') throw new Error(`${what} is empty; put the broker password in it`);
  return password;
}

export function checkPasswordFile(path: string): string {
  if (path.trim() === '') throw new Error('expected the path of a file holding the password');
  readPasswordFile(path, 'the file');
  return path;
}

/**
 * The broker password for `serve`, or null: from the file, else the systemd credential. Throws saying what to do
 * when a source cannot be read, or when there is a password but no user name to send it with.
 */
export function loadMqttPassword(passwordFile: string | null, username: string | null, env: NodeJS.ProcessEnv): string | null {
  const { password, source } = loadPassword(passwordFile, env);
  if (password !== null && username === null) {
    throw new Error(`found a broker password (${source}) but no --mqtt-username; set the user name the password belongs to`);
  }
  return password;
}

export interface PasswordSource {
  readonly password: string | null;
  /** Where it came from, for the log (never the password). */
  readonly source: string;
}

/**
 * The password, first found wins: the file, then the systemd credential. A source that exists but cannot be read
 * throws: it never falls through to "no password", which the broker would refuse with a less helpful message.
 */
export function loadPassword(passwordFile: string | null, env: NodeJS.ProcessEnv): PasswordSource {
  if (passwordFile !== null) return { password: readPasswordFile(passwordFile), source: `password file ${passwordFile}` };
  if (env.CREDENTIALS_DIRECTORY) {
    const path = join(env.CREDENTIALS_DIRECTORY, PASSWORD_CREDENTIAL);
    let present = true;
    try {
      statSync(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`cannot read the systemd credential ${path} (${(error as NodeJS.ErrnoException).code})`);
      present = false;
    }
    if (present) return { password: readPasswordFile(path, `the systemd credential ${path}`), source: `systemd credential ${path}` };
  }
  return { password: null, source: 'none' };
}
