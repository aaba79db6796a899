/**
 * `npm run demo`: the daemon and a simulated agent (agent.ts), for the first five minutes with pocketpaw-status.
 *
 * The daemon is the real one, started as `npm start` starts it, on a socket of its own in a temporary directory (so a
 * daemon already running is left alone) and without the POCKETPAW_STATUS_* settings of this shell (so the demo is
 * always local and open). Ctrl+C stops the agent, then the daemon, and removes the directory.
 *
 *     npm run demo -- [--port N] [--pace X] [--mqtt]
 *
 * With --mqtt it also starts a mosquitto broker of its own (on a free loopback port, with a temporary config) and
 * has the daemon publish there (docs/mqtt.md), and prints the mosquitto_sub command that shows the topics.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startAgent, type RunningAgent } from './agent.ts';

const ROOT = resolve(fileURLToPath(import.meta.url), '../../..');
const DEFAULT_PORT = 8780;
const STOP_DEADLINE_MS = 5000;

const USAGE = `Usage: npm run demo -- [options]

Starts the pocketpaw-status daemon and a simulated agent whose sessions move through every state.

Options:
  --port N     HTTP port (default ${DEFAULT_PORT}; if it is taken, a free one is used and printed)
  --pace X     multiplies every wait: 2 is slower, 0.5 faster (default 1, or POCKETPAW_DEMO_PACE)
  --mqtt       also start a mosquitto broker and publish the status to it (needs: apt-get install mosquitto)
  --help, -h   show this help
`;

interface Options {
  readonly port: number;
  readonly pace: number;
  readonly mqtt: boolean;
}

function fail(message: string): never {
  process.stderr.write(`demo: ${message}\n\n${USAGE}`);
  process.exit(2);
}

function parseOptions(argv: string[]): Options | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { port: { type: 'string' }, pace: { type: 'string' }, mqtt: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    }));
  } catch (error) {
    fail(error instanceof Error ? error.message : String(error));
  }
  if (values.help) return 'help';
  const port = values.port === undefined ? DEFAULT_PORT : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`invalid --port ${JSON.stringify(values.port)}: expected a whole number from 0 to 65535`);
  const rawPace = values.pace ?? process.env.POCKETPAW_DEMO_PACE;
  const pace = rawPace === undefined ? 1 : Number(rawPace);
  if (!(pace > 0) || !Number.isFinite(pace)) fail(`invalid pace ${JSON.stringify(rawPace)}: expected a number greater than 0`);
  return { port, pace, mqtt: values.mqtt === true };
}

interface RunningDaemon {
  readonly proc: ChildProcess;
  readonly url: string;
  readonly exited: Promise<number | null>;
}

type StartResult = RunningDaemon | { readonly portTaken: true } | { readonly failed: string };

/** Starts `serve`; resolves with its URL once its "ready" log line appears, or with why it could not start. */
async function startServe(port: number, socket: string, logFile: string, extraArgs: readonly string[]): Promise<StartResult> {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('POCKETPAW_STATUS_')) env[name] = value;
  const proc = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'daemon/cli.ts'), 'serve', '--port', String(port), '--socket', socket, ...extraArgs], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const log = createWriteStream(logFile, { flags: 'a' });
  const exited = once(proc, 'exit').then(([code]) => code as number | null);
  const lines: string[] = [];
  let partial = '';
  return new Promise<StartResult>((done) => {
    let settled = false;
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (chunk: string) => {
      log.write(chunk);
      const parts = (partial + chunk).split('\n');
      partial = parts.pop()!;
      for (const line of parts) {
        lines.push(line);
        const url = readyUrl(line);
        if (url !== null && !settled) {
          settled = true;
          done({ proc, url, exited });
        }
      }
    });
    void exited.then((code) => {
      log.end();
      if (settled) return;
      settled = true;
      const text = lines.join('\n');
      if (/already in use/.test(text)) done({ portTaken: true });
      else done({ failed: `the daemon exited with ${code} before it was ready:\n${lines.map(describeLogLine).join('\n')}` });
    });
  });
}

function readyUrl(line: string): string | null {
  try {
    const log = JSON.parse(line) as { msg?: unknown; http?: unknown };
    return typeof log.msg === 'string' && log.msg.startsWith('ready') && typeof log.http === 'string' ? log.http : null;
  } catch {
    return null;
  }
}

function describeLogLine(line: string): string {
  try {
    const log = JSON.parse(line) as { msg?: unknown };
    return `  ${typeof log.msg === 'string' ? log.msg : line}`;
  } catch {
    return `  ${line}`;
  }
}

/** The demo's node id: its topics are pocketpaw-status/demo/... */
const MQTT_NODE_ID = 'demo';

