/**
 * systemd socket activation (sd_listen_fds(3)) in a dozen lines, without a native dependency.
 *
 * systemd passes listening sockets as descriptors from 3 on, with LISTEN_PID (the process they are meant for),
 * LISTEN_FDS (how many) and LISTEN_FDNAMES (their `FileDescriptorName=`s, colon-separated). The daemon looks for the
 * names `ingest` and `http`: the order of descriptors that come from two socket units is not defined, their names are.
 */
import { readFileSync, readlinkSync } from 'node:fs';
import { StartupError } from '../ingest/socket.ts';

/** SD_LISTEN_FDS_START: the first passed descriptor. */
export const LISTEN_FDS_START = 3;

export interface ListenFd {
  readonly fd: number;
  readonly name: string;
}

export interface SystemdSockets {
  /** The ingest socket's descriptor, or null to bind `--socket` as usual. */
  readonly ingest: number | null;
  /** The HTTP socket's descriptor, or null to bind `--host`/`--port` as usual. */
  readonly http: number | null;
  /** Passed descriptors with a name the daemon does not know (left alone). */
  readonly unknown: readonly ListenFd[];
}

const NO_SOCKETS: SystemdSockets = { ingest: null, http: null, unknown: [] };

/**
 * Reads the descriptors systemd passed to `pid`, and removes the three variables in every case (as
 * `sd_listen_fds(3)` does on request) so that no child process mistakes them for its own. Returns an empty list when the
 * variables are absent or meant for another process: the daemon then binds as usual.
 */
export function takeListenFds(env: NodeJS.ProcessEnv, pid: number): ListenFd[] {
  const { LISTEN_PID: forPid, LISTEN_FDS: count, LISTEN_FDNAMES: names } = env;
  delete env.LISTEN_PID;
  delete env.LISTEN_FDS;
  delete env.LISTEN_FDNAMES;
  if (forPid === undefined || !/^\d+$/.test(forPid) || Number(forPid) !== pid) return [];
  if (count === undefined || !/^\d+$/.test(count)) {
    throw new StartupError(`LISTEN_FDS is ${JSON.stringify(count ?? null)}, not a number of descriptors; check the socket units`);
  }
  const n = Number(count);
  // sd_listen_fds_with_names(3) calls descriptors without a name "unknown".
  const nameList = names === undefined ? Array.from({ length: n }, () => 'unknown') : names.split(':');
  if (nameList.length !== n) {
    throw new StartupError(`LISTEN_FDNAMES names ${nameList.length} descriptors but LISTEN_FDS is ${n}; check the socket units`);
  }
  return nameList.map((name, i) => ({ fd: LISTEN_FDS_START + i, name }));
}

/** Picks the descriptors named `ingest` and `http`; refuses descriptors it cannot tell apart. */
export function pickSockets(fds: readonly ListenFd[]): SystemdSockets {
  if (fds.length === 0) return NO_SOCKETS;
  const named = (name: string) => fds.filter((f) => f.name === name);
  const ingest = named('ingest');
  const http = named('http');
  if (ingest.length > 1 || http.length > 1) {
    throw new StartupError(
      `systemd passed several sockets named ${ingest.length > 1 ? 'ingest' : 'http'}: give the ingest socket unit ` +
        'FileDescriptorName=ingest and the HTTP socket unit FileDescriptorName=http, one ListenStream= each',
    );
  }
  if (ingest.length === 0 && http.length === 0) {
    throw new StartupError(
      `systemd passed ${fds.length} socket(s) named ${fds.map((f) => f.name).join(':')}, none named ingest or http: ` +
        'set FileDescriptorName=ingest on the ingest socket unit and FileDescriptorName=http on the HTTP one',
    );
  }
  return {
    ingest: ingest[0]?.fd ?? null,
    http: http[0]?.fd ?? null,
    unknown: fds.filter((f) => f.name !== 'ingest' && f.name !== 'http'),
  };
}

/**
 * The path a passed Unix socket is bound to, for the log line (Linux: the socket's inode looked up in
 * /proc/net/unix). Best effort: null when it cannot be told.
 */
export function unixSocketPath(fd: number): string | null {
  try {
    const inode = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`))?.[1];
    if (!inode) return null;
    // Columns: Num RefCount Protocol Flags Type St Inode Path
    for (const line of readFileSync('/proc/net/unix', 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[6] === inode && cols[7]) return cols.slice(7).join(' ');
    }
    return null;
  } catch {
    return null;
  }
}
