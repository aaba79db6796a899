/**
 * Runs the daemon with a test-only probe: on SIGUSR2 it collects garbage and prints process.memoryUsage() as one
 * JSON line on stdout. Memory tests compare heap after full collections, which RSS alone cannot show.
 * Started as `node --expose-gc --import tsx test/helpers/instrumented.ts serve ...` by the harness.
 */
const collect = (globalThis as { gc?: () => void }).gc;
process.on('SIGUSR2', () => {
  collect?.();
  collect?.();
  process.stdout.write(`${JSON.stringify(process.memoryUsage())}\n`);
});
await import('../../daemon/cli.ts');
