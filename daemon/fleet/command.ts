/**
 * `pocketpaw-status fleet`: the options (shared with serve, daemon/config.ts), the start and the stop of the
 * aggregator, with serve's own life (daemon/service.ts): one line for a start that fails, a deadline for the stop,
 * SIGHUP re-reads the API key.
 */
import { fleetHelp, parseFleetConfig } from '../config.ts';
import { runService } from '../service.ts';
import { startFleet } from './server.ts';

export async function fleetCommand(argv: string[]): Promise<void> {
  await runService({ name: 'fleet', parse: parseFleetConfig, help: fleetHelp, start: startFleet }, argv);
}
