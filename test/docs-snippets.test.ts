/**
 * The client snippets in docs/ work as written: every fenced block whose info string marks it as a test
 * (```sh test, ```python test, ```js test=node, ```js test=browser) is run against a real daemon, with the documented
 * address http://127.0.0.1:8780 replaced by the test daemon's. A snippet passes when it exits 0 (the browser's: when
 * it logs) and, if it reads the status, prints what the daemon holds; if it writes events, the daemon applied them.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { ROOT, cleanEnv, sendOnce, startDaemon, type TestDaemon } from './helpers/daemon.ts';
import { metric } from './helpers/metrics.ts';
import { findTool, skipWithout } from './helpers/tools.ts';

const DOCUMENTED_URL = 'http://127.0.0.1:8780';


interface Snippet {
  readonly file: string;
  readonly line: number;
  readonly runner: 'sh' | 'python' | 'node' | 'browser';
  readonly code: string;
}

/** Every fence marked as a test in docs/*.md and README.md. */
export function extractSnippets(): Snippet[] {
  const files = [...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`), 'README.md'];
  const snippets: Snippet[] = [];
  for (const file of files) {
    const lines = readFileSync(join(ROOT, file), 'utf8').split('\n');
    for (let i = 0; i < lines.length; i++) {
      const open = /^```(\w+)\s+test(?:=(\w+))?\s*$/.exec(lines[i]!);
      if (!open) continue;
      const [, lang, runnerName] = open;
      const runner = lang === 'sh' ? 'sh' : lang === 'python' ? 'python' : lang === 'js' && (runnerName === 'node' || runnerName === 'browser') ? runnerName : null;
      if (runner === null) throw new Error(`${file}:${i + 1}: a test fence must be sh, python, js test=node or js test=browser`);
      const start = i + 1;
      while (++i < lines.length && !lines[i]!.startsWith('```'));
      snippets.push({ file, line: start, runner, code: lines.slice(start, i).join('\n').replaceAll(DOCUMENTED_URL, '@URL@') });
    }
  }
  return snippets;
}

const SNIPPETS = extractSnippets();
const SKIPS = { sh: skipWithout('curl', 'curl'), python: skipWithout('python3', 'python3'), node: false, browser: skipWithout('chromium', 'chromium') } as const;
// Debian's chromium, found on PATH as skipWithout looks for it.
const CHROMIUM = findTool('chromium') ?? '/usr/bin/chromium';

function run(command: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 30_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    proc.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    proc.on('error', reject);
    proc.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

test('docs have a tested snippet for each client: curl, Python urllib, browser EventSource, Node eventsource', () => {
  const kinds = new Set(SNIPPETS.map((s) => s.runner));
  for (const kind of ['sh', 'python', 'node', 'browser'] as const) assert.ok(kinds.has(kind), `no ${kind} snippet marked as a test in docs/`);
  assert.ok(SNIPPETS.some((s) => s.runner === 'sh' && s.code.includes('curl')), 'a curl snippet');
  assert.ok(SNIPPETS.some((s) => s.runner === 'python' && s.code.includes('urllib')), 'a Python urllib snippet');
  for (const s of SNIPPETS.filter((x) => x.runner === 'node' || x.runner === 'browser')) {
    assert.match(s.code, /addEventListener\('status'/, `${s.file}:${s.line}: EventSource clients listen for the named status event`);
    assert.doesNotMatch(s.code, /onmessage/, `${s.file}:${s.line}: onmessage never fires: every event is named`);
  }
});

test('the Home Assistant REST sensor in docs/integrations.md reads the summary\'s real fields', async () => {
  const text = readFileSync(join(ROOT, 'docs/integrations.md'), 'utf8');
  const yaml = [...text.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!).find((block) => /^rest:/m.test(block));
  assert.ok(yaml, 'a rest: block in docs/integrations.md');
  const resource = /resource: (\S+)/.exec(yaml)![1]!;
  assert.ok(resource.startsWith(DOCUMENTED_URL), resource);
  const fields = [...yaml.matchAll(/value_json\.(\w+)/g)].map((m) => m[1]!);
  const attributes = /json_attributes: \[([^\]]*)\]/.exec(yaml)![1]!.split(',').map((a) => a.trim());
  assert.ok(fields.length > 0 && attributes.length > 0);
  const d = await startDaemon();
  try {
    const res = await fetch(resource.replace(DOCUMENTED_URL, d.url));
    assert.equal(res.status, 200, resource);
    const body = (await res.json()) as Record<string, unknown>;
    for (const field of [...fields, ...attributes]) assert.ok(field in body, `value_json.${field} exists in the summary`);
    // Home Assistant keeps a state of at most 255 characters; the sensors' states are single fields, far below it.
    assert.ok(JSON.stringify(body).length < 255);
  } finally {
    await d.stop();
  }
});

describe('docs snippets against a real daemon', () => {
  let d: TestDaemon;
  let browser: Browser | null = null;
  before(async () => {
    d = await startDaemon();
  });
  after(async () => {
    await browser?.close();
    await d.stop();
  });

  for (const snippet of SNIPPETS) {
    test(`${snippet.file}:${snippet.line} (${snippet.runner})`, { skip: SKIPS[snippet.runner], timeout: 60_000 }, async () => {
      // A live session, so a reader has something to print and the state is not the empty default.
      await sendOnce(d.socket, { type: 'agent_start', session_key: 'docs:reader', title: 'Docs' }, { type: 'tool_start', session_key: 'docs:reader', name: 'bash' });
      const code = snippet.code.replaceAll('@URL@', d.url);
      const readsStatus = code.includes('/api/v1/agent/status');
      const ingested = await metric(d.url, 'pocketpaw_status_events_ingested_total');
      const env = cleanEnv({ POCKETPAW_STATUS_SOCKET: d.socket, PYTHONPATH: join(ROOT, 'protocol/python'), NO_COLOR: '1' });
      let output: string;
      if (snippet.runner === 'browser') {
        // launch() gives the browser a fresh temporary profile. Never a downloaded browser: Debian's own.
        browser ??= await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] });
        const page = await browser.newPage();
        try {
          const logged = new Promise<string>((resolve) => page.on('console', (m) => m.type() === 'log' && resolve(m.text())));
          const errors: string[] = [];
          page.on('pageerror', (e) => errors.push(e.message));
          // Same origin as the daemon, as the status page is: no --cors-origin needed.
          await page.goto(`${d.url}/livez`);
          await page.evaluate(code);
          output = await Promise.race([logged, new Promise<string>((_, reject) => setTimeout(() => reject(new Error(`no console output; errors: ${errors.join('; ')}`)), 15_000))]);
        } finally {
          await page.close();
        }
      } else {
        const [command, args] =
          snippet.runner === 'sh'
            ? ['bash', ['-eo', 'pipefail', '-c', code]]
            : snippet.runner === 'python'
              ? ['python3', ['-c', code]]
              : [process.execPath, ['--input-type=module', '-e', code]];
        const result = await run(command, args, env);
        assert.equal(result.code, 0, `${snippet.file}:${snippet.line} exited ${result.code}\n${result.stdout}\n${result.stderr}`);
        output = result.stdout;
      }
      if (readsStatus) {
        assert.match(output, /active/, `${snippet.file}:${snippet.line} prints the state the daemon holds; printed: ${output}`);
      } else {
        assert.ok((await metric(d.url, 'pocketpaw_status_events_ingested_total')) > ingested, `${snippet.file}:${snippet.line}: the daemon applied its events`);
      }
      await sendOnce(d.socket, { type: 'agent_end', session_key: 'docs:reader' });
    });
  }
});
