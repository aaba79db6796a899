/**
 * The `pocketpaw-status` command: `serve` runs the daemon; `status`, `emit` and `hook` talk to it.
 *
 * Each subcommand's modules are imported only when it runs: `hook claude-code` runs before every tool call of an
 * agent and must not pay for the HTTP server, the schema library or the logger that `serve` needs.
 */

/** The modules `serve` needs, loaded only for `serve`. */
async function loadServe() {
  const [config, socket, log, daemon] = await Promise.all([
    import('./config.ts'),
    import('./ingest/socket.ts'),
    import('./log.ts'),
    import('./serve.ts'),
  ]);
  return { ...config, ...socket, ...log, ...daemon };
}

const USAGE = `Usage: pocketpaw-status <command> [options]

Commands:
  serve     run the daemon (see: pocketpaw-status serve --help)
  fleet     one view of many daemons through an MQTT broker (see: pocketpaw-status fleet --help)
  status    show what the agents are doing (see: pocketpaw-status status --help)
  emit      send events to the daemon from a shell (see: pocketpaw-status emit --help)
  hook      report a Claude Code session: hook claude-code (see: pocketpaw-status hook --help)

Run a command with --help for its options.
`;

/** How long SIGINT/SIGTERM may take before the process exits anyway. */
const SHUTDOWN_DEADLINE_MS = 1500;

async function serve(argv: string[]): Promise<void> {
  const { ConfigError, parseServeConfig, serveHelp, StartupError, SocketInUseError, createLogger, startDaemon } = await loadServe();
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
  // Signal handlers come before the start: the ready line can be read, and a SIGTERM sent, before startDaemon()
  // returns; without a handler that SIGTERM would kill the daemon outright, leaving its socket file behind.
  // A SIGHUP reloads the key (ignored while starting) instead of killing the daemon, SIGHUP's default action.
  let daemon: Awaited<ReturnType<typeof startDaemon>> | null = null;
  let stopping = false;
  const shutDown = (running: NonNullable<typeof daemon>) =>
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
    setTimeout(() => {
      log.warn('shutdown deadline passed; exiting anyway');
      process.exit(0);
    }, SHUTDOWN_DEADLINE_MS).unref();
    if (daemon) void shutDown(daemon);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  process.on('SIGHUP', () => daemon?.reload());
  try {
    daemon = await startDaemon(config, log);
  } catch (error) {
    if (error instanceof ConfigError) {
      // Found while starting (a key source that cannot be used, an open LAN listener): a setting must change.
      process.stderr.write(`pocketpaw-status serve: ${error.message}\nRun 'pocketpaw-status serve --help' for the options.\n`);
      process.exit(2);
    }
    // The socket or the port is taken: the commonest first-day failure gets one plain line, not a JSON log record.
    if (error instanceof SocketInUseError || (error as NodeJS.ErrnoException | undefined)?.code === 'EADDRINUSE') {
      const message = error instanceof SocketInUseError ? error.message : describeStartError(error, config.host, config.port);
      process.stderr.write(`pocketpaw-status serve: cannot start: ${message}\n`);
      process.exit(1);
    }
    const message = error instanceof StartupError ? error.message : describeStartError(error, config.host, config.port);
    log.fatal({ err: error instanceof StartupError ? undefined : error }, `cannot start: ${message}`);
    process.exit(1);
  }
  // A signal that came while starting: stop now that there is something to stop.
  if (stopping) void shutDown(daemon);
}

function describeStartError(error: unknown, host: string, port: number): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'EADDRINUSE') return `port ${port} on ${host} is already in use (another daemon, or a service); stop it, or pass --port N (0 picks a free one)`;
  if (code === 'EADDRNOTAVAIL') return `${host} is not an address of this machine; check --host`;
  if (code === 'EACCES') return `permission denied (${(error as Error).message}); check --socket and --port`;
  return error instanceof Error ? error.message : String(error);
}

const [command, ...rest] = process.argv.slice(2);
switch (command) {
  case 'serve':
    await serve(rest);
    break;
  case 'fleet':
    await (await import('./fleet/command.ts')).fleetCommand(rest);
    break;
  case 'status':
    await (await import('./cli/status.ts')).statusCommand(rest);
    break;
  case 'emit':
    await (await import('./cli/emit.ts')).emitCommand(rest);
    break;
  case 'hook':
    await (await import('./cli/hook-claude-code.ts')).hookCommand(rest);
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
