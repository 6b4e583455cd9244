// Browser-safe protocol surface without zod (the SDK imports this; the gateway also uses ./validate.ts).
export * from './version.ts';
export * from './codes.ts';
export * from './topic.ts';
export * from './merge-patch.ts';
export * from './codec.ts';
export type * from './frames.ts';
