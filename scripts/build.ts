/**
 * `npm run build`: the production start path. One esbuild bundle, `dist/cli.js`, that plain `node` runs with no
 * node_modules and no tsx (about 4x faster to start and half the memory: see scripts/bench/startup.ts).
 *
 * Usage: node --import tsx scripts/build.ts [--outdir DIR]
 *
 * Notes on bundling the dependencies:
 * - The output is CommonJS, which Node starts sooner than an ES module (see COMMONJS below); dist/package.json says
 *   so, and dist/protocol/ (the library's ES modules) has its own package.json. No source may use top-level await.
 * - pino is used with `pino.destination` (sonic-boom, synchronous, fd 2) and never with transports, so none of its
 *   worker-thread files is needed at run time.
 * - `ndjson` is not part of the daemon (lines are framed by daemon/ingest/lines.ts), so it is not in the bundle.
 * - The status page (daemon/http/page.ts) is rendered now and embedded through `define`: the bundle has neither the
 *   page's sources nor esbuild at run time.
 * - zod's `z.locales` namespace drags all of its ~250 locales into the bundle (over a third of it, parsed at every
 *   start). The daemon only ever uses English messages (zod sets `en` itself), so the bundle gets `en` alone.
 * - The MQTT output (daemon/mqtt/output.ts and MQTT.js, imported only with --mqtt-url) is a second file next to the
 *   bundle, `dist/mqtt.js`, which cli.js imports dynamically. Inside cli.js it would not run without the flag, but
 *   every start (the Claude Code hook's, before each tool call, too) would parse its ~0.7 MB of source: about 10 ms.
 *   It is bundled without what the daemon never uses: the WebSocket and mini-program transports (it speaks mqtt://
 *   and mqtts:// only; `ws` would also bring optional native modules, bufferutil and utf-8-validate, that a bundle
 *   cannot carry), the SOCKS proxy support and the browser's worker timers; each becomes a stub that throws if called.
 * - The fleet aggregator (`fleet`, daemon/fleet/command.ts) reads MQTT too: for the same reason it is a third file,
 *   `dist/fleet.js`, with the same MQTT.js stubs and the page embedded, imported by cli.js only for `fleet`.
 * - Likewise prom-client (loaded on the first /metrics scrape) and the other commands (`status`, `emit`, `hook`) are
 *   files of their own (SEPARATE below): cli.js holds the dispatch and what `serve` runs, and nothing else.
 * - Not minified: whitespace and syntax minification (names kept) takes 0.5-1.5% off the instructions to the first
 *   answer and 0.7 MiB off the idle RSS, and puts every frame of a logged stack trace on line 1 of cli.js. Reading
 *   such traces back would take the source map shipped and `node --enable-source-maps`, which parses the map at
 *   start: 6 MiB more RSS, eight times what the minification saves.
 */
import { build, type Plugin } from 'esbuild';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { prebuiltPageDefine } from '../daemon/http/page.ts';

export const ROOT = resolve(fileURLToPath(import.meta.url), '../..');

export interface BuildResult {
  /** The bundle: `node <file> serve` runs the daemon. */
  readonly file: string;
  readonly bytes: number;
  /** The Claude Code hook's own small bundle: `node <hookFile> hook claude-code` (runs twice per tool call). */
  readonly hookFile: string;
}

/** Replaces zod's index of every locale with one that has English only. */
const zodEnglishOnly: Plugin = {
  name: 'zod-english-only',
  setup(b) {
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      /[\\/]node_modules[\\/]zod[\\/]/.test(args.importer) ? { path: join(dirname(args.importer), args.path), namespace: 'zod-locales' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'zod-locales' }, (args) => ({
      contents: `export { default as en } from ${JSON.stringify(join(dirname(args.path), 'en.js'))};\n`,
      resolveDir: dirname(args.path),
      loader: 'js',
    }));
  },
};

/**
 * pino's transports (worker threads, through thread-stream) are never used: the daemon logs through pino.destination
 * (see above). pino requires them when it loads, so without this every start would parse and run thread-stream.
 */
const pinoNoTransport: Plugin = {
  name: 'pino-no-transport',
  setup(b) {
    b.onResolve({ filter: /^\.\/(lib\/)?transport$/ }, (args) => (/[\\/]node_modules[\\/]pino([\\/]lib)?$/.test(args.resolveDir) ? { path: args.path, namespace: 'pino-no-transport' } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'pino-no-transport' }, () => ({
      contents: 'module.exports = () => { throw new Error("pino transports are not part of pocketpaw-status (it logs to stderr through pino.destination)"); };\n',
      loader: 'js',
    }));
  },
};

