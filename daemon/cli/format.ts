/** Human formatting shared by the `status` command, kept identical to PocketPaw's `_format_duration`. */

/** 0 -> `0s`, 45 -> `45s`, 90 -> `1m 30s`, 120 -> `2m 0s`, 3661 -> `1h 1m 1s` (seconds truncated). */
export function formatDuration(seconds: number): string {
  const total = Math.max(0, Math.trunc(seconds));
  if (total < 60) return `${total}s`;
  if (total < 3600) return `${Math.trunc(total / 60)}m ${total % 60}s`;
  return `${Math.trunc(total / 3600)}h ${Math.trunc((total % 3600) / 60)}m ${total % 60}s`;
}
