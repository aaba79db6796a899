/**
 * The entry of the hook's own bundle (dist/hook.js): `node dist/hook.js hook claude-code ...` does what
 * `pocketpaw-status hook claude-code ...` does, without parsing the daemon's bundle (the HTTP server, zod, pino) at
 * every tool call. `--install` writes this file's path into Claude Code's settings when it exists.
 */
import { hookCommand } from './hook-claude-code.ts';

const argv = process.argv.slice(2);
// Not awaited at the top level: the bundle is CommonJS (scripts/build.ts); a failure ends the process all the same.
void hookCommand(argv[0] === 'hook' ? argv.slice(1) : argv);
