/**
 * GET /: the status page, one self-contained HTML document.
 *
 * page/page.html with page/page.css and page/page.ts inlined: the script's types are stripped with esbuild once, when
 * the daemon starts, and the result is served from memory. esbuild is always installed, because tsx (a runtime
 * dependency, which `npm start` and the installed command run through) depends on it; so a fresh clone needs no build
 * step, and no generated file can drift from its source.
 *
 * The production bundle (scripts/build.ts) has neither the sources nor esbuild at run time: it carries the page
 * rendered at build time instead, through esbuild's `define` (see `prebuiltPageDefine`).
 *
 * The Content-Security-Policy allows exactly this script and this stylesheet (by hash), requests to this origin
 * (the stream and the REST snapshot) and data: images (the favicon the script draws). It sets no frame-ancestors on
 * purpose: the page is read-only, and embedding it in a dashboard as a widget is a use it is meant for.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as Esbuild from 'esbuild';
import type { Env, Hono } from 'hono';
import type { Logger } from '../log.ts';
import { jsonError } from './errors.ts';

export const PAGE_PATH = '/';

export interface RenderedPage {
  readonly html: string;
  readonly headers: Readonly<Record<string, string>>;
}

/** Where page.html marks the places for the stylesheet and the script. */
export const CSS_MARKER = '<style>/* page.css */</style>';
export const JS_MARKER = '<script type="module">/* page.ts */</script>';

/** The browsers the page supports: a few years back, as on an old phone or a wall tablet. */
const BROWSER_TARGET = 'es2020';

/** Replaced by the rendered page in the production bundle; never defined when running from the sources. */
declare const __POCKETPAW_STATUS_PAGE__: RenderedPage | undefined;
const PREBUILT_NAME = '__POCKETPAW_STATUS_PAGE__';

/**
 * For scripts/build.ts: `define: prebuiltPageDefine()` in the esbuild options embeds the page rendered now, at build
 * time, in the bundle.
 */
export function prebuiltPageDefine(): Record<string, string> {
  return { [PREBUILT_NAME]: JSON.stringify(renderPage()) };
}

/** The page to serve: the one embedded in the bundle, else rendered from the sources now. */
export function currentPage(): RenderedPage {
  return typeof __POCKETPAW_STATUS_PAGE__ !== 'undefined' ? __POCKETPAW_STATUS_PAGE__ : renderPage();
}

export function pageDir(): string {
  return fileURLToPath(new URL('./page/', import.meta.url));
}

export function renderPage(dir: string = pageDir()): RenderedPage {
  const template = read(dir, 'page.html');
  const css = read(dir, 'page.css');
  const js = stripTypes(read(dir, 'page.ts'));
  if (/<\/style/i.test(css)) throw new Error('page.css contains "</style", which would end the inline stylesheet early');
  if (/<\/script/i.test(js)) throw new Error('page.ts contains "</script", which would end the inline script early');

  const html = replaceOnce(replaceOnce(template, CSS_MARKER, `<style>${css}</style>`), JS_MARKER, `<script type="module">${js}</script>`);
  const csp = [
    "default-src 'none'",
    `script-src '${sha256(js)}'`,
    `style-src '${sha256(css)}'`,
    "connect-src 'self'",
    'img-src data:',
    "base-uri 'none'",
    "form-action 'self'",
  ].join('; ');
  return {
    html,
    headers: {
      'Content-Type': 'text/html; charset=utf-8',
      'Content-Security-Policy': csp,
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
    },
  };
}

/**
 * Renders the page now (at daemon start) and serves it. If it cannot be built, the daemon still starts, since the API
 * is what agents and tools rely on, and `/` answers 503 saying why.
 */
export function registerPageRoute<E extends Env>(app: Hono<E>, log: Logger, render: () => RenderedPage = currentPage): void {
  let page: RenderedPage | null = null;
  let failure = '';
  try {
    page = render();
  } catch (error) {
    failure = error instanceof Error ? error.message : String(error);
    log.error({ err: error }, `status page unavailable: ${failure}`);
  }
  app.get(PAGE_PATH, (c) => {
    if (page) return c.body(page.html, 200, page.headers);
    return jsonError(c, 503, `the status page could not be built (${failure}); the API under /api/v1/agent/status still works`);
  });
}

function read(dir: string, name: string): string {
  try {
    return readFileSync(join(dir, name), 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    // Also what a bundle built without prebuiltPageDefine() says: its import.meta.url is the bundle's directory.
    throw new Error(`cannot read ${join(dir, name)} (${code}): this copy of pocketpaw-status lacks the page's sources; reinstall it, or rebuild a bundle with npm run build`);
  }
}

function stripTypes(source: string): string {
  const { code } = loadEsbuild().transformSync(source, {
    loader: 'ts',
    format: 'esm',
    target: BROWSER_TARGET,
    sourcefile: 'page.ts',
    legalComments: 'none',
  });
  // The page loads nothing else (the CSP would refuse it anyway): a value import here is a mistake in page.ts.
  if (/^\s*(import|export)\b/m.test(code)) throw new Error('page.ts imports or exports a value; it may only import types');
  return code;
}

function loadEsbuild(): typeof Esbuild {
  const load = createRequire(import.meta.url);
  try {
    return load('esbuild') as typeof Esbuild;
  } catch {
    // Not hoisted to the top of node_modules (pnpm, or a production install without devDependencies): use tsx's own.
  }
  try {
    return createRequire(load.resolve('tsx/package.json'))('esbuild') as typeof Esbuild;
  } catch {
    throw new Error('esbuild, which comes with tsx, is not installed; run npm install');
  }
}

function replaceOnce(text: string, marker: string, replacement: string): string {
  const at = text.indexOf(marker);
  if (at < 0 || text.indexOf(marker, at + 1) >= 0) throw new Error(`page.html must contain ${marker} exactly once`);
  // Slicing, not String.replace: `$&` and friends in the script would be taken as replacement patterns.
  return text.slice(0, at) + replacement + text.slice(at + marker.length);
}

function sha256(text: string): string {
  return `sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}`;
}
