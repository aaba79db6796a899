/**
 * The status page at GET /, in a real browser: Debian's headless Chromium driven by playwright-core, against the real
 * daemon, with events written to its real socket.
 *
 * Waits poll the page with a generous bound; nothing here measures how fast anything happened.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { ROOT, sendOnce, startDaemon, tempDir, type TestDaemon } from './helpers/daemon.ts';
import { findTool, skipWithout } from './helpers/tools.ts';

// Debian's chromium, found on PATH (so a test run with PATH stripped of it skips, as a machine without it does).
const SKIP = skipWithout('chromium', 'chromium');
const CHROMIUM = findTool('chromium') ?? '/usr/bin/chromium';
const ARTIFACTS = join(ROOT, 'test/artifacts');
const WAIT_MS = 10_000;

// --- the few DOM members the in-page probes use (this file is compiled without the DOM library) ---

interface PageElement {
  readonly textContent: string | null;
  readonly hidden: boolean;
  readonly id: string;
  readonly tagName: string;
  readonly dataset: Record<string, string | undefined>;
  readonly scrollWidth: number;
  readonly clientWidth: number;
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): ArrayLike<PageElement>;
  getAttribute(name: string): string | null;
  getBoundingClientRect(): { top: number; bottom: number; left: number; right: number; width: number; height: number };
}
declare const document: {
  readonly title: string;
  readonly documentElement: PageElement;
  readonly body: PageElement;
  readonly activeElement: PageElement | null;
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): ArrayLike<PageElement>;
};
declare const window: {
  getComputedStyle(element: PageElement): { backgroundColor: string; display: string; visibility: string };
  pageMarker?: number;
  pwned?: number;
};

interface CardView {
  key: string;
  state: string;
  title: string;
  stateText: string;
  tool: string | null;
  time: string;
  tokens: string;
  error: string | null;
}

interface PageView {
  badge: string;
  badgeText: string;
  conn: string;
  connText: string;
  stale: boolean;
  empty: boolean;
  keyNotice: boolean;
  keyWhy: string;
  overview: boolean;
  announcer: string;
  title: string;
  log: string[] | null;
  cards: CardView[];
}

/** Runs in the page: what a person would see, as plain data. */
const readView = (): PageView => {
  const text = (e: PageElement | null) => (e?.textContent ?? '').trim();
  const shown = (e: PageElement | null) => e !== null && !e.hidden && window.getComputedStyle(e).display !== 'none';
  const log = document.querySelector('#log');
  return {
    badge: document.querySelector('#badge')?.dataset.state ?? '',
    badgeText: text(document.querySelector('#badge-label')),
    conn: document.querySelector('#conn')?.dataset.conn ?? '',
    connText: text(document.querySelector('#conn-text')),
    stale: document.querySelector('#main')?.dataset.stale === 'true',
    empty: shown(document.querySelector('#empty')),
    keyNotice: shown(document.querySelector('#key-notice')),
    keyWhy: text(document.querySelector('#key-why')),
    overview: shown(document.querySelector('#overview')),
    announcer: text(document.querySelector('#announcer')),
    title: document.title,
    log: shown(log)
      ? Array.from(document.querySelectorAll('#log-list > li')).map((li) =>
          Array.from(li.querySelectorAll(':scope > *'))
            .map((part) => text(part))
            .join(' '),
        )
      : null,
    cards: Array.from(document.querySelectorAll('#cards > li')).map((li) => {
      const tool = li.querySelector('.tool');
      const error = li.querySelector('.error-message');
      return {
        key: li.dataset.key ?? '',
        state: li.dataset.state ?? '',
        title: text(li.querySelector('.card-title')),
        stateText: text(li.querySelector('.state-pill')),
        tool: shown(tool) ? text(tool) : null,
        time: text(li.querySelector('.time')),
        tokens: text(li.querySelector('.tokens')),
        error: shown(error) ? text(error) : null,
      };
    }),
  };
};

// --- browser and pages ---

let browser: Browser;

before(async () => {
  if (SKIP) return;
  mkdirSync(ARTIFACTS, { recursive: true });
  // launch() gives every run a fresh temporary profile. Never a downloaded browser: Debian's own.
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
});

after(async () => {
  await browser?.close();
});

