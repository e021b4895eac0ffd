// comlink publishes ESM files without an "exports" map, so Node needs their deep paths (its "main" is UMD);
// these declarations point those paths at comlink's own types.
declare module 'comlink/dist/esm/comlink.mjs' {
  export * from 'comlink';
}
declare module 'comlink/dist/esm/node-adapter.mjs' {
  import type { Endpoint } from 'comlink';
  export interface NodeEndpoint {
    // biome-ignore lint/suspicious/noExplicitAny: comlink's own signature; MessagePort's is narrower
    postMessage(message: any, transfer?: any[]): void;
    // biome-ignore lint/suspicious/noExplicitAny: as above
    on(type: string, listener: (value: any) => void, options?: object): void;
    // biome-ignore lint/suspicious/noExplicitAny: as above
    off(type: string, listener: (value: any) => void, options?: object): void;
    start?: () => void;
  }
  export default function nodeEndpoint(nep: NodeEndpoint): Endpoint;
}
