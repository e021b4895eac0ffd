// The basic flow: commands and queries, one handler in the pool, typed results, and the errors a caller meets.
// Run it with `npm run demo` (or `node dist/examples/demo/main.js` after `node build.mjs --fast`).

import type { Middleware } from '@cqrs-pool/core';
import { CommandBus, type CqrsError, inWorker, isCqrsError, QueryBus, WorkerPool } from '@cqrs-pool/core';
import { parseCli } from '../cli.js';
import { BuildUserReport, CreateUser, DeleteUser, GetUser, ListUsers, type User } from './messages.js';

parseCli({
  command: 'node dist/examples/demo/main.js',
  summary: 'The basic flow: commands, queries, a handler in the pool, and each error a caller meets.',
  options: {},
});

const users = new Map<number, User>();

// A small middleware, to show where they sit: it times every call of the bus it is given to.
const timing: Middleware = (next) => async (call) => {
  const started = performance.now();
  try {
    return await next(call);
  } finally {
    console.log(`  · ${call.kind} ${call.name} took ${(performance.now() - started).toFixed(2)} ms`);
  }
};

const pool = new WorkerPool({ threads: 2, maxQueue: 100 });
const commands = new CommandBus({ pool, middleware: [timing] });
const queries = new QueryBus({ pool, middleware: [timing] });

commands.registerHandler(CreateUser, (input) => {
  if (users.has(input.userId)) throw new Error(`user ${input.userId} exists`);
  const user = { id: input.userId, username: input.username, email: input.email, fullName: input.fullName };
  users.set(user.id, user);
  return user;
});
commands.registerHandler(DeleteUser, (input) => {
  throw Object.assign(new Error(`user ${input.userId} is protected`), { code: 'USER_PROTECTED' });
});
queries.registerHandler(GetUser, (input) => users.get(input.userId) ?? null);
queries.registerHandler(ListUsers, () => [...users.values()]);
queries.registerHandler(
  BuildUserReport,
  inWorker(new URL('./handlers.js', import.meta.url), 'buildUserReport'),
);

// Finds a bad module or export before any traffic.
await Promise.all([commands.ready(), queries.ready()]);
console.log(`commands: ${commands.getRegisteredCommands().join(', ')}`);
console.log(`queries:  ${queries.getRegisteredQueries().join(', ')}\n`);

console.log('Creating three users (inline command handler)');
for (const [userId, username, fullName] of [
  [1, 'alice', 'Alice Johnson'],
  [2, 'bob', 'Bob Smith'],
  [3, 'carol', 'Carol Davis'],
] as const) {
  const user = await commands.execute(CreateUser, {
    userId,
    username,
    email: `${username}@example.com`,
    fullName,
  });
  console.log(`  created #${user.id} ${user.fullName} <${user.email}>`);
}

console.log('\nQuerying them back (inline query handler, typed result)');
for (const userId of [1, 2, 3]) {
  const user = await queries.execute(GetUser, { userId });
  console.log(`  #${userId}: ${user?.fullName ?? 'none'}`);
}

console.log('\nA CPU-heavy report in the pool (it queries the users back through the main thread)');
const report = await queries.execute(
  BuildUserReport,
  { rounds: 1 << 14 },
  { metadata: { correlationId: 'demo-1' } },
);
console.log(
  `  ${report.users} users fingerprinted on pool thread ${report.thread}, correlation id ${report.correlationId}`,
);
for (const { username, fingerprint } of report.fingerprints)
  console.log(`    ${username.padEnd(6)} ${fingerprint}`);

console.log('\nThe errors a caller meets, each a CqrsError with a code');
const attempts: Array<[string, () => Promise<unknown>]> = [
  ['unknown name', () => queries.execute('GetInvoice', { id: 1 })],
  ['handler failure', () => commands.execute(DeleteUser, { userId: 1 })],
  [
    'caller abort',
    () => queries.execute(BuildUserReport, { rounds: 1 << 16 }, { signal: AbortSignal.timeout(5) }),
  ],
];
for (const [label, attempt] of attempts) {
  try {
    await attempt();
    console.log(`  ${label}: no error?`);
  } catch (err) {
    if (!isCqrsError(err)) throw err;
    const cause = err.cause as { code?: string } | undefined;
    console.log(
      `  ${label}: ${err.code} — ${err.message}${typeof cause?.code === 'string' ? ` (cause code ${cause.code})` : ''}`,
    );
  }
}

// Counted in shared memory by whichever thread ran each call; refusals and aborts count as failures.
console.log('\nMetrics (executions / failures, latency p50 and p99 in ms)');
for (const [name, m] of Object.entries({
  ...commands.getMetrics().handlers,
  ...queries.getMetrics().handlers,
})) {
  const latency = `${m.latency.p50.toFixed(3)} / ${m.latency.p99.toFixed(3)}`;
  console.log(
    `  ${name.padEnd(16)} ${String(m.executions).padStart(3)} / ${String(m.failures).padEnd(3)} ${latency}`,
  );
}

// Graceful: the buses drain what is in flight, then the pool stops its threads.
await Promise.all([commands.close(), queries.close()]);
await pool.close();
const refused = await commands
  .execute(CreateUser, { userId: 4, username: 'dave', email: 'd@example.com', fullName: 'D' })
  .catch((e: unknown) => e);
console.log(`\nAfter close: ${(refused as CqrsError).code}. Done.`);
