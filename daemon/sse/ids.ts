/**
 * Event ids: `<run>-<seq>`, ASCII. `run` is the daemon's start time in ms, so ids never repeat across restarts and an
 * id from an earlier run is recognisable; `seq` counts up through status and transition events alike, so the ids on
 * one stream strictly increase (compare the `seq` parts as numbers).
 */
export interface ParsedId {
  readonly run: string;
  readonly seq: number;
}

export class EventIds {
  private seq = 0;

  constructor(readonly run: string = String(Date.now())) {}

  next(): number {
    return ++this.seq;
  }

  get last(): number {
    return this.seq;
  }

  format(seq: number): string {
    return `${this.run}-${seq}`;
  }
}

export function parseId(id: string): ParsedId | null {
  const match = /^(\d+)-(\d+)$/.exec(id);
  if (!match) return null;
  const seq = Number(match[2]);
  return Number.isSafeInteger(seq) ? { run: match[1]!, seq } : null;
}
