/**
 * A real MQTT broker for tests: Debian's mosquitto on a free loopback port with a temporary config.
 *
 * Without mosquitto installed, `MOSQUITTO_SKIP` is the reason to skip (`apt-get install mosquitto`); under CI=true
 * importing this file fails instead (see tools.ts).
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { tempDir } from './daemon.ts';
import { findTool, skipWithout } from './tools.ts';

export const MOSQUITTO_SKIP = skipWithout(findTool('mosquitto') ?? '/usr/sbin/mosquitto', 'mosquitto');

export interface BrokerOptions {
  /** Require this user and password (anonymous clients are refused). */
  user?: { name: string; password: string };
  /** Keep retained messages across restart() (mosquitto persistence); off by default, as a fresh broker would be. */
  persistence?: boolean;
}

export interface TestBroker {
  /** mqtt://127.0.0.1:PORT */
  readonly url: string;
  readonly port: number;
  /** The broker's log lines so far. */
  readonly log: string[];
  /** Stops the broker (SIGTERM) and waits for it to exit. */
  stop(): Promise<void>;
  /** Stops and starts it again on the same port and config. */
  restart(): Promise<void>;
}

export async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export async function startBroker(options: BrokerOptions = {}): Promise<TestBroker> {
  const binary = findTool('mosquitto') ?? '/usr/sbin/mosquitto';
  const dir = tempDir();
  const port = await freePort();
  const lines = [`listener ${port} 127.0.0.1`, 'log_dest stderr', 'log_type error', 'log_type warning', 'log_type notice'];
  // As root mosquitto would drop to the user "mosquitto", which cannot read the test's private folder.
  if (process.getuid?.() === 0) lines.push('user root');
  if (options.user) {
    const passwords = join(dir, 'passwords');
    writeFileSync(passwords, '');
    execFileSync(findTool('mosquitto_passwd') ?? '/usr/bin/mosquitto_passwd', ['-b', passwords, options.user.name, options.user.password]);
    lines.push('allow_anonymous false', `password_file ${passwords}`);
  } else {
    lines.push('allow_anonymous true');
  }
  if (options.persistence) lines.push('persistence true', `persistence_location ${dir}/`);
  else lines.push('persistence false');
  const config = join(dir, 'mosquitto.conf');
  writeFileSync(config, lines.join('\n') + '\n');

  const log: string[] = [];
  let proc: ChildProcess | null = null;
  const launch = async () => {
    const child = spawn(binary, ['-c', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => log.push(...chunk.split('\n').filter(Boolean)));
    proc = child;
    await waitForPort(port, child, log);
  };
  const stop = async () => {
    const child = proc;
    proc = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    await once(child, 'exit');
  };
  await launch();
  process.once('exit', () => proc?.kill('SIGKILL'));
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    log,
    stop,
    restart: async () => {
      await stop();
      await launch();
    },
  };
}

async function waitForPort(port: number, child: ChildProcess, log: string[]): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`mosquitto exited with ${child.exitCode}: ${log.join('\n')}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`mosquitto did not listen on ${port} within 10 s: ${log.join('\n')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
