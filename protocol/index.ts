// The protocol surface without zod (frames as types only; validation is ./validate.ts), for the
// gateway and the test and load tools. The SDK does not import it: it takes the modules it needs
// one by one, so ./codec.ts (msgpackr) stays out of its browser bundle.
export * from './version.ts';
export * from './codes.ts';
export * from './topic.ts';
export * from './merge-patch.ts';
export * from './codec.ts';
export type * from './frames.ts';
