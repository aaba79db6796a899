/**
 * `pocketpaw-status fleet`: parses the options (shared with serve, daemon/config.ts), starts the aggregator, and
 * stops it on SIGINT/SIGTERM within a deadline; SIGHUP re-reads the API key, as for serve.
 */
import { ConfigError, fleetHelp, parseFleetConfig } from '../config.ts';
import { createLogger } from '../log.ts';
import { startFleet, type Fleet } from './server.ts';

const SHUTDOWN_DEADLINE_MS = 1500;

export async function fleetCommand(argv: string[]): Promise<void> {
  let config;
  try {
    config = parseFleetConfig(argv, process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`pocketpaw-status fleet: ${error.message}\nRun 'pocketpaw-status fleet --help' for the options.\n`);
    process.exit(2);
  }
  if (config === 'help') {
    process.stdout.write(fleetHelp());
    return;
  }
  const log = createLogger();
  let fleet: Fleet | null = null;
  let stopping = false;
  const shutDown = (running: Fleet) =>
    running.close().then(
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
    setTimeout(() => process.exit(0), SHUTDOWN_DEADLINE_MS).unref();
    if (fleet) void shutDown(fleet);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  process.on('SIGHUP', () => fleet?.reload());
  try {
    fleet = await startFleet(config, log);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`pocketpaw-status fleet: ${error.message}\nRun 'pocketpaw-status fleet --help' for the options.\n`);
      process.exit(2);
    }
    const code = (error as NodeJS.ErrnoException | undefined)?.code;
    const message =
      code === 'EADDRINUSE'
        ? `port ${config.port} on ${config.host} is already in use; choose another --port (0 picks a free one)`
        : error instanceof Error
          ? error.message
          : String(error);
    log.fatal({ err: code === 'EADDRINUSE' ? undefined : error }, `cannot start: ${message}`);
    process.exit(1);
  }
  if (stopping) void shutDown(fleet);
}
