// A serving node for clients in other languages (main.go is one, in Go): a pool and two buses, each served
// twice — under `<prefix>.json` in plain JSON (`json/1`, the codec for polyglot systems) and under
// `<prefix>.tagged` in the default tagged JSON (`tagged-json/1`). The protocol: docs/wire-protocol.md.
//
//   NATS_URL=nats://… CQRS_PREFIX=cqrs node dist/examples/go-client/node.js
import { CommandBus, inWorker, QueryBus, validation, WorkerPool } from '@cqrs-pool/core';
import { plainJson, serve, taggedJson } from '@cqrs-pool/nats';
import { connect } from '@nats-io/transport-node';
import { CreateUser, DeleteUser, GetAccount, GetUser, Whoami } from './messages.js';

const prefix = process.env.CQRS_PREFIX ?? 'cqrs';
const nc = await connect({
  servers: process.env.NATS_URL ?? 'nats://127.0.0.1:4222',
  name: 'go-client-node',
});
const pool = new WorkerPool({ threads: 1 });
const commands = new CommandBus({ pool, middleware: [validation()] });
const queries = new QueryBus({ pool, middleware: [validation()] });

const users = new Map([[1, { id: 1, username: 'ada', email: 'ada@example.com' }]]);
commands.registerHandler(CreateUser, inWorker(new URL('./handlers.js', import.meta.url), 'createUser'));
commands.registerHandler(DeleteUser, (input) => {
  users.delete(input.userId); // returns nothing: `null` in json/1, {"$t":"u"} in tagged-json/1
});
queries.registerHandler(GetUser, (input) => users.get(input.userId) ?? null);
queries.registerHandler(Whoami, (_input, ctx) => ({ ...ctx.metadata }));
// In json/1 this result is refused (NOT_CLONEABLE: a bigint, a Set); tagged-json/1 carries it.
queries.registerHandler(GetAccount, (input) => ({
  userId: input.userId,
  balance: 2n ** 64n + 1n,
  openedAt: new Date(1_700_000_000_123),
  tags: new Set(['gold', 'early']),
}));
await commands.ready();

const servers = [plainJson, taggedJson].flatMap((codec) => {
  const at = `${prefix}.${codec === plainJson ? 'json' : 'tagged'}`;
  return [serve(nc, commands, { prefix: at, codec }), serve(nc, queries, { prefix: at, codec })];
});
await nc.flush();
console.log(`ready on ${servers.flatMap((s) => s.subjects).join(', ')}`);

process.once('SIGTERM', () => {
  void (async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await commands.close();
    await queries.close();
    await pool.close();
    await nc.drain();
    const totals = servers.map((s) => s.stats);
    console.log(`stopped: ${JSON.stringify(totals)}`);
  })();
});
