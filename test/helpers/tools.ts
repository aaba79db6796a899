/**
 * System tools some tests need (chromium, mosquitto, python3, ...). On a machine without one, its tests are skipped
 * with a message naming the Debian package that brings it; under CI=true a missing tool is a failure, because
 * `.ci/run` installs them all and a skipped test there would prove nothing.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export const IN_CI = process.env.CI === 'true' || process.env.CI === '1';

/** The absolute path of `command` on PATH (or the path itself when absolute and executable), else null. */
export function findTool(command: string): string | null {
  const candidates = command.includes('/') ? [command] : (process.env.PATH ?? '').split(delimiter).filter(Boolean).map((dir) => join(dir, command));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here; try the next folder
    }
  }
  return null;
}

/**
 * `false` when `command` exists, else the reason to skip (for node:test's `{ skip }`). Under CI it throws instead,
 * so the test file fails loudly.
 */
export function skipWithout(command: string, debianPackage: string): string | false {
  if (findTool(command) !== null) return false;
  const why = `needs ${command}: apt-get install ${debianPackage}`;
  if (IN_CI) throw new Error(`${why} (CI=true: .ci/run must install it)`);
  return why;
}
