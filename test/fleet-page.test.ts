/**
 * The status page served by the fleet, in a real browser (Debian's Chromium through playwright-core, as
 * test/page.test.ts): sessions grouped under a heading per node that shows its availability.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import type { StatusEvent } from '../protocol/events.ts';
import { SimNode } from '../scripts/bench/sim-nodes.ts';
import { MOSQUITTO_SKIP, startBroker, type TestBroker } from './helpers/broker.ts';
import { startFleet, type TestFleet } from './helpers/fleet.ts';
import { skipWithout } from './helpers/tools.ts';

const CHROMIUM = '/usr/bin/chromium';
const SKIP = MOSQUITTO_SKIP || skipWithout(CHROMIUM, 'chromium');

interface Row {
  kind: string;
  text: string;
  online: string | null;
  key: string | null;
  state: string | null;
  error: string | null;
}
declare const document: { querySelectorAll(s: string): ArrayLike<{ className: string; textContent: string | null; dataset: Record<string, string | undefined>; querySelector(s: string): { textContent: string | null; hidden: boolean } | null }> };

/** Runs in the page: the list's children in order, headings and cards alike. */
const readList = (): Row[] =>
  Array.from(document.querySelectorAll('#cards > li')).map((li) => {
    const error = li.querySelector('.error-message');
    return {
      kind: li.className === 'node-head' ? 'node' : 'card',
      text: (li.querySelector('h3')?.textContent ?? '').trim(),
      online: li.dataset.online ?? null,
      key: li.dataset.key ?? null,
      state: li.dataset.state ?? null,
      error: error && !error.hidden ? (error.textContent ?? '').trim() : null,
    };
  });

let browser: Browser;
let broker: TestBroker;
let fleet: TestFleet;
const nodes: SimNode[] = [];

before(async () => {
  if (SKIP) return;
  broker = await startBroker();
  nodes.push(await SimNode.connect(broker.url, 'alpha'), await SimNode.connect(broker.url, 'beta'), await SimNode.connect(broker.url, 'gamma'));
  await nodes[0]!.apply([{ type: 'agent_start', session_key: 'cli:a1', title: 'Alpha task' } as StatusEvent]);
  await nodes[1]!.apply([{ type: 'agent_start', session_key: 'cli:b1', title: 'Beta task' } as StatusEvent, { type: 'agent_start', session_key: 'cli:b2' } as StatusEvent]);
  fleet = await startFleet(broker.url);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] });
});

after(async () => {
  await browser?.close();
  await fleet?.stop();
  for (const node of nodes) node.client.end(true);
  await broker?.stop();
});

test('the fleet page groups sessions under each node, shows each node online or offline, and a dead node\'s sessions as "node offline"', { skip: SKIP, timeout: 90_000 }, async () => {
  const context = await browser.newContext({ locale: 'en-US' });
  await context.addInitScript('globalThis.__name = (f) => f;');
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  try {
    await page.goto(`${fleet.url}/`);
    const until = async (what: string, check: (rows: Row[]) => boolean): Promise<Row[]> => {
      const deadline = Date.now() + 10_000;
      for (;;) {
        const rows = await page.evaluate(readList);
        if (check(rows)) return rows;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; the page shows ${JSON.stringify(rows)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    let rows = await until('three nodes', (r) => r.filter((x) => x.kind === 'node').length === 3 && r.some((x) => x.key === 'beta/cli:b2'));
    assert.deepEqual(
      rows.map((r) => (r.kind === 'node' ? `# ${r.text} ${r.online}` : r.key)),
      ['# alpha true', 'alpha/cli:a1', '# beta true', 'beta/cli:b1', 'beta/cli:b2', '# gamma true'],
    );
    nodes[1]!.kill();
    rows = await until('beta offline', (r) => r.some((x) => x.kind === 'node' && x.text === 'beta' && x.online === 'false'));
    assert.deepEqual(
      rows.filter((r) => r.key?.startsWith('beta/')).map((r) => [r.state, r.error]),
      [['error', 'node offline'], ['error', 'node offline']],
    );
    assert.deepEqual(errors, [], 'no script errors (a CSP refusal would show here)');
  } finally {
    await context.close();
  }
});
