/**
 * The package's entry point for agent authors: the wire contract (events), the snapshot the API serves, the
 * TypeScript emitter, and where the ingest socket is by default.
 */
export * from './events.ts';
export * from './snapshot.ts';
export * from './emitter.ts';
export * from './socket-path.ts';
