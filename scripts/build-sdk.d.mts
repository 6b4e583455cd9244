/** Types for scripts/build-sdk.mjs (imported by tests). */
export interface BuiltFile {
  name: string;
  path: string;
  /** Minified size, bytes. */
  min: number;
  /** Minified + gzip -9 size, bytes. */
  gzip: number;
  /** Source files esbuild bundled, relative to the repo. */
  inputs: string[];
}
export declare const CORE_BUDGET: number;
export declare function buildSdk(options?: { outdir?: string; quiet?: boolean }): Promise<{ outdir: string; files: BuiltFile[] }>;
/** Emits the SDK's type declarations into dist/types (tsc -p tsconfig.sdk.json). */
export declare function buildTypes(): void;
