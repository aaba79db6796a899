/**
 * The `pocketpaw-status` command: `serve` runs the daemon; `status`, `emit` and `hook` talk to it.
 *
 * Each subcommand's modules are imported only when it runs: `hook claude-code` runs before every tool call of an
 * agent and must not pay for the HTTP server, the schema library or the logger that `serve` needs.
 */

const USAGE = `Usage: pocketpaw-status <command> [options]

Commands:
  serve     run the daemon (see: pocketpaw-status serve --help)
  fleet     one view of many daemons through an MQTT broker (see: pocketpaw-status fleet --help)
  status    show what the agents are doing (see: pocketpaw-status status --help)
  emit      send events to the daemon from a shell (see: pocketpaw-status emit --help)
  hook      report a Claude Code session: hook claude-code (see: pocketpaw-status hook --help)

Run a command with --help for its options.
`;

// No top-level await: the build is CommonJS (scripts/build.ts). A command that fails rejects, and an unhandled
// rejection ends the process with its error and exit code 1, as a top-level await would.
async function main(): Promise<void> {
  const [command, ...rest] = process.argv.slice(2);
  switch (command) {
    case 'serve': {
      // Only `serve` loads the HTTP server, the schemas and the logger: the hook must not pay for them.
      const [{ runService }, { parseServeConfig, serveHelp }, { startDaemon }] = await Promise.all([import('./service.ts'), import('./config.ts'), import('./serve.ts')]);
      await runService({ name: 'serve', parse: parseServeConfig, help: serveHelp, start: startDaemon }, rest);
      break;
    }
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
}

void main();
