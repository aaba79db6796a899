/**
 * --max-sessions: a flood of distinct session keys cannot grow the daemon without bound, and cannot push out the
 * sessions that are live.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { getStatus, Producer, startDaemon, waitFor } from '../helpers/daemon.ts';
import { metric } from '../helpers/metrics.ts';

test('--max-sessions: a new key beyond the limit is refused with one error answer, counted, logged once; live sessions stay', async () => {
  const d = await startDaemon({ args: ['--max-sessions', '3'] });
  try {
    const live = await Producer.connect(d.socket);
    live.send(...['live:1', 'live:2', 'live:3'].map((k) => ({ type: 'agent_start', session_key: k })));
    await waitFor(async () => (await getStatus(d.url)).global.active_sessions === 3, { what: 'three live sessions' });

    const flood = await Producer.connect(d.socket);
    flood.send(...Array.from({ length: 50 }, (_, i) => ({ type: 'agent_start', session_key: `flood:${i}` })));
    const replies = await flood.waitReplies(50);
    assert.equal(replies.length, 50, 'one answer per refused start');
    assert.match((JSON.parse(replies[0]!) as { error: string }).error, /^line 1: agent_start for "flood:0" refused: 3 sessions are live \(the --max-sessions limit\)/);
    assert.equal(await metric(d.url, 'pocketpaw_status_sessions_refused_total'), 50);
    assert.equal(await metric(d.url, 'pocketpaw_status_events_ingested_total', { type: 'agent_start' }), 3, 'refused starts are not counted as ingested');

    // The live producer carries on; a restart of a live key is not a new session; ending one makes room.
    live.send({ type: 'tool_start', session_key: 'live:2', name: 'bash' }, { type: 'agent_start', session_key: 'live:1' }, { type: 'agent_end', session_key: 'live:3' });
    flood.send({ type: 'agent_start', session_key: 'flood:late' });
    await waitFor(async () => (await getStatus(d.url)).sessions.some((s) => s.session_key === 'flood:late'), { what: 'the late start, after a session ended' });
    const s = await getStatus(d.url);
    assert.deepEqual(s.sessions.map((x) => x.session_key), ['live:1', 'live:2', 'flood:late']);
    assert.equal(s.sessions[1]!.tool_name, 'bash');
    assert.equal(live.replies.length, 0, 'the live producer got no error');

    const warnings = d.logs().filter((l) => /refused new sessions/.test(l.msg));
    assert.equal(warnings.length, 1, `logged once a minute at most, not per start: ${JSON.stringify(warnings)}`);
    await Promise.all([live.end(), flood.end()]);
  } finally {
    const { code } = await d.stop();
    assert.equal(code, 0);
  }
});

test('POCKETPAW_STATUS_MAX_SESSIONS sets the limit', async () => {
  const d = await startDaemon({ env: { POCKETPAW_STATUS_MAX_SESSIONS: '1' } });
  try {
    const p = await Producer.connect(d.socket);
    p.send({ type: 'agent_start', session_key: 'a:1' }, { type: 'agent_start', session_key: 'b:2' });
    const [reply] = await p.waitReplies(1);
    assert.match(reply!, /line 2: agent_start for \\"b:2\\" refused: 1 sessions are live/);
    assert.deepEqual((await getStatus(d.url)).sessions.map((x) => x.session_key), ['a:1']);
    await p.end();
  } finally {
    await d.stop();
  }
});
