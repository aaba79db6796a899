/**
 * docs/configuration.md is the full table of `serve`'s options: every flag and its environment variables are in it,
 * so a new option cannot ship undocumented (the table in daemon/config.ts is the source of truth).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { envNames, SERVE_OPTIONS } from '../daemon/config.ts';
import { ROOT } from './helpers/daemon.ts';

test('docs/configuration.md names every serve flag and its environment variables', () => {
  const doc = readFileSync(join(ROOT, 'docs/configuration.md'), 'utf8');
  const rows = doc.split('\n').filter((line) => line.startsWith('| `--'));
  for (const option of Object.values(SERVE_OPTIONS)) {
    const row = rows.find((r) => r.includes(`\`--${option.flag}`) && !r.includes(`\`--${option.flag}-`));
    assert.ok(row, `docs/configuration.md has no row for --${option.flag}`);
    for (const name of envNames(option)) assert.ok(row.includes(name), `the --${option.flag} row does not name ${name}`);
  }
});
