/** What the benchmarks read of the processes they start: the ready line, and from /proc (Linux) CPU time and memory. */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

let clockTicks: number | null = null;

/** utime + stime of a process, every thread, in seconds (/proc counts them in clock ticks, usually 10 ms). */
export function cpuSeconds(pid: number): number {
  clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may contain spaces: count fields from the closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / clockTicks;
}

/** Resident memory of a process, in bytes. */
export function rssBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS in /proc/${pid}/status: is the process still running?`);
  return Number(match[1]) * 1024;
}

/** Waits for a JSON line on the child's stderr whose `msg` starts with `ready` and that names its `http` address. */
export function readyUrl(proc: ChildProcess, what: string): Promise<string> {
  return new Promise<string>((resolveUrl, reject) => {
    let buffered = '';
    const timer = setTimeout(() => reject(new Error(`${what} did not say it was ready within 20 s; stderr: ${buffered.slice(-2000)}`)), 20_000);
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (d: string) => {
      buffered += d;
      for (const line of buffered.split('\n')) {
        try {
          const parsed = JSON.parse(line) as { msg?: unknown; http?: unknown };
          if (typeof parsed.msg === 'string' && parsed.msg.startsWith('ready') && typeof parsed.http === 'string') {
            clearTimeout(timer);
            return resolveUrl(parsed.http);
          }
        } catch {
          // Not a whole JSON line (yet).
        }
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited with ${code} before it was ready; stderr: ${buffered.slice(-2000)}`));
    });
  });
}

/**
 * CPU time of every thread of a process (V8's compiler and GC threads included), in seconds, from schedstat, which
 * counts nanoseconds: utime + stime in /proc/<pid>/stat move in 10 ms ticks, too coarse for a figure of a few ms.
 */
export function threadCpuSeconds(pid: number): number {
  let ns = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // The thread ended meanwhile: its time is no longer counted anywhere, on either side of a comparison.
    }
  }
  return ns / 1e9;
}
