/**
 * Generated Claude Code transcripts (JSON Lines, the shapes documented in /work/shared/reference/claude-code-hooks.md
 * and written by Claude Code): prompts, assistant messages written as one entry per content block (each repeating the
 * message's id and usage), tool results. Used by the hook's tests and its benchmark; nothing large is committed.
 */
import { closeSync, openSync, writeSync } from 'node:fs';

export interface Usage {
  input_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
  output_tokens: number;
}

const SESSION = '4f1c9e2a-7b3d-4c8e-9a61-2d5e8f0b7c34';
let uuid = 0;
const meta = () => ({ parentUuid: null, isSidechain: false, sessionId: SESSION, uuid: `u-${++uuid}`, timestamp: '2026-11-30T10:00:00.000Z', cwd: '/home/dev/src/shop', version: '2.1.220' });

export function prompt(text: string): string {
  return JSON.stringify({ type: 'user', ...meta(), message: { role: 'user', content: text } });
}

/** A note Claude Code adds as a user entry (not something the person typed): it does not start a turn. */
export function metaNote(text: string): string {
  return JSON.stringify({ type: 'user', ...meta(), isMeta: true, message: { role: 'user', content: text } });
}

/** One API message as Claude Code writes it: `blocks` entries, each with the same id and usage. */
export function assistant(id: string, usage: Usage, blocks = 1, textBytes = 200): string[] {
  const lines: string[] = [];
  for (let i = 0; i < blocks; i++) {
    const block =
      i === blocks - 1 && blocks > 1
        ? { type: 'tool_use', id: `toolu_${id}_${i}`, name: 'Read', input: { file_path: '/home/dev/src/shop/src/checkout/discounts.ts' } }
        : { type: 'text', text: 'x'.repeat(textBytes) };
    lines.push(
      JSON.stringify({
        type: 'assistant',
        ...meta(),
        message: { id, type: 'message', role: 'assistant', model: 'claude-sonnet-4-5', content: [block], stop_reason: null, usage: { ...usage, service_tier: 'standard' } },
      }),
    );
  }
  return lines;
}

export function toolResult(toolUseId: string, bytes: number): string {
  return JSON.stringify({
    type: 'user',
    ...meta(),
    message: { role: 'user', content: [{ type: 'tool_result', tool_use_id: toolUseId, content: 'r'.repeat(bytes) }] },
  });
}

export function usage(input: number, output: number, cacheCreation = 0, cacheRead = 0): Usage {
  return { input_tokens: input, cache_creation_input_tokens: cacheCreation, cache_read_input_tokens: cacheRead, output_tokens: output };
}

/** What the hook should report for these messages: each id once. */
export function turnSum(messages: readonly Usage[]): { input: number; output: number } {
  let input = 0;
  let output = 0;
  for (const u of messages) {
    input += u.input_tokens + u.cache_creation_input_tokens + u.cache_read_input_tokens;
    output += u.output_tokens;
  }
  return { input, output };
}

/**
 * Writes a transcript of about `bytes` bytes of earlier turns (each a prompt, tool calls and ~64 KiB tool results),
 * then `lastTurn`'s lines. Returns the size written.
 */
export function writeBigTranscript(path: string, bytes: number, lastTurn: readonly string[]): number {
  const fd = openSync(path, 'w');
  let written = 0;
  try {
    let turn = 0;
    while (written < bytes) {
      turn++;
      const lines = [prompt(`Earlier request number ${turn}`)];
      for (let call = 0; call < 4; call++) {
        lines.push(...assistant(`msg_old_${turn}_${call}`, usage(9000, 300, 100, 40000), 3));
        lines.push(toolResult(`toolu_old_${turn}_${call}`, 16 * 1024));
      }
      const chunk = `${lines.join('\n')}\n`;
      written += writeSync(fd, chunk);
    }
    written += writeSync(fd, `${lastTurn.join('\n')}\n`);
  } finally {
    closeSync(fd);
  }
  return written;
}
