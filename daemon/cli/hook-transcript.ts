/**
 * The current turn's token counts, read from Claude Code's transcript (`transcript_path`, JSON Lines) by the hook.
 *
 * The turn is everything after the last real user prompt. Its count is the sum over its assistant entries of
 * `usage.input_tokens + cache_creation_input_tokens + cache_read_input_tokens` (input) and `usage.output_tokens`
 * (output), each `message.id` once: Claude Code writes one entry per content block, each repeating the message's usage.
 *
 * The hook runs twice per tool call and transcripts grow to tens of megabytes, so the file is read from its end: at
 * most TRANSCRIPT_WINDOW_BYTES, at most TRANSCRIPT_BUDGET_MS of work. When the turn does not start inside that window,
 * or the budget runs out, or the file is missing or unreadable, the answer is "no counts" (null), never a wrong count:
 * the daemon keeps the highest totals it was sent for the run. Node built-ins only (the hook's code path stays light).
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

export const TRANSCRIPT_WINDOW_BYTES = 4 * 1024 * 1024;
export const TRANSCRIPT_BUDGET_MS = 30;

export interface TurnTokens {
  readonly input: number;
  readonly output: number;
}

interface Options {
  readonly windowBytes?: number;
  readonly budgetMs?: number;
}

const FIRST_CHUNK_BYTES = 64 * 1024;
const ASSISTANT = Buffer.from('"type":"assistant"');
const USER = Buffer.from('"type":"user"');
const TOOL_RESULT = Buffer.from('"type":"tool_result"');

/** The turn's run-cumulative counts, or null when they cannot be known cheaply and for sure. */
export function turnTokens(path: unknown, options: Options = {}): TurnTokens | null {
  const deadline = performance.now() + (options.budgetMs ?? TRANSCRIPT_BUDGET_MS);
  if (typeof path !== 'string' || path === '') return null;
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return null;
  }
  try {
    return scan(fd, options.windowBytes ?? TRANSCRIPT_WINDOW_BYTES, deadline);
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads backwards in growing chunks (most turns end within the first 64 KiB), line by line, until the turn's prompt,
 * the start of the window, or the deadline. Lines are filtered as bytes; only assistant entries and prompts are
 * decoded and parsed (tool results are most of the bytes).
 */
function scan(fd: number, windowBytes: number, deadline: number): TurnTokens | null {
  const stat = fstatSync(fd);
  if (!stat.isFile() || stat.size === 0) return null;
  const limit = Math.max(0, stat.size - windowBytes);
  // Per message id: its usage (the latest entry written, which is read first, has the final output count).
  const messages = new Map<string, TurnTokens>();
  let input = 0;
  let output = 0;
  /** Whether the line was this turn's prompt (the scan stops there). */
  const take = (line: Buffer): boolean => {
    if (line.includes(ASSISTANT)) {
      const usage = assistantUsage(line.toString('utf8'));
      if (usage === null) return false;
      if (usage.id === null) {
        input += usage.input;
        output += usage.output;
      } else {
        const seen = messages.get(usage.id);
        messages.set(usage.id, seen ? { input: Math.max(seen.input, usage.input), output: Math.max(seen.output, usage.output) } : usage);
      }
      return false;
    }
    return line.includes(USER) && !line.includes(TOOL_RESULT) && isPrompt(line.toString('utf8'));
  };

  let pos = stat.size;
  let chunk = FIRST_CHUNK_BYTES;
  // The bytes before the first newline of the chunk read last: a line whose start is further back.
  let carry: Buffer | null = null;
  let turnStart = false;
  let lines = 0;
  for (;;) {
    const start = Math.max(limit, pos - chunk);
    const buffer = Buffer.allocUnsafe(pos - start);
    let read = 0;
    while (read < buffer.length) {
      const n = readSync(fd, buffer, read, buffer.length - read, start + read);
      if (n === 0) return null; // the file shrank under us
      read += n;
    }
    const data: Buffer = carry === null ? buffer : Buffer.concat([buffer, carry]);
    pos = start;
    chunk *= 2;
    let end = data.length;
    while (end > 0) {
      const newline = data.lastIndexOf(10, end - 1);
      if (newline < 0) break;
      if ((++lines & 63) === 0 && performance.now() > deadline) return null;
      if (take(data.subarray(newline + 1, end))) {
        turnStart = true;
        break;
      }
      end = newline;
    }
    if (turnStart) break;
    if (start === 0) {
      // The file's first line is whole.
      if (end > 0) turnStart = take(data.subarray(0, end));
      break;
    }
    // The window began inside the turn: what it holds is only part of the count.
    if (start === limit) return null;
    carry = data.subarray(0, end);
  }
  if (performance.now() > deadline) return null;
  for (const m of messages.values()) {
    input += m.input;
    output += m.output;
  }
  return messages.size === 0 && input === 0 && output === 0 ? null : { input, output };
}

function assistantUsage(line: string): { id: string | null; input: number; output: number } | null {
  const entry = parseObject(line);
  if (entry === null || entry.type !== 'assistant' || entry.isSidechain === true) return null;
  const message = asObject(entry.message);
  const usage = asObject(message?.usage);
  if (!message || !usage) return null;
  return {
    id: typeof message.id === 'string' && message.id !== '' ? message.id : null,
    input: count(usage.input_tokens) + count(usage.cache_creation_input_tokens) + count(usage.cache_read_input_tokens),
    output: count(usage.output_tokens),
  };
}

/** A prompt the person typed: a user entry whose content is text, not tool results, and not a note Claude Code adds. */
function isPrompt(line: string): boolean {
  const entry = parseObject(line);
  if (entry === null || entry.type !== 'user' || entry.isMeta === true || entry.isSidechain === true) return false;
  const content = asObject(entry.message)?.content;
  if (typeof content === 'string') return true;
  return Array.isArray(content) && !content.some((block) => asObject(block)?.type === 'tool_result');
}

type Json = Readonly<Record<string, unknown>>;

function parseObject(line: string): Json | null {
  try {
    return asObject(JSON.parse(line));
  } catch {
    return null; // a malformed line costs only itself
  }
}

function asObject(value: unknown): Json | null {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Json) : null;
}

function count(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? Math.trunc(value) : 0;
}
