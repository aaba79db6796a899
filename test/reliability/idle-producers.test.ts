/**
 * Idle producers and log floods (issue 13, item 9): connections that never complete a line, or go quiet, are closed
 * (hello agents never are, for idling); at --max-producers the longest-idle non-agent connection makes room; and the
 * warnings producers can cause at will are rate-limited to one per reason per 10 s, with a count of the rest.
 *
 * The timeouts are shortened with their flags (--line-timeout, --producer-idle-timeout) so the tests need not wait
 * the defaults; the waits below are bounds, not speed assertions.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Producer, session, startDaemon, waitFor, waitForStatus } from '../helpers/daemon.ts';
import { metric } from '../helpers/metrics.ts';

const closedReply = (p: Producer) => p.replies.map((r) => (JSON.parse(r) as { error: string }).error).find((e) => e.startsWith('connection closed'));

test('connections that never send a byte are closed after --line-timeout, so they cannot lock agents out', async () => {
  const d = await startDaemon({ args: ['--max-producers', '8', '--line-timeout', '2'] });
  const silent: Producer[] = [];
  try {
    for (let i = 0; i < 8; i++) silent.push(await Producer.connect(d.socket));
    await Promise.all(silent.map((p) => p.closed));
    assert.match(closedReply(silent[0]!) ?? '', /no complete line within 2 s \(--line-timeout\)/);
    assert.equal(await metric(d.url, 'pocketpaw_status_producers_closed_total', { reason: 'line_timeout' }), 8);
    const agent = await Producer.connect(d.socket);
    agent.send({ type: 'hello', agent: 'real' }, { type: 'agent_start', session_key: 'real:1' });
    await waitForStatus(d.url, (s) => session(s, 'real:1') !== undefined, 'the real agent\'s session');
    assert.equal(await metric(d.url, 'pocketpaw_status_producers_refused_total'), 0);
    await agent.end();
  } finally {
    await d.stop();
  }
});

test('a line left unfinished is closed after --line-timeout even while bytes keep trickling in', async () => {
  const d = await startDaemon({ args: ['--line-timeout', '1', '--producer-idle-timeout', '600'] });
  try {
    const p = await Producer.connect(d.socket);
    p.send({ type: 'agent_start', session_key: 'trickle:1' });
    let open = true;
    void p.closed.then(() => (open = false));
    // One byte every 100 ms: never idle, never a whole line.
    for (let i = 0; i < 100 && open; i++) {
      p.send('x');
      await new Promise((r) => setTimeout(r, 100));
    }
    await p.closed;
    assert.match(closedReply(p) ?? '', /no complete line within 1 s/);
    // The complete line before it was ingested.
    await waitForStatus(d.url, (s) => session(s, 'trickle:1') !== undefined);
  } finally {
    await d.stop();
  }
});

test('a quiet connection is closed after --producer-idle-timeout; a hello agent is never closed for idling', async () => {
  // Timeouts long enough that the agent's hello, sent right after connecting, is read before either could apply.
  const d = await startDaemon({ args: ['--producer-idle-timeout', '2', '--line-timeout', '10'] });
  try {
    const agent = await Producer.connect(d.socket);
    agent.send({ type: 'hello', agent: 'quiet-agent' }, { type: 'agent_start', session_key: 'agent:1' });
    const quiet = await Producer.connect(d.socket);
    quiet.send({ type: 'agent_start', session_key: 'quiet:1' });
    await quiet.closed;
    assert.match(closedReply(quiet) ?? '', /nothing sent for 2 s \(--producer-idle-timeout\)/);
    assert.equal(await metric(d.url, 'pocketpaw_status_producers_closed_total', { reason: 'idle' }), 1);
    // Three idle timeouts later the agent is still connected, and its session was never marked disconnected.
    await new Promise((r) => setTimeout(r, 6000));
    assert.equal(agent.socket.destroyed, false);
    assert.equal(await metric(d.url, 'pocketpaw_status_producers_connected'), 1);
    await waitForStatus(d.url, (s) => session(s, 'agent:1')?.state === 'thinking', 'the agent\'s session, untouched');
    await agent.end();
  } finally {
    await d.stop();
  }
});

test('at --max-producers the longest-idle non-agent connection is closed to make room; agents are kept', async () => {
  const d = await startDaemon({ args: ['--max-producers', '3'] });
  try {
    const agent = await Producer.connect(d.socket);
    agent.send({ type: 'hello', agent: 'keeper' });
    const oldest = await Producer.connect(d.socket);
    oldest.send({ type: 'agent_start', session_key: 'old:1' });
    await waitForStatus(d.url, (s) => session(s, 'old:1') !== undefined);
    const newer = await Producer.connect(d.socket);
    newer.send({ type: 'agent_start', session_key: 'new:1' });
    await waitForStatus(d.url, (s) => session(s, 'new:1') !== undefined);

    const incoming = await Producer.connect(d.socket);
    incoming.send({ type: 'agent_start', session_key: 'incoming:1' });
    await oldest.closed;
    assert.match(closedReply(oldest) ?? '', /producer limit \(3\) was reached and this connection had been idle the longest/);
    await waitForStatus(d.url, (s) => session(s, 'incoming:1') !== undefined, 'the newcomer\'s event');
    assert.equal(newer.socket.destroyed, false);
    assert.equal(agent.socket.destroyed, false);
    assert.equal(await metric(d.url, 'pocketpaw_status_producers_closed_total', { reason: 'evicted' }), 1);
    assert.equal(await metric(d.url, 'pocketpaw_status_producers_refused_total'), 0);

    // Only agents left at the limit: then a newcomer is refused.
    await Promise.all([newer.end(), incoming.end()]);
    const agents = [await Producer.connect(d.socket), await Producer.connect(d.socket)];
    for (const a of agents) a.send({ type: 'hello', agent: 'more' });
    await waitFor(() => d.logs().filter((l) => l.msg === 'agent connected').length === 3, { what: 'three agents' });
    const refused = await Producer.connect(d.socket);
    await refused.closed;
    assert.match(refused.replies[0] ?? '', /too many producers connected \(limit 3\)/);
    await Promise.all([agent.end(), ...agents.map((a) => a.end())]);
  } finally {
    await d.stop();
  }
});

test('a reconnect loop sending one bad line per connection logs one warning per reason per 10 s, then the count', { timeout: 60_000 }, async () => {
  const d = await startDaemon();
  try {
    const started = Date.now();
    for (let i = 0; i < 300; i++) {
      const p = await Producer.connect(d.socket);
      p.send('{not json\n');
      await p.end();
    }
    const elapsed = Date.now() - started;
    const warnings = () => d.logs().filter((l) => l.level === 40 && l.warning === 'rejected_invalid_json');
    // At most one per started window of 10 s (however slow the machine was).
    assert.ok(warnings().length <= Math.ceil(elapsed / 10_000) + 1, `${warnings().length} warnings in ${elapsed} ms`);
    // Once the window is over, what was not logged is counted.
    await waitFor(() => warnings().some((l) => typeof l.suppressed === 'number'), { what: 'the suppressed count', timeoutMs: 20_000 });
    // A warning stands for itself plus those it counts; a summary (no producer) only for those it counts.
    const total = warnings().reduce((n, l) => n + (l.producer === undefined ? 0 : 1) + (typeof l.suppressed === 'number' ? l.suppressed : 0), 0);
    assert.equal(total, 300, 'every rejection is either logged or counted');
    assert.equal(await metric(d.url, 'pocketpaw_status_lines_rejected_total', { reason: 'invalid_json' }), 300);
  } finally {
    await d.stop();
  }
});
