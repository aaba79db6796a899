/**
 * The `pocketpaw-status` command: `serve` runs the daemon.
 */
import { ConfigError, parseServeConfig, serveHelp } from './config.ts';
import { StartupError } from './ingest/socket.ts';
import { createLogger } from './log.ts';
import { startDaemon } from './serve.ts';

const USAGE = `Usage: pocketpaw-status <command> [options]

Commands:
  serve     run the daemon (see: pocketpaw-status serve --help)

Run a command with --help for its options.
`;

/** How long SIGINT/SIGTERM may take before the process exits anyway. */
const SHUTDOWN_DEADLINE_MS = 1500;

async function serve(argv: string[]): Promise<void> {
  let config;
  try {
    config = parseServeConfig(argv, process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`pocketpaw-status serve: ${error.message}\nRun 'pocketpaw-status serve --help' for the options.\n`);
    process.exit(2);
  }
  if (config === 'help') {
    process.stdout.write(serveHelp());
    return;
  }
  const log = createLogger();
  let daemon;
  try {
    daemon = await startDaemon(config, log);
  } catch (error) {
    const message = error instanceof StartupError ? error.message : describeStartError(error, config.host, config.port);
    log.fatal({ err: error instanceof StartupError ? undefined : error }, `cannot start: ${message}`);
    process.exit(1);
  }
  const stop = (signal: NodeJS.Signals) => {
    log.info({ signal }, 'shutting down');
    setTimeout(() => {
      log.warn('shutdown deadline passed; exiting anyway');
      process.exit(0);
    }, SHUTDOWN_DEADLINE_MS).unref();
    daemon.close().then(
      () => {
        log.info('stopped');
        process.exit(0);
      },
      (error: unknown) => {
        log.error({ err: error }, 'error while shutting down');
        process.exit(0);
      },
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

function describeStartError(error: unknown, host: string, port: number): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'EADDRINUSE') return `port ${port} on ${host} is already in use; choose another --port (0 picks a free one)`;
  if (code === 'EADDRNOTAVAIL') return `${host} is not an address of this machine; check --host`;
  if (code === 'EACCES') return `permission denied (${(error as Error).message}); check --socket and --port`;
  return error instanceof Error ? error.message : String(error);
}

const [command, ...rest] = process.argv.slice(2);
switch (command) {
  case 'serve':
    await serve(rest);
    break;
  case undefined:
  case '--help':
  case '-h':
  case 'help':
    process.stdout.write(USAGE);
    break;
  default:
    process.stderr.write(`pocketpaw-status: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
    process.exit(2);
}