interface OpenPage {
  readonly page: Page;
  readonly context: BrowserContext;
  /** Script errors, and console errors such as Content-Security-Policy refusals. */
  readonly errors: string[];
  view(): Promise<PageView>;
  /** Polls the page until `check` holds; the failure says what the page showed last. */
  until(what: string, check: (view: PageView) => boolean, timeoutMs?: number): Promise<PageView>;
  close(): Promise<void>;
}

async function openPage(
  url: string,
  options: { width?: number; height?: number } = {},
): Promise<OpenPage> {
  const context = await browser.newContext({
    viewport: { width: options.width ?? 1280, height: options.height ?? 900 },
    colorScheme: 'light',
    locale: 'en-US',
    reducedMotion: 'reduce',
  });
  // tsx compiles this file with keepNames, which wraps functions in a __name() helper that the probes carry into the
  // page. This shim is injected through the DevTools protocol, which the page's CSP does not govern.
  await context.addInitScript('globalThis.__name = (f) => f;');
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`console: ${message.text()}`);
  });
  await page.goto(url);
  const view = () => page.evaluate(readView);
  return {
    page,
    context,
    errors,
    view,
    async until(what, check, timeoutMs = WAIT_MS) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const current = await view();
        if (check(current)) return current;
        if (Date.now() > deadline) throw new Error(`timed out waiting for the page to show ${what}; it shows ${JSON.stringify(current, null, 1)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    close: () => context.close(),
  };
}

function card(view: PageView, key: string): CardView | undefined {
  return view.cards.find((c) => c.key === key);
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function withDaemon(fn: (daemon: TestDaemon) => Promise<void>, options: Parameters<typeof startDaemon>[0] = {}): Promise<void> {
  const daemon = await startDaemon(options);
  try {
    await fn(daemon);
  } finally {
    await daemon.stop();
  }
}

// --- tests ---

test('the page shows idle, then a session as events reach the socket: its state, its tool, degraded on error, idle again', { skip: SKIP, timeout: 90_000 }, () =>
  withDaemon(async (daemon) => {
    const p = await openPage(`${daemon.url}/`);
    try {
      let v = await p.until('idle and live', (x) => x.badge === 'idle' && x.conn === 'live');
      assert.equal(v.badgeText, 'Idle');
      assert.equal(v.connText, 'Live');
      assert.equal(v.empty, true, 'says there are no sessions');
      assert.equal(v.log, null, 'no transition log without ?transitions=1');
      assert.match(v.title, /^Idle · /);
      // Set in the page now: still there at the end proves that nothing below needed a reload.
      await p.page.evaluate(() => {
        window.pageMarker = 42;
      });

      await sendOnce(daemon.socket, { type: 'agent_start', session_key: 'websocket:abc123', title: 'Help with Python script' });
      v = await p.until('the new session thinking', (x) => card(x, 'websocket:abc123')?.state === 'thinking');
      let c = card(v, 'websocket:abc123')!;
      assert.equal(c.title, 'Help with Python script');
      assert.equal(c.stateText, 'Thinking');
      assert.equal(c.tool, null);
      assert.equal(v.badge, 'active');
      assert.equal(v.badgeText, 'Active');
      assert.equal(v.empty, false);

      await sendOnce(daemon.socket, { type: 'tool_start', session_key: 'websocket:abc123', name: 'bash' }, { type: 'token_usage', session_key: 'websocket:abc123', input: 1500, output: 320 });
      v = await p.until('the tool running, with tokens', (x) => card(x, 'websocket:abc123')?.tool === 'bash' && card(x, 'websocket:abc123')?.tokens !== '–');
      c = card(v, 'websocket:abc123')!;
      assert.equal(c.state, 'tool_running');
      assert.equal(c.stateText, 'Running tool');
      assert.equal(c.tokens, '1,500 in · 320 out');

      // Time in state ticks in the page, between events: the daemon sends nothing while nothing changes.
      const before = c.time;
      assert.match(before, /^\d+s$/);
      await p.until('the time in state ticking', (x) => /^\d+s$/.test(card(x, 'websocket:abc123')?.time ?? '') && card(x, 'websocket:abc123')?.time !== before);

      // A second session appears beside the first.
      await sendOnce(daemon.socket, { type: 'agent_start', session_key: 'telegram:42' });
      v = await p.until('a second card', (x) => x.cards.length === 2);
      assert.deepEqual(v.cards.map((x) => x.key), ['websocket:abc123', 'telegram:42']);
      assert.equal(card(v, 'telegram:42')!.title, '42', 'without a title, the session id');

      await sendOnce(daemon.socket, { type: 'error', session_key: 'websocket:abc123', message: 'Rate limit exceeded' });
      v = await p.until('degraded', (x) => x.badge === 'degraded');
      c = card(v, 'websocket:abc123')!;
      assert.equal(v.badgeText, 'Degraded');
      assert.equal(c.state, 'error');
      assert.equal(c.stateText, 'Error');
      assert.equal(c.error, 'Rate limit exceeded');
      assert.equal(c.tool, null);
      await p.until('the change announced in the live region', (x) => x.announcer === 'Agent degraded: 1 of 2 sessions in error.');
      assert.match(v.title, /^Degraded · /);

      // Two global states in quick succession (degraded -> active -> idle): the live region says only the last one.
      await sendOnce(daemon.socket, { type: 'agent_end', session_key: 'websocket:abc123' });
      await p.until('one card left', (x) => x.cards.length === 1);
      await sendOnce(daemon.socket, { type: 'agent_end', session_key: 'telegram:42' });
      v = await p.until('idle again', (x) => x.badge === 'idle' && x.cards.length === 0);
      assert.equal(v.empty, true);
      await p.until('idle announced', (x) => x.announcer === 'Agent idle.');
      assert.equal(await p.page.evaluate(() => window.pageMarker), 42, 'the same page all along, never reloaded');
      assert.deepEqual(p.errors, [], 'no script error and no CSP refusal');
    } finally {
      await p.close();
    }
  }));

test('text from the snapshot is shown as text, never parsed as HTML', { skip: SKIP, timeout: 60_000 }, () =>
  withDaemon(async (daemon) => {
    const title = '<img src=x onerror="window.pwned=1"><b>bold</b>';
    const message = '</p><script>window.pwned=2</script>';
    const p = await openPage(`${daemon.url}/?transitions=1`);
    try {
      await p.until('live', (x) => x.conn === 'live');
      await sendOnce(
        daemon.socket,
        { type: 'agent_start', session_key: 'web:<i>x</i>', title },
        { type: 'tool_start', session_key: 'web:<i>x</i>', name: '<svg onload="window.pwned=3">' },
        { type: 'error', session_key: 'web:<i>x</i>', message },
      );
      const v = await p.until('the session in error', (x) => card(x, 'web:<i>x</i>')?.state === 'error' && (x.log?.length ?? 0) >= 3);
      assert.equal(card(v, 'web:<i>x</i>')!.title, title);
      assert.equal(card(v, 'web:<i>x</i>')!.error, message);
      assert.ok(v.log!.some((line) => line.includes('<svg onload="window.pwned=3">')), 'the tool name is logged as text');
      const injected = await p.page.evaluate(() => ({
        elements: document.querySelectorAll('#cards img, #cards b, #cards i, #cards script, #cards svg, #log img, #log svg, #log script').length,
        pwned: window.pwned ?? null,
      }));
      assert.deepEqual(injected, { elements: 0, pwned: null });
    } finally {
      await p.close();
    }
  }));

test('with ?transitions=1 a live log shows every transition, even a tool run shorter than one snapshot', { skip: SKIP, timeout: 60_000 }, () =>
  withDaemon(async (daemon) => {
    const p = await openPage(`${daemon.url}/?transitions=1`);
    try {
      let v = await p.until('live with an empty log', (x) => x.conn === 'live' && x.log !== null);
      assert.deepEqual(v.log, []);
      // One write: the snapshots coalesce (the tool is over before the next one), the transitions do not.
      await sendOnce(
        daemon.socket,
        { type: 'agent_start', session_key: 'discord:xyz789', title: 'Quick lookup' },
        { type: 'tool_start', session_key: 'discord:xyz789', name: 'web_search' },
        { type: 'tool_result', session_key: 'discord:xyz789' },
      );
      // The transitions come before the snapshot that carries the title; then the log lines take the title too.
      v = await p.until('three transitions, named by the title', (x) => (x.log?.length ?? 0) >= 3 && x.log!.every((line) => line.includes('Quick lookup')));
      // Newest first.
      assert.match(v.log![0]!, /Quick lookup Running tool → Streaming$/);
      assert.match(v.log![1]!, /Quick lookup Thinking → Running tool web_search$/);
      assert.match(v.log![2]!, /Quick lookup started · Thinking$/);
      assert.match(v.log![2]!, /^\d\d:\d\d:\d\d /, 'each line has its time');

      await sendOnce(daemon.socket, { type: 'agent_end', session_key: 'discord:xyz789' });
      v = await p.until('the end logged', (x) => (x.log?.length ?? 0) >= 4);
      assert.match(v.log![0]!, /Streaming → ended$/);
    } finally {
      await p.close();
    }
  }));

test('with ?compact=1 each session is one line', { skip: SKIP, timeout: 60_000 }, () =>
  withDaemon(async (daemon) => {
    await sendOnce(
      daemon.socket,
      { type: 'agent_start', session_key: 'websocket:a', title: 'A title long enough to be cut short rather than wrap onto a second line in a widget' },
      { type: 'tool_start', session_key: 'websocket:a', name: 'bash' },
      { type: 'token_usage', session_key: 'websocket:a', input: 123456, output: 7890 },
      { type: 'agent_start', session_key: 'slack:b' },
      { type: 'error', session_key: 'slack:b', message: 'Rate limit exceeded while calling the model provider, retrying later' },
    );
    for (const width of [360, 1280]) {
      const p = await openPage(`${daemon.url}/?compact=1`, { width });
      try {
        await p.until('two sessions', (x) => x.cards.length === 2);
        const rows = await p.page.evaluate(() =>
          Array.from(document.querySelectorAll('#cards .card-body')).map((body) => {
            const parts = Array.from(body.querySelectorAll(':scope > *'))
              .filter((e) => window.getComputedStyle(e).display !== 'none')
              .map((e) => e.getBoundingClientRect());
            // On one line, every visible part of a row spans a common horizontal band.
            return Math.min(...parts.map((r) => r.bottom)) > Math.max(...parts.map((r) => r.top));
          }),
        );
        assert.deepEqual(rows, [true, true], `one line per session at ${width} px`);
        assert.equal(await p.page.evaluate(() => document.querySelector('body.compact') !== null), true);
        const fits = await p.page.evaluate(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth);
        assert.equal(fits, true, `nothing overflows at ${width} px`);
      } finally {
        await p.close();
      }
    }
  }));

test('the page reconnects by itself after the daemon restarts, and says so meanwhile', { skip: SKIP, timeout: 120_000 }, async () => {
  const port = await freePort();
  const dir = tempDir();
  const socket = join(dir, 'ingest.sock');
  let daemon = await startDaemon({ args: ['--port', String(port)], socket });
  const p = await openPage(`${daemon.url}/`);
  try {
    await p.until('live', (x) => x.conn === 'live');
    await sendOnce(socket, { type: 'agent_start', session_key: 'websocket:before', title: 'Before the restart' });
    await p.until('the session', (x) => card(x, 'websocket:before') !== undefined);

    await daemon.stop();
    let v = await p.until('reconnecting', (x) => x.conn === 'reconnecting');
    assert.equal(v.stale, true, 'what is shown is marked as the last known state');
    assert.ok(card(v, 'websocket:before'), 'and stays on screen meanwhile');
    // The page keeps retrying (the daemon asked for 2 s); after a while it says the daemon is gone.
    v = await p.until('daemon gone', (x) => x.conn === 'gone', 30_000);
    assert.equal(v.connText, 'Daemon gone · retrying');

    daemon = await startDaemon({ args: ['--port', String(port)], socket });
    v = await p.until('live again, with the new daemon\'s (empty) state', (x) => x.conn === 'live' && x.cards.length === 0, 30_000);
    assert.equal(v.stale, false);
    assert.equal(v.badge, 'idle');
    // Said together, so that a screen reader does not drop the first half.
    await p.until('the reconnection announced with the state it brought', (x) => x.announcer === 'Connection restored. Agent idle.');
    await sendOnce(socket, { type: 'agent_start', session_key: 'telegram:after', title: 'After the restart' });
    await p.until('the new daemon\'s session', (x) => card(x, 'telegram:after')?.state === 'thinking');
  } finally {
    await p.close();
    await daemon.stop();
  }
});

test('with a key configured, the page without ?key= says a key is needed and how to add it; with the key it shows the data', { skip: SKIP, timeout: 90_000 }, () =>
  withDaemon(
    async (daemon) => {
      const bare = await openPage(`${daemon.url}/`);
      try {
        const v = await bare.until('the key notice', (x) => x.keyNotice);
        assert.equal(v.conn, 'key');
        assert.equal(v.connText, 'Key needed');
        assert.equal(v.overview, false, 'no empty badge pretending to be a state');
        assert.match(v.keyWhy, /present its API key/);
        const notice = await bare.page.evaluate(() => (document.querySelector('#key-notice')?.textContent ?? '').replace(/\s+/g, ' '));
        assert.match(notice, /Add \?key=YOUR_KEY to this page's address/);
        assert.match(notice, /value of POCKETPAW_STATUS_API_KEY in the daemon's environment/, 'names where this daemon takes its key from');

        // The notice's form: type the key, press Enter, and the page comes back with ?key= and the data.
        await bare.page.fill('#key-input', 'k');
        await bare.page.press('#key-input', 'Enter');
        await bare.page.waitForURL(/[?&]key=k(&|$)/, { timeout: WAIT_MS });
        await bare.until('the data after entering the key', (x) => x.badge === 'idle' && x.conn === 'live' && !x.keyNotice);
      } finally {
        await bare.close();
      }

      const wrong = await openPage(`${daemon.url}/?key=nope`);
      try {
        const v = await wrong.until('the key notice', (x) => x.keyNotice);
        assert.match(v.keyWhy, /not accepted/);
      } finally {
        await wrong.close();
      }

      const keyed = await openPage(`${daemon.url}/?key=k&transitions=1`);
      try {
        let v = await keyed.until('the data', (x) => x.badge === 'idle' && x.conn === 'live');
        assert.equal(v.keyNotice, false);
        await sendOnce(daemon.socket, { type: 'agent_start', session_key: 'websocket:keyed', title: 'Behind a key' });
        v = await keyed.until('the session', (x) => card(x, 'websocket:keyed')?.state === 'thinking' && (x.log?.length ?? 0) >= 1);
        assert.equal(card(v, 'websocket:keyed')!.title, 'Behind a key');
        const links = await keyed.page.evaluate(() => Array.from(document.querySelectorAll('footer a')).map((a) => a.getAttribute('href') ?? ''));
        assert.ok(links.every((href) => /[?&]key=k(&|$)/.test(href)), `the view links keep the key: ${links.join(' ')}`);
      } finally {
        await keyed.close();
      }
    },
    { env: { POCKETPAW_STATUS_API_KEY: 'k' } },
  ));

test('the key notice names where this daemon takes its key from: a key file, never its path', { skip: SKIP, timeout: 60_000 }, async () => {
  const dir = tempDir();
  const path = join(dir, 'secret-key-file');
  writeFileSync(path, 'file-key-Q1w2E3r4T5y6\n', { mode: 0o600 });
  await withDaemon(
    async (daemon) => {
      const p = await openPage(`${daemon.url}/`);
      try {
        await p.until('the key notice', (x) => x.keyNotice);
        const notice = await p.page.evaluate(() => (document.querySelector('#key-notice')?.textContent ?? '').replace(/\s+/g, ' '));
        assert.match(notice, /key file the daemon was started with/);
        assert.doesNotMatch(notice, /POCKETPAW_STATUS_API_KEY in the daemon's environment/);
        assert.ok(!notice.includes(path) && !notice.includes('secret-key-file') && !notice.includes('Q1w2E3r4T5y6'), 'neither the path nor the key');
      } finally {
        await p.close();
      }
    },
    { args: ['--api-key-file', path] },
  );
});

test('keyboard and screen readers: landmarks, a polite live region, a skip link first in the tab order', { skip: SKIP, timeout: 60_000 }, () =>
  withDaemon(async (daemon) => {
    const p = await openPage(`${daemon.url}/`);
    try {
      await p.until('idle', (x) => x.badge === 'idle');
      const a11y = await p.page.evaluate(() => ({
        lang: document.documentElement.getAttribute('lang'),
        landmarks: ['header', 'main', 'footer', 'nav'].map((tag) => document.querySelectorAll(tag).length > 0),
        live: ['role', 'aria-live', 'aria-atomic'].map((name) => document.querySelector('#announcer')?.getAttribute(name)),
        headings: Array.from(document.querySelectorAll('h1, h2')).map((h) => h.tagName),
      }));
      assert.equal(a11y.lang, 'en');
      assert.deepEqual(a11y.landmarks, [true, true, true, true]);
      assert.deepEqual(a11y.live, ['status', 'polite', 'true']);
      assert.equal(a11y.headings[0], 'H1');

      await p.page.keyboard.press('Tab');
      assert.equal(await p.page.evaluate(() => document.activeElement?.textContent ?? ''), 'Skip to sessions');
      await p.page.keyboard.press('Enter');
      assert.equal(await p.page.evaluate(() => document.activeElement?.id ?? ''), 'sessions-heading');
      await p.page.keyboard.press('Tab');
      assert.equal(await p.page.evaluate(() => document.activeElement?.textContent ?? ''), 'Compact view', 'the view links come next');
    } finally {
      await p.close();
    }
  }));

test('at 360 px and 1920 px, light and dark, nothing overflows; screenshots go to test/artifacts/', { skip: SKIP, timeout: 120_000 }, () =>
  withDaemon(async (daemon) => {
    const long = 'x'.repeat(160);
    await sendOnce(
      daemon.socket,
      { type: 'agent_start', session_key: 'websocket:a1b2c3', title: 'Help with Python script' },
      { type: 'tool_start', session_key: 'websocket:a1b2c3', name: 'bash' },
      { type: 'token_usage', session_key: 'websocket:a1b2c3', input: 1500, output: 320 },
      { type: 'agent_start', session_key: 'telegram:884213', title: "Summarise this week's standup notes for the whole team" },
      { type: 'agent_start', session_key: 'discord:xyz789' },
      { type: 'stream_start', session_key: 'discord:xyz789' },
      { type: 'token_usage', session_key: 'discord:xyz789', input: 12800, output: 2044 },
      { type: 'agent_start', session_key: 'slack:T01-C02', title: 'Plan a trip to Lisbon' },
      { type: 'ask_user_question', session_key: 'slack:T01-C02' },
      { type: 'agent_start', session_key: `whatsapp:${long}` },
      { type: 'tool_start', session_key: `whatsapp:${long}`, name: `tool_${long}` },
      { type: 'error', session_key: `whatsapp:${long}`, message: `Rate limit exceeded: the provider answered 429 ${long}` },
    );
    const backgrounds: Record<string, string> = {};
    for (const [width, height] of [[360, 780], [1920, 1080]] as const) {
      for (const colorScheme of ['light', 'dark'] as const) {
        for (const compact of [false, true]) {
          const name = `page-${width}-${colorScheme}${compact ? '-compact' : ''}`;
          const p = await openPage(`${daemon.url}/?transitions=1${compact ? '&compact=1' : ''}`, { width, height });
          try {
            await p.page.emulateMedia({ colorScheme });
            await p.until('five sessions', (x) => x.cards.length === 5 && x.conn === 'live');
            // Something in the transition log too, so that the screenshots show it.
            await sendOnce(daemon.socket, { type: 'tool_start', session_key: 'telegram:884213', name: 'web_search' }, { type: 'tool_result', session_key: 'telegram:884213' }, { type: 'thinking', session_key: 'telegram:884213' });
            await p.until('the transitions', (x) => (x.log?.length ?? 0) >= 3);
            const size = await p.page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }));
            assert.ok(size.scroll <= size.client, `${name}: the page is ${size.scroll} px wide in a ${size.client} px window`);
            backgrounds[`${width}-${colorScheme}`] = await p.page.evaluate(() => window.getComputedStyle(document.body).backgroundColor);
            await p.page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
            assert.deepEqual(p.errors, []);
          } finally {
            await p.close();
          }
        }
      }
    }
    // The colour scheme is followed: dark has a darker background than light, at both widths.
    for (const width of [360, 1920]) {
      const luminance = (rgb: string) => (rgb.match(/\d+/g) ?? []).slice(0, 3).reduce((sum, n) => sum + Number(n), 0);
      assert.ok(luminance(backgrounds[`${width}-dark`]!) < luminance(backgrounds[`${width}-light`]!) / 2, JSON.stringify(backgrounds));
    }
  }));
