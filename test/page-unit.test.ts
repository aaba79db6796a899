/**
 * GET / without a browser: the document, its headers, how it is rendered from daemon/http/page/, and what happens when
 * it cannot be.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { buildSync } from 'esbuild';
import { Hono } from 'hono';
import { pino } from 'pino';
import { CSS_MARKER, JS_MARKER, pageDir, prebuiltPageDefine, registerPageRoute, renderPage } from '../daemon/http/page.ts';
import { ROOT, startDaemon, tempDir } from './helpers/daemon.ts';

const sha256 = (text: string) => `sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}`;

function inline(html: string, tag: 'style' | 'script'): string[] {
  return [...html.matchAll(new RegExp(`<${tag}[^>]*>([\\s\\S]*?)</${tag}>`, 'g'))].map((m) => m[1]!);
}

/** A copy of the page's sources in a temporary directory, with `edit` applied to one of them. */
function editedPage(file: 'page.html' | 'page.css' | 'page.ts', edit: (text: string) => string): string {
  const dir = tempDir();
  cpSync(pageDir(), dir, { recursive: true });
  writeFileSync(join(dir, file), edit(readFileSync(join(dir, file), 'utf8')));
  return dir;
}

test('GET / serves one self-contained HTML document with a strict CSP that allows exactly its inline script and style', { timeout: 30_000 }, async () => {
  const daemon = await startDaemon();
  try {
    const res = await fetch(`${daemon.url}/`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.equal(res.headers.get('referrer-policy'), 'no-referrer', 'a ?key= in the address never leaves in a Referer');
    const html = await res.text();

    const [style, ...moreStyles] = inline(html, 'style');
    const [script, ...moreScripts] = inline(html, 'script');
    assert.deepEqual([moreStyles, moreScripts], [[], []], 'one stylesheet, one script');
    assert.ok(style!.length > 1000 && script!.length > 1000, 'both inlined, not referenced');
    const csp = Object.fromEntries(res.headers.get('content-security-policy')!.split(/;\s*/).map((d) => [d.split(' ')[0], d.split(' ').slice(1).join(' ')]));
    assert.deepEqual(csp, {
      'default-src': "'none'",
      'script-src': `'${sha256(script!)}'`,
      'style-src': `'${sha256(style!)}'`,
      'connect-src': "'self'",
      'img-src': 'data:',
      'base-uri': "'none'",
      'form-action': "'self'",
    });

    // Nothing loaded from elsewhere: no src attribute, no absolute link, no import, no CSS url().
    assert.doesNotMatch(html, /\ssrc=/i);
    for (const [, href] of html.matchAll(/\shref="([^"]*)"/g)) assert.doesNotMatch(href!, /^(https?:)?\/\//, href);
    assert.doesNotMatch(script!, /^\s*import\b|\bimport\(/m);
    assert.doesNotMatch(style!, /url\(|@import/);
    // The script is page.ts without its types (esbuild), not a copy that could drift.
    assert.match(script!, /new EventSource\(/);
    assert.doesNotMatch(script!, /: (string|number|boolean)\b[,;)]/, 'no type annotation left');
    assert.doesNotMatch(html, /\/\* page\.(css|ts) \*\//, 'both markers replaced');

    const head = await fetch(`${daemon.url}/`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), '');
  } finally {
    await daemon.stop();
  }
});

test('with an API key configured, the page itself stays open (it holds no data) and the stream behind it does not', { timeout: 30_000 }, async () => {
  const daemon = await startDaemon({ env: { POCKETPAW_STATUS_API_KEY: 'k' } });
  try {
    const page = await fetch(`${daemon.url}/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /A status key is needed/);
    const stream = await fetch(`${daemon.url}/api/v1/agent/status/stream`);
    assert.equal(stream.status, 403);
    assert.deepEqual(await stream.json(), { detail: 'Invalid or missing status API key' });
  } finally {
    await daemon.stop();
  }
});

test('rendering refuses sources that would break the inline page, and keeps `$` sequences in the script as they are', () => {
  const cases: [string, string, RegExp][] = [
    [editedPage('page.ts', (t) => `import { z } from 'zod';\n${t}\nconsole.log(z);\n`), 'a value import', /may only import types/],
    [editedPage('page.css', (t) => `${t}\n/* </style> */\n`), 'a closing style tag', /contains "<\/style"/],
    [editedPage('page.html', (t) => t.replace(JS_MARKER, '')), 'no script marker', /must contain .* exactly once/],
    [editedPage('page.html', (t) => t.replace(CSS_MARKER, CSS_MARKER + CSS_MARKER)), 'a doubled style marker', /must contain .* exactly once/],
  ];
  for (const [dir, what, error] of cases) {
    try {
      assert.throws(() => renderPage(dir), error, what);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const dir = editedPage('page.ts', (t) => `${t}\nconsole.log("$& $1 $$ $\`");\nconsole.log('</script><script>alert(1)</script>');\n`);
  try {
    const { html } = renderPage(dir);
    assert.match(html, /console\.log\("\$& \$1 \$\$ \$`"\);/);
    // esbuild escapes a closing tag inside a string, so the inline script ends where it should.
    assert.equal(html.match(/<\/script>/g)?.length, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a page that cannot be built leaves the daemon serving its API, / answering 503 saying why, and an error logged', async () => {
  const logged: string[] = [];
  const log = pino({ level: 'info' }, new Writable({ write: (chunk: Buffer, _encoding, done) => (logged.push(chunk.toString()), done()) }));
  const app = new Hono();
  registerPageRoute(app, log, () => renderPage(join(tempDir(), 'missing')));
  const res = await app.request('/');
  assert.equal(res.status, 503);
  const { detail } = (await res.json()) as { detail: string };
  assert.match(detail, /^the status page could not be built \(cannot read .*page\.html \(ENOENT\).*\); the API under \/api\/v1\/agent\/status still works$/);
  assert.equal(logged.length, 1);
  assert.match(JSON.parse(logged[0]!).msg as string, /^status page unavailable: cannot read/);
});

test('a bundle carries the page rendered at build time (prebuiltPageDefine) and needs neither the sources nor esbuild', { timeout: 30_000 }, () => {
  const dir = tempDir();
  try {
    // As scripts/build.ts bundles the daemon, into a directory with no sources and no node_modules around it.
    mkdirSync(join(dir, 'out'));
    const entry = join(dir, 'entry.ts');
    writeFileSync(entry, `import { currentPage } from ${JSON.stringify(join(ROOT, 'daemon/http/page.ts'))};\nprocess.stdout.write(JSON.stringify(currentPage()));\n`);
    buildSync({ entryPoints: [entry], outfile: join(dir, 'out/bundle.mjs'), bundle: true, platform: 'node', format: 'esm', define: prebuiltPageDefine(), logLevel: 'error' });
    const run = spawnSync(process.execPath, [join(dir, 'out/bundle.mjs')], { cwd: join(dir, 'out'), encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.stdout), renderPage());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
