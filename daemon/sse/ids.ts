/**
 * Event ids: `<run>-<seq>`, ASCII. `run` is the start time in ms of the daemon that began the sequence, so ids never
 * repeat and an id from another run is recognisable. A daemon restored from a cleanly written state file continues
 * its predecessor's run and seq (daemon/persist), so ids keep increasing across the restart; `seq` counts up through status and transition events alike, so the ids on
 * one stream strictly increase (compare the `seq` parts as numbers).
 */
export interface ParsedId {
  readonly run: string;
  readonly seq: number;
}

export class EventIds {
  constructor(
    readonly run: string = String(Date.now()),
    private seq = 0,
  ) {}

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
