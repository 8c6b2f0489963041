/**
 * Imports a module bundlers must not follow (Node built-ins, the Node adapter), so a Workers
 * bundle of `server.ts` needs no `nodejs_compat`.
 * @module
 */

/** Imports `specifier` at run time, out of a bundler's sight. */
export function importAtRuntime<T>(specifier: string): Promise<T> {
  return import(specifier);
}