function banner(url: string, socket: string, logFile: string, note: string, mqttPort: number | null): string {
  const mqttRows: [string, string][] =
    mqttPort === null
      ? []
      : [
          ['MQTT broker', `mqtt://127.0.0.1:${mqttPort}`],
          ['  watch the topics', `mosquitto_sub -h 127.0.0.1 -p ${mqttPort} -v -t 'pocketpaw-status/${MQTT_NODE_ID}/#'`],
          ['  Home Assistant discovery', `mosquitto_sub -h 127.0.0.1 -p ${mqttPort} -v -t 'homeassistant/#'`],
        ];
  const rows: [string, string][] = [
    ['Status page', `${url}/`],
    ['  with the transition log', `${url}/?transitions=1`],
    ['  compact, for a widget', `${url}/?compact=1`],
    ['In a terminal', `npx pocketpaw-status status --watch --url ${url}`],
    ['The snapshot', `curl ${url}/api/v1/agent/status`],
    ['Ingest socket', socket],
    ['Daemon log', logFile],
    ...mqttRows,
  ];
  return [
    '',
    'pocketpaw-status demo: the daemon, and a simulated agent with a few sessions on different channels.',
    ...(note ? [note] : []),
    '',
    ...rows.map(([name, value]) => `  ${name.padEnd(26)} ${value}`),
    '',
    'Press Ctrl+C to stop.',
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  if (options === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'pocketpaw-status-demo-'));
  const socket = join(dir, 'ingest.sock');
  const logFile = join(dir, 'daemon.log');
  const cleanUp = () => rmSync(dir, { recursive: true, force: true });

  let note = '';
  let broker: { port: number; stop(): Promise<void> } | null = null;
  if (options.mqtt) {
    const { findTool } = await import('../../test/helpers/tools.ts');
    if (findTool('mosquitto') === null && findTool('/usr/sbin/mosquitto') === null) {
      note = 'mosquitto is not installed (apt-get install mosquitto mosquitto-clients), so the demo runs without MQTT.';
    } else {
      // The tests' broker: a free loopback port, a temporary config, anonymous access, no persistence.
      const { startBroker } = await import('../../test/helpers/broker.ts');
      broker = await startBroker();
    }
  }
  const serveArgs = broker === null ? [] : ['--mqtt-url', `mqtt://127.0.0.1:${broker.port}`, '--mqtt-node-id', MQTT_NODE_ID];
  let started = await startServe(options.port, socket, logFile, serveArgs);
  if ('portTaken' in started && options.port !== 0) {
    started = await startServe(0, socket, logFile, serveArgs);
    if ('url' in started) note = [note, `Port ${options.port} is in use, so the demo took port ${new URL(started.url).port} instead.`].filter(Boolean).join('\n');
  }
  if (!('url' in started)) {
    cleanUp();
    await broker?.stop();
    process.stderr.write(`demo: ${'failed' in started ? started.failed : 'no free port'}\n`);
    process.exit(1);
  }
  const daemon = started;
  // Whatever ends this process, the daemon does not outlive it.
  process.on('exit', () => {
    if (daemon.proc.exitCode === null) daemon.proc.kill('SIGKILL');
  });

  const agent: RunningAgent = startAgent({ socket, pace: options.pace });
  process.stdout.write(banner(daemon.url, socket, logFile, note, broker?.port ?? null));

  let stopping = false;
  const stop = async (why: string) => {
    if (stopping) return;
    stopping = true;
    setTimeout(() => {
      process.stderr.write('demo: could not stop within 5 s; exiting anyway\n');
      process.exit(1);
    }, STOP_DEADLINE_MS).unref();
    process.stdout.write(`\n${why}: stopping the agent, then the daemon…\n`);
    await agent.stop();
    if (agent.emitter.rejected > 0) process.stderr.write(`demo: the daemon rejected ${agent.emitter.rejected} events; the last answer: ${agent.emitter.lastError}\n`);
    // SIGTERM, not SIGINT: after Ctrl+C the daemon may have had its SIGINT from the terminal already.
    if (daemon.proc.exitCode === null) daemon.proc.kill('SIGTERM');
    const code = await daemon.exited;
    // After the daemon: its `offline` goes out before the broker does.
    await broker?.stop();
    cleanUp();
    process.stdout.write(code === 0 ? 'Demo stopped.\n' : `Demo stopped; the daemon exited with ${code}.\n`);
    process.exit(code === 0 ? 0 : 1);
  };
  // `on`, not `once`: npm passes a Ctrl+C on, so a second SIGINT can follow the terminal's.
  process.on('SIGINT', () => void stop('Ctrl+C'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  void daemon.exited.then((code) => {
    if (stopping) return;
    process.stderr.write(`demo: the daemon stopped by itself (exit ${code}); its log: ${logFile}\n`);
    void agent.stop().finally(() => process.exit(1));
  });
}

await main();
