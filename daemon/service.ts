/**
 * The life of a long-running command (`serve`, `fleet`): options, a start, and a stop.
 *
 * Signal handlers come before the start: the ready line can be read, and a SIGTERM sent, before the start returns;
 * without a handler that SIGTERM would kill the process outright (leaving a socket file behind). SIGINT/SIGTERM stop
 * it within a deadline; SIGHUP reloads the key (ignored while starting) instead of killing it, its default action.
 * A start that fails says why in one line: a setting to change (exit 2), something in the way (exit 1).
 */
import { ConfigError } from './config.ts';
import { StartupError, SocketInUseError } from './ingest/socket.ts';
import { createLogger, type Logger } from './log.ts';

/** How long SIGINT/SIGTERM may take before the process exits anyway. */
export const SHUTDOWN_DEADLINE_MS = 1500;

export interface Service {
  close(): Promise<void>;
  reload(): void;
}

export interface ServiceCommand<C extends { readonly host: string; readonly port: number }, S extends Service> {
  /** The command's name, as the user typed it: `serve`, `fleet`. */
  readonly name: string;
  parse(argv: readonly string[], env: NodeJS.ProcessEnv): C | 'help';
  help(): string;
  start(config: C, log: Logger): Promise<S>;
}

export async function runService<C extends { readonly host: string; readonly port: number }, S extends Service>(
  command: ServiceCommand<C, S>,
  argv: readonly string[],
): Promise<void> {
  const configError = (error: ConfigError): never => {
    process.stderr.write(`pocketpaw-status ${command.name}: ${error.message}\nRun 'pocketpaw-status ${command.name} --help' for the options.\n`);
    process.exit(2);
  };
  let config: C | 'help';
  try {
    config = command.parse(argv, process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return configError(error);
  }
  if (config === 'help') {
    process.stdout.write(command.help());
    return;
  }
  const log = createLogger();
  let running: S | null = null;
  let stopping = false;
  const shutDown = (service: S) =>
    service.close().then(
      () => {
        log.info('stopped');
        process.exit(0);
      },
      (error: unknown) => {
        log.error({ err: error }, 'error while shutting down');
        process.exit(0);
      },
    );
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    setTimeout(() => {
      log.warn('shutdown deadline passed; exiting anyway');
      process.exit(0);
    }, SHUTDOWN_DEADLINE_MS).unref();
    if (running) void shutDown(running);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  process.on('SIGHUP', () => running?.reload());
  try {
    running = await command.start(config, log);
  } catch (error) {
    // Found while starting (a key source that cannot be used, an open LAN listener): a setting must change.
    if (error instanceof ConfigError) return configError(error);
    // The socket, the port or the state folder is taken: the commonest first-day failure gets one plain line.
    if (error instanceof SocketInUseError || (error as NodeJS.ErrnoException | undefined)?.code === 'EADDRINUSE') {
      const message = error instanceof SocketInUseError ? error.message : describeStartError(error, config.host, config.port);
      process.stderr.write(`pocketpaw-status ${command.name}: cannot start: ${message}\n`);
      process.exit(1);
    }
    const message = error instanceof StartupError ? error.message : describeStartError(error, config.host, config.port);
    log.fatal({ err: error instanceof StartupError ? undefined : error }, `cannot start: ${message}`);
    process.exit(1);
  }
  // A signal that came while starting: stop now that there is something to stop.
  if (stopping) void shutDown(running);
}

function describeStartError(error: unknown, host: string, port: number): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'EADDRINUSE') return `port ${port} on ${host} is already in use (another daemon, or a service); stop it, or pass --port N (0 picks a free one)`;
  if (code === 'EADDRNOTAVAIL') return `${host} is not an address of this machine; check --host`;
  if (code === 'EACCES') return `permission denied (${(error as Error).message}); check --socket and --port`;
  return error instanceof Error ? error.message : String(error);
}
