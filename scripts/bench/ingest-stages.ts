/**
 * Where the ingest benchmark's CPU goes, stage by stage (a diagnostic, not a goal figure).
 *
 * The ingest benchmark's events, cut into 64 KiB reads as the socket delivers them, run in this one process through
 * growing prefixes of the daemon's own ingest path: the bare splitter (split + JSON.parse, the benchmark's baseline),
 * the daemon's line framer with JSON.parse, then decoding (zod's compiled validators), the batch of one read, the fold,
 * and the store with its change feed and SSE hub (no client). Each stage's CPU per event, and what it adds to the stage
 * before, is the lower quartile of R alternating runs: in one process there are no sockets, so the differences are
 * the stages' own cost, and the quartile is what holds on a machine doing other work (run it with `nice -n -15` there).
 *
 * Run: node --import tsx scripts/bench/ingest-stages.ts [--events 300000] [--runs 11]
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { ChangeFeed } from '../../daemon/feed/feed.ts';
import { decodeLine } from '../../daemon/ingest/decode.ts';
import { LineFramer } from '../../daemon/ingest/lines.ts';
import type { Logger } from '../../daemon/log.ts';
import { SseHub } from '../../daemon/sse/hub.ts';
import { SseStats } from '../../daemon/sse/stats.ts';
import { foldAll, initialState, type FoldInput } from '../../daemon/state/fold.ts';
import { Snapshots } from '../../daemon/state/snapshots.ts';
import { StatusStore } from '../../daemon/state/store.ts';
import { generateEvents } from './ingest.ts';

const { values } = parseArgs({ options: { events: { type: 'string', default: '300000' }, runs: { type: 'string', default: '11' } } });
const events = Number(values.events);
const runs = Number(values.runs);

const READ_BYTES = 64 * 1024;
const reads: Buffer[] = [];
for (const chunk of generateEvents(events, 'stages').chunks) {
  for (let at = 0; at < chunk.length; at += READ_BYTES) reads.push(Buffer.from(chunk.subarray(at, at + READ_BYTES)));
}
const producer = { id: 1, agent: false };
const fresh = () => initialState({ maxConcurrent: 5, errorTtlMs: 60_000 });
const silent = { info() {}, warn() {}, error() {}, debug() {} } as unknown as Logger;

/** Each stage is a prefix of the daemon's path; `onRead` runs after each read's lines (the batch's fold). */
function framed(onLine: (line: Buffer | string, utf8: boolean) => void, onRead: () => void = () => {}): () => void {
  return () => {
    const framer = new LineFramer(1 << 20, { line: (line, _no, utf8) => onLine(line, utf8), oversized() {} });
    for (const read of reads) {
      framer.push(read);
      onRead();
    }
  };
}

let batch: FoldInput[] = [];
const collect = (line: Buffer | string, utf8: boolean) => {
  const decoded = decodeLine(line, utf8);
  if (decoded.kind === 'event') batch.push({ kind: 'event', event: decoded.event, producer });
};
let state = fresh();
const feed = new ChangeFeed();
const clock = () => performance.now();
const store = new StatusStore(fresh(), feed, clock);
new SseHub(feed, new Snapshots(store, Date.now()), clock, {
  heartbeatMs: 15_000, minIntervalMs: 100, replay: 1000, writeTimeoutMs: 30_000, resume: null, maxClientBytes: 1 << 20, maxTotalBytes: 1 << 28,
}, new SseStats(), silent);

const stages: [string, () => void][] = [
  ['bare split + JSON.parse (the baseline)', () => {
    let tail = '';
    for (const read of reads) {
      const text = tail + read.toString('utf8');
      let start = 0;
      for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
        JSON.parse(text.slice(start, nl));
        start = nl + 1;
      }
      tail = text.slice(start);
    }
  }],
  ['line framer + JSON.parse', framed((line) => JSON.parse(typeof line === 'string' ? line : line.toString('utf8')))],
  ['+ decode (zod, compiled)', framed((line, utf8) => decodeLine(line, utf8))],
  ['+ batch of one read', framed(collect, () => (batch = []))],
  ['+ fold', framed(collect, () => {
    state = foldAll(state, batch, 1).state;
    batch = [];
  })],
  ['+ store, change feed, SSE hub', framed(collect, () => {
    store.applyAll(batch);
    batch = [];
  })],
];

const nsPerEvent = (run: () => void): number => {
  const before = process.cpuUsage();
  run();
  const used = process.cpuUsage(before);
  return ((used.user + used.system) * 1000) / events;
};
for (let i = 0; i < 3; i++) for (const [, run] of stages) run();
const samples = stages.map((): number[] => []);
for (let r = 0; r < runs; r++) stages.forEach(([, run], i) => samples[i]!.push(nsPerEvent(run)));
const quartile = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 4)]!;
const bare = quartile(samples[0]!);
let previous = 0;
for (const [i, [name]] of stages.entries()) {
  const ns = quartile(samples[i]!);
  const added = i === 0 ? '' : `${ns - previous >= 0 ? '+' : ''}${(ns - previous).toFixed(0)} ns`;
  console.log(`${name.padEnd(40)} ${ns.toFixed(0).padStart(5)} ns/event  ${added.padStart(8)}   baseline/this ${(bare / ns).toFixed(2)}`);
  previous = ns;
}
console.log(`(${events.toLocaleString('en')} events in ${reads.length} reads of 64 KiB, lower quartile of ${runs} alternating runs)`);
