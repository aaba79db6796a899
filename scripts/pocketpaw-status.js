#!/usr/bin/env node
// The installed command: runs the TypeScript sources through tsx, so a fresh clone needs no build step.
// Services and hooks run the compiled build (dist/) with plain `node` instead.
import { register } from 'tsx/esm/api';

register();
await import('../daemon/cli.ts');
