/**
 * The `file:` URL of a built handler fixture: build.mjs bundles `test/fixtures/<name>.ts` to
 * `dist/packages/core/test/fixtures/<name>.js`, which is what pool threads import.
 */
export function fixtureUrl(name: string): URL {
  return new URL(`../../../dist/packages/core/test/fixtures/${name}.js`, import.meta.url);
}
