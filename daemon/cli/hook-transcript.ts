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

/** The turn's run-cumulative counts, or null when they cannot be known cheaply and for sure. */
export function turnTokens(path: unknown, options: Options = {}): TurnTokens | null {
  const deadline = performance.now() + (options.budgetMs ?? TRANSCRIPT_BUDGET_MS);
  if (typeof path !== 'string' || path === '') return null;
  const tail = readTail(path, options.windowBytes ?? TRANSCRIPT_WINDOW_BYTES);
  if (tail === null) return null;
  const { text, whole } = tail;
  // Per message id: its usage (the latest entry written, which is read first, has the final output count).
  const messages = new Map<string, TurnTokens>();
  let input = 0;
  let output = 0;
  let turnStart = false;
  let end = text.length;
  let lines = 0;
  while (end > 0) {
    if ((++lines & 63) === 0 && performance.now() > deadline) return null;
    const newline = text.lastIndexOf('\n', end - 1);
    const line = text.slice(newline + 1, end);
    end = newline < 0 ? 0 : newline;
    // Cheap filters first: only assistant entries and prompts are parsed (tool results are most of the bytes).
    if (line.includes('"type":"assistant"')) {
      const usage = assistantUsage(line);
      if (usage === null) continue;
      if (usage.id === null) {
        input += usage.input;
        output += usage.output;
      } else {
        const seen = messages.get(usage.id);
        messages.set(usage.id, seen ? { input: Math.max(seen.input, usage.input), output: Math.max(seen.output, usage.output) } : usage);
      }
    } else if (line.includes('"type":"user"') && !line.includes('"type":"tool_result"') && isPrompt(line)) {
      turnStart = true;
      break;
    }
  }
  if (performance.now() > deadline) return null;
  // The window began inside the turn: what it holds is only part of the count.
  if (!turnStart && !whole) return null;
  for (const m of messages.values()) {
    input += m.input;
    output += m.output;
  }
  return messages.size === 0 && input === 0 && output === 0 ? null : { input, output };
}

/** The last `windowBytes` of the file as text, starting at a line boundary; `whole` when that is all of the file. */
function readTail(path: string, windowBytes: number): { text: string; whole: boolean } | null {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return null;
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile() || stat.size === 0) return null;
    const length = Math.min(stat.size, windowBytes);
    const start = stat.size - length;
    const buffer = Buffer.allocUnsafe(length);
    let read = 0;
    while (read < length) {
      const n = readSync(fd, buffer, read, length - read, start + read);
      if (n === 0) break;
      read += n;
    }
    let from = 0;
    if (start > 0) {
      // The first line is cut (and maybe a character in it): skip to the next whole line.
      const newline = buffer.indexOf(10);
      if (newline < 0 || newline >= read) return null;
      from = newline + 1;
    }
    return { text: buffer.toString('utf8', from, read), whole: start === 0 };
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
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
