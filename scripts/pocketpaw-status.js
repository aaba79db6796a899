#!/usr/bin/env node
// The installed command. In a checkout, where the daemon's TypeScript sources are, it runs them through tsx, so a
// fresh clone needs no build step and never runs a stale build. The npm package carries the compiled build (dist/,
// made by `prepack`) instead of those sources, and runs it with plain node: no tsx, no TypeScript at run time.
import { existsSync } from 'node:fs';

const sources = new URL('../daemon/cli.ts', import.meta.url);
if (existsSync(sources)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(sources.href);
} else {
  await import(new URL('../dist/cli.js', import.meta.url).href);
}