/** Replaces the parts of MQTT.js the daemon never uses with a module that says they are not part of this build. */
const mqttTcpOnly: Plugin = {
  name: 'mqtt-tcp-only',
  setup(b) {
    const inMqtt = (dir: string) => /[\\/]node_modules[\\/]mqtt[\\/]build[\\/]lib([\\/]connect)?$/.test(dir);
    b.onResolve({ filter: /^(\.\/(ws|wx|ali|socks)|worker-timers)$/ }, (args) => (inMqtt(args.resolveDir) ? { path: args.path, namespace: 'mqtt-not-bundled' } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'mqtt-not-bundled' }, (args) => ({
      contents:
        `const missing = () => { throw new Error(${JSON.stringify(`${args.path} of MQTT.js is not part of pocketpaw-status (mqtt:// and mqtts:// only)`)}); };\n` +
        'module.exports = { default: missing, streamBuilder: missing, browserStreamBuilder: missing, setInterval: missing, clearInterval: missing };\n',
      loader: 'js',
    }));
  },
};

/** In cli.js, serve.ts's `import('./mqtt/output.ts')` loads the separate file `./mqtt.js` (see above). */
const mqttSeparate: Plugin = {
  name: 'mqtt-separate',
  setup(b) {
    b.onResolve({ filter: /^\.\/mqtt\/output\.ts$/ }, (args) => (args.kind === 'dynamic-import' ? { path: `./${MQTT_FILE}`, external: true } : undefined));
  },
};

/** The fleet aggregator's file, next to cli.js. */
export const FLEET_FILE = 'fleet.js';

/** In cli.js, `import('./fleet/command.ts')` loads the separate file `./fleet.js` (see above). */
const fleetSeparate: Plugin = {
  name: 'fleet-separate',
  setup(b) {
    b.onResolve({ filter: /^\.\/fleet\/command\.ts$/ }, (args) => (args.kind === 'dynamic-import' ? { path: `./${FLEET_FILE}`, external: true } : undefined));
  },
};

/** The MQTT output's file, next to cli.js. */
export const MQTT_FILE = 'mqtt.js';

/**
 * What cli.js imports dynamically and `serve` does not need when it starts: each is a file of its own next to cli.js
 * (bundled with what it needs), keyed by the specifier cli.js's sources import it by. Inside cli.js they would not
 * run until used, but V8 would still hold their source and pre-parse it at every start: together about 240 KB of
 * source: 0.7 MiB of idle RSS and 2.7% of the instructions to the first answer (see the measurements in the commit).
 * prom-client is loaded on the first /metrics scrape (daemon/metrics.ts); the others are the CLI's other commands.
 */
export const SEPARATE: Readonly<Record<string, { readonly file: string; readonly entry: string }>> = {
  'prom-client': { file: 'prom-client.js', entry: 'prom-client' },
  './cli/status.ts': { file: 'cli-status.js', entry: 'daemon/cli/status.ts' },
  './cli/emit.ts': { file: 'cli-emit.js', entry: 'daemon/cli/emit.ts' },
  './cli/hook-claude-code.ts': { file: 'cli-hook.js', entry: 'daemon/cli/hook-claude-code.ts' },
};

/** In cli.js, a dynamic import of one of SEPARATE loads its file (see above). */
const separateFiles: Plugin = {
  name: 'separate-files',
  setup(b) {
    b.onResolve({ filter: /.*/ }, (args) => {
      const separate = SEPARATE[args.path];
      return args.kind === 'dynamic-import' && separate ? { path: `./${separate.file}`, external: true } : undefined;
    });
  },
};

/**
 * prom-client is CommonJS: its file is an ES module whose named exports are prom-client's own (read from the installed
 * package at build time), so `import('./prom-client.js')` gives daemon/metrics.ts the namespace it had in the bundle.
 */
const promClientEntry: Plugin = {
  name: 'prom-client-entry',
  setup(b) {
    b.onResolve({ filter: /^prom-client-entry$/ }, () => ({ path: 'prom-client-entry', namespace: 'prom-client-entry' }));
    b.onLoad({ filter: /.*/, namespace: 'prom-client-entry' }, () => {
      const names = Object.keys(createRequire(join(ROOT, 'package.json'))('prom-client') as object);
      const contents = `import prom from 'prom-client';\nexport const { ${names.join(', ')} } = prom;\nexport default prom;\n`;
      return { contents, resolveDir: ROOT, loader: 'js' };
    });
  },
};

/**
 * The build is CommonJS. Node starts a CommonJS main module without its ES module loader, which it otherwise sets up
 * and uses to read the file asynchronously before running anything: 1.5-2% of the instructions to the first answer
 * and, on a busy machine, more in waiting (20 interleaved starts: 1.81x a bare node:http server as ESM, 1.65x as
 * CommonJS). The sources' few uses of import.meta.url get the file's URL, and the other files (mqtt.js, fleet.js,
 * prom-client.js, cli-*.js) are still loaded with import(), which loads CommonJS too (with named exports, which
 * esbuild marks for Node to find).
 */
const COMMONJS = {
  format: 'cjs',
  banner: { js: "const __ppsImportMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
  define: { 'import.meta.url': '__ppsImportMetaUrl' },
} as const;

/** The build is CommonJS wherever it is copied to, whatever package.json is (or is not) above it. */
function markCommonJs(outdir: string): void {
  writeFileSync(join(outdir, 'package.json'), `${JSON.stringify({ type: 'commonjs', private: true }, null, 2)}\n`);
}

export async function buildDist(outdir: string = join(ROOT, 'dist')): Promise<BuildResult> {
  mkdirSync(outdir, { recursive: true });
  const file = join(outdir, 'cli.js');
  const common = {
    bundle: true,
    platform: 'node',
    ...COMMONJS,
    target: 'node20',
    // Not minified (see above): stack traces and logged errors keep readable names and lines.
    sourcemap: 'linked',
    legalComments: 'eof',
    logLevel: 'warning',
  } as const;
  const [result, mqtt, ...separate] = await Promise.all([
    build({ ...common, entryPoints: [join(ROOT, 'daemon/cli.ts')], outfile: file, define: { ...COMMONJS.define, ...prebuiltPageDefine() }, plugins: [zodEnglishOnly, mqttSeparate, fleetSeparate, separateFiles, pinoNoTransport] }),
    build({ ...common, entryPoints: [join(ROOT, 'daemon/mqtt/output.ts')], outfile: join(outdir, MQTT_FILE), plugins: [mqttTcpOnly] }),
    ...Object.values(SEPARATE).map(({ file: name, entry }) =>
      build({
        ...common,
        entryPoints: [entry === 'prom-client' ? 'prom-client-entry' : join(ROOT, entry)],
        outfile: join(outdir, name),
        plugins: [zodEnglishOnly, promClientEntry, pinoNoTransport],
      }),
    ),
  ]);
  const fleet = await build({ ...common, entryPoints: [join(ROOT, 'daemon/fleet/command.ts')], outfile: join(outdir, FLEET_FILE), define: { ...COMMONJS.define, ...prebuiltPageDefine() }, plugins: [zodEnglishOnly, mqttTcpOnly] });
  const errors = [...result.errors, ...mqtt.errors, ...separate.flatMap((r) => r.errors), ...fleet.errors];
  if (errors.length > 0) throw new Error(`esbuild failed: ${errors.map((e) => e.text).join('; ')}`);
  const hookFile = await buildHook(outdir);
  return { file, bytes: statSync(file).size, hookFile };
}

/**
 * The hook starts at every tool call: a bundle of its own modules alone (Node built-ins, no dependency) parses in a
 * fraction of the time cli.js takes. `node <outdir>/hook.js hook claude-code` is what --install writes.
 */
export async function buildHook(outdir: string = join(ROOT, 'dist')): Promise<string> {
  mkdirSync(outdir, { recursive: true });
  const hookFile = join(outdir, 'hook.js');
  const hook = await build({
    entryPoints: [join(ROOT, 'daemon/cli/hook-main.ts')],
    outfile: hookFile,
    bundle: true,
    platform: 'node',
    ...COMMONJS,
    target: 'node20',
    legalComments: 'eof',
    logLevel: 'warning',
  });
  if (hook.errors.length > 0) throw new Error(`esbuild failed: ${hook.errors.map((e) => e.text).join('; ')}`);
  markCommonJs(outdir);
  return hookFile;
}

/**
 * The package's library entry points (`pocketpaw-status`, `pocketpaw-status/emitter`) as JavaScript, for agents that
 * run plain node: `exports` in package.json points at them, with the TypeScript sources as their types. Dependencies
 * (zod) stay imports, resolved from the installing project's node_modules.
 */
export async function buildProtocol(outdir: string = join(ROOT, 'dist')): Promise<void> {
  const result = await build({
    entryPoints: [join(ROOT, 'protocol/index.ts'), join(ROOT, 'protocol/emitter.ts')],
    outdir: join(outdir, 'protocol'),
    bundle: true,
    packages: 'external',
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'warning',
  });
  if (result.errors.length > 0) throw new Error(`esbuild failed: ${result.errors.map((e) => e.text).join('; ')}`);
  // ES modules, for agents that import them, under dist/ whose package.json says CommonJS (see COMMONJS).
  writeFileSync(join(outdir, 'protocol', 'package.json'), `${JSON.stringify({ type: 'module', private: true }, null, 2)}\n`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { outdir: { type: 'string' } } });
  const { file, bytes } = await buildDist(values.outdir ? resolve(values.outdir) : undefined);
  await buildProtocol(values.outdir ? resolve(values.outdir) : undefined);
  process.stdout.write(`built ${file} (${(bytes / 1024).toFixed(0)} KiB); run it with: node ${file} serve\n`);
}
