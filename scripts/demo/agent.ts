/**
 * A simulated agent for the demo: a few conversations on different channels, each moving through every state at a
 * human pace (thinking, running tools, streaming, waiting for the user, now and then an error), with titles and growing
 * token counts. It talks to the daemon the way a real TypeScript agent would: through protocol/emitter.ts and the
 * ingest socket.
 *
 * `npm run demo` runs it next to a daemon of its own. To drive a daemon that is already running:
 *
 *     node --import tsx scripts/demo/agent.ts [--socket PATH] [--pace X]
 */
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { StatusEmitter, type EmitterEvent } from '../../protocol/emitter.ts';

export interface AgentOptions {
  /** The ingest socket; default as the emitter's (POCKETPAW_STATUS_SOCKET, else serve's default). */
  readonly socket?: string;
  /** Multiplies every wait: 1 is a human pace (seconds), 0.05 a test's. */
  readonly pace?: number;
  /** How many conversations run at once. */
  readonly workers?: number;
}

export interface RunningAgent {
  readonly emitter: StatusEmitter;
  /** Stops every conversation and closes the connection (the daemon then marks unfinished sessions in error). */
  stop(): Promise<void>;
}

const CHANNELS = [['websocket'], ['telegram', 'whatsapp'], ['discord'], ['slack', 'websocket']] as const;

const TITLES = [
  'Help with Python script',
  "Summarise this week's standup notes",
  'Plan a weekend trip to Lisbon',
  'Why is CI flaky on main?',
  'Draft a reply to the landlord',
  'Translate the menu into Spanish',
  'Compare three laptops under 1000 EUR',
  'Find a time for the team offsite',
  'Refactor the billing module',
  'Explain this stack trace',
];

const TOOLS = ['web_search', 'read_file', 'bash', 'python', 'browser', 'memory_search', 'write_file', 'calendar'];

const ERRORS = [
  'Rate limit exceeded (429) from the model provider',
  "Tool 'bash' timed out after 30 s",
  'Connection reset by the model provider',
  'Context window exceeded: 201,344 tokens > 200,000',
];

/** Counts runs across every conversation, so that errors come now and then, not in bursts. */
let runs = 0;

export function startAgent(options: AgentOptions = {}): RunningAgent {
  const pace = options.pace ?? 1;
  const emitter = new StatusEmitter({ socket: options.socket, agent: 'pocketpaw-status-demo' });
  const abort = new AbortController();
  const { signal } = abort;
  const wait = (minSeconds: number, maxSeconds: number) =>
    sleep((minSeconds + Math.random() * (maxSeconds - minSeconds)) * 1000 * pace, undefined, { signal });
  const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;

  async function conversation(worker: number): Promise<void> {
    const channels = CHANNELS[worker % CHANNELS.length]!;
    // Staggered, so that the sessions are not all in step.
    await sleep(worker * 1.3 * 1000 * pace, undefined, { signal });
    for (let round = 0; ; round++) {
      const key = `${channels[round % channels.length]}:${randomBytes(3).toString('hex')}`;
      const title = pick(TITLES);
      const fails = ++runs % 5 === 0;
      await run(key, title, fails);
      await wait(2, 5); // between conversations: fewer sessions, sometimes none at all
    }
  }

  async function run(key: string, title: string, fails: boolean): Promise<void> {
    const send = (event: EmitterEvent) => emitter.emit({ ...event, session_key: key });
    const tokens = { input: 0, output: 0 };
    const useTokens = (input: number, output: number) => {
      tokens.input += input;
      tokens.output += output;
      send({ type: 'token_usage', input: tokens.input, output: tokens.output });
    };

    // Half of the conversations get their title a moment later, as when memory supplies it.
    const titledLater = Math.random() < 0.5;
    send({ type: 'agent_start', title: titledLater ? null : title });
    await wait(1.5, 3);
    if (titledLater) send({ type: 'title', title });
    useTokens(800 + Math.floor(Math.random() * 2500), 0);

    const steps = 1 + Math.floor(Math.random() * 3);
    const failAt = fails ? Math.floor(Math.random() * steps) : -1;
    for (let step = 0; step < steps; step++) {
      const tool = pick(TOOLS);
      send({ type: 'tool_start', name: tool });
      // Now and then a tool that is over in a blink: the page's transition log (?transitions=1) still shows it.
      await (Math.random() < 0.25 ? sleep(200 * pace, undefined, { signal }) : wait(1, 4));
      if (step === failAt) {
        send({ type: 'error', message: pick(ERRORS) });
        await wait(5, 8);
        // The user retries: the same session starts again.
        send({ type: 'agent_start', title });
        await wait(1, 2);
        continue;
      }
      // A tool result puts the session in `streaming` (the model goes on writing), as PocketPaw reports it.
      send({ type: 'tool_result', name: tool, status: 'success' });
      useTokens(300 + Math.floor(Math.random() * 1500), 20 + Math.floor(Math.random() * 80));
      await wait(1, 2.5);
      if (step < steps - 1) {
        send({ type: 'thinking' });
        await wait(1, 2);
      }
    }

    send({ type: 'stream_start' });
    for (let chunk = 0, chunks = 2 + Math.floor(Math.random() * 3); chunk < chunks; chunk++) {
      await wait(0.8, 1.4);
      useTokens(0, 60 + Math.floor(Math.random() * 200));
    }
    send({ type: 'stream_end' });

    if (Math.random() < 0.4) {
      send({ type: 'ask_user_question' });
      await wait(4, 7);
      send({ type: 'thinking' });
      await wait(1, 2);
      send({ type: 'stream_start' });
      await wait(1.5, 3);
      useTokens(0, 100 + Math.floor(Math.random() * 300));
      send({ type: 'stream_end' });
    }
    send({ type: 'agent_end' });
  }

  const workers = Array.from({ length: options.workers ?? 4 }, (_, i) =>
    conversation(i).catch((error: unknown) => {
      if (!signal.aborted) throw error;
    }),
  );

  return {
    emitter,
    async stop() {
      abort.abort();
      await Promise.all(workers);
      await emitter.close();
    },
  };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { socket: { type: 'string' }, pace: { type: 'string' } } });
  const pace = values.pace === undefined ? 1 : Number(values.pace);
  if (!(pace > 0)) {
    process.stderr.write(`agent: invalid --pace ${JSON.stringify(values.pace)}: expected a number greater than 0\n`);
    process.exit(2);
  }
  const agent = startAgent({ socket: values.socket, pace });
  process.stdout.write(`Simulating 4 conversations on ${agent.emitter.socketPath}; Ctrl+C to stop.\n`);
  const stop = () => void agent.stop().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
