/**
 * What a serving node takes on trust and what it gives away: metadata from the wire (a caller can claim any
 * role) and stack traces in error replies. Against a real nats-server.
 */
import { fileURLToPath } from 'node:url';
import type { Middleware } from '@cqrs-pool/core';
import {
  CommandBus,
  CqrsError,
  defineCommand,
  defineQuery,
  isCqrsError,
  QueryBus,
  validation,
} from '@cqrs-pool/core';
import type { MetadataPolicy } from '@cqrs-pool/nats';
import { remote, serve, taggedJson } from '@cqrs-pool/nats';
import type { NatsConnection } from '@nats-io/transport-node';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { failure, within } from './settle.js';
import { natsForTests } from './testNats.js';

const nats = await natsForTests('serveTrust.test.ts');
const prefix = `trust${process.pid}`;
const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

const Whoami = defineQuery('Whoami', { input: z.object({}), output: z.custom<Record<string, string>>() });
const DeleteUser = defineCommand('DeleteUser', { input: z.object({ userId: z.number().int().min(1) }) });
const Fail = defineCommand('Fail', { input: z.object({}) });

/** The README's authorization middleware: it believes `metadata.role`. */
const authorize: Middleware = (next) => (call) => {
  if (call.kind === 'command' && call.metadata.role !== 'admin') {
    return Promise.reject(
      new CqrsError('VALIDATION', `${call.name} needs role admin`, { handler: call.name }),
    );
  }
  return next(call);
};

describe.skipIf(nats === undefined)('trust at a serving node', () => {
  let serverConn: NatsConnection;
  let clientConn: NatsConnection;
  let round = 0;

  beforeAll(async () => {
    serverConn = await connect({ servers: nats?.url ?? '' });
    clientConn = await connect({ servers: nats?.url ?? '' });
  });

  afterAll(async () => {
    await clientConn?.close();
    await serverConn?.close();
    await nats?.stop();
  });

  /** A node serving Whoami and DeleteUser (behind `authorize`) with these serve options, and a caller. */
  async function node(options: Parameters<typeof serve>[2] = {}) {
    const own = `${prefix}.n${round++}`;
    const queries = new QueryBus();
    queries.registerHandler(Whoami, (_input, ctx) => ({ ...ctx.metadata }));
    const commands = new CommandBus({ middleware: [validation()] });
    commands.registerHandler(DeleteUser, () => 'deleted', { middleware: [authorize] });
    commands.registerHandler(Fail, () => {
      throw Object.assign(new Error('handler broke'), {
        inner: new TypeError('deeper'),
        list: [new RangeError('in a list')],
      });
    });
    const servers = [
      serve(serverConn, queries, { ...options, prefix: own }),
      serve(serverConn, commands, { ...options, prefix: own }),
    ];
    await serverConn.flush();
    const callerQueries = new QueryBus();
    callerQueries.registerHandler(Whoami, remote(clientConn, { prefix: own }));
    const callerCommands = new CommandBus();
    callerCommands.registerHandler(DeleteUser, remote(clientConn, { prefix: own }));
    callerCommands.registerHandler(Fail, remote(clientConn, { prefix: own }));
    return {
      own,
      servers,
      queries: callerQueries,
      commands: callerCommands,
      stop: () => Promise.all(servers.map((s) => s.stop())),
    };
  }

  const claim = {
    correlationId: 'c-1',
    role: 'admin',
    user: 'mallory',
    traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
  };

  describe('metadata', () => {
    it('by default reaches the handlers as sent: a caller can claim role admin', async () => {
      const n = await node();
      expect(await within(5_000, n.queries.execute(Whoami, {}, { metadata: claim }))).toEqual(claim);
      expect(await within(5_000, n.commands.execute(DeleteUser, { userId: 1 }, { metadata: claim }))).toBe(
        'deleted',
      );
      await n.stop();
    });

    it('{ allow } passes only the listed keys; a claimed role no longer opens the door', async () => {
      const n = await node({ metadata: { allow: ['correlationId', 'traceparent', 'tracestate'] } });
      expect(await within(5_000, n.queries.execute(Whoami, {}, { metadata: claim }))).toEqual({
        correlationId: 'c-1',
        traceparent: claim.traceparent,
      });
      const err = await failure(n.commands.execute(DeleteUser, { userId: 1 }, { metadata: claim }));
      expect(isCqrsError(err, 'VALIDATION')).toBe(true);
      expect((err as Error).message).toBe('DeleteUser needs role admin');
      await n.stop();
    });

    it('{ drop } removes the listed keys and passes the rest', async () => {
      const n = await node({ metadata: { drop: ['role', 'user'] } });
      expect(await within(5_000, n.queries.execute(Whoami, {}, { metadata: claim }))).toEqual({
        correlationId: 'c-1',
        traceparent: claim.traceparent,
      });
      await n.stop();
    });

    it('a function decides from the request, and refuses by throwing', async () => {
      const seen: string[] = [];
      const policy: MetadataPolicy = (metadata, request) => {
        seen.push(
          `${request.name} ${request.subject} ${request.headers?.get('Cqrs-Metadata') === undefined ? 'no header' : 'header'}`,
        );
        if (metadata.user === 'banned')
          throw new CqrsError('RATE_LIMITED', 'go away', { retryAfterMs: 1000 });
        if (metadata.user === 'odd') throw new Error('no odd users');
        // The role comes from what the server knows, not from the caller's claim.
        return {
          correlationId: metadata.correlationId ?? '',
          role: request.name === 'Whoami' ? 'reader' : 'none',
        };
      };
      const n = await node({ metadata: policy });
      expect(await within(5_000, n.queries.execute(Whoami, {}, { metadata: claim }))).toEqual({
        correlationId: 'c-1',
        role: 'reader',
      });
      expect(seen).toEqual([`Whoami ${n.own}.qry.Whoami header`]);
      const banned = await failure(n.queries.execute(Whoami, {}, { metadata: { user: 'banned' } }));
      expect(isCqrsError(banned, 'RATE_LIMITED')).toBe(true);
      expect(banned).toMatchObject({ message: 'go away', retryAfterMs: 1000 });
      const odd = await failure(n.queries.execute(Whoami, {}, { metadata: { user: 'odd' } }));
      expect(isCqrsError(odd, 'VALIDATION')).toBe(true);
      expect((odd as Error).message).toBe('Whoami: metadata refused: no odd users');
      expect(n.servers[0]?.stats).toEqual({
        received: 3,
        succeeded: 1,
        failed: 2,
        malformed: 0,
        inFlight: 0,
      });
      await n.stop();
    });

    it('a function returning something other than an object of strings refuses the call', async () => {
      const n = await node({ metadata: () => ({ role: 42 }) as unknown as Record<string, string> });
      const err = await failure(n.queries.execute(Whoami, {}));
      expect(isCqrsError(err, 'VALIDATION')).toBe(true);
      expect((err as Error).message).toMatch(/metadata filter returned a non-string 'role'/);
      await n.stop();
    });

    it('a malformed option is refused at once with INVALID_REGISTRATION', () => {
      const bus = new QueryBus();
      bus.registerHandler(Whoami, () => ({}));
      for (const metadata of [{ allow: 'role' }, { allow: ['a'], drop: ['b'] }, { allow: [1] }, {}, 'all']) {
        let err: unknown;
        try {
          serve(serverConn, bus, { prefix, metadata: metadata as MetadataPolicy });
        } catch (e) {
          err = e;
        }
        expect(isCqrsError(err, 'INVALID_REGISTRATION'), JSON.stringify(metadata)).toBe(true);
      }
    });
  });

  describe('stack traces in error replies', () => {
    async function rawReply(own: string, subject: string, body: unknown): Promise<string> {
      const reply = await clientConn.request(`${own}.${subject}`, taggedJson.encode(body), {
        timeout: 5_000,
      });
      expect(reply.headers?.get('Cqrs-Status')).toBe('error');
      return Buffer.from(reply.data).toString('utf8');
    }

    it('are left out by default, everywhere in the error: its own, its cause’s, its fields’', async () => {
      const n = await node();
      for (const [subject, body] of [
        ['cmd.DeleteUser', { userId: 0 }],
        ['cmd.Fail', {}],
      ] as const) {
        const text = await rawReply(n.own, subject, body);
        expect(text, subject).not.toContain('"stack"');
        expect(text, subject).not.toContain(repoRoot);
        expect(text, subject).not.toMatch(/\n\s+at /);
      }
      // The caller still gets the code, the message, the issues and the cause's fields.
      const err = await failure(n.commands.execute(Fail, {}));
      expect(isCqrsError(err, 'HANDLER_FAILED')).toBe(true);
      expect((err as Error).cause).toMatchObject({
        message: 'handler broke',
        inner: { name: 'TypeError', message: 'deeper' },
      });
      const invalid = await failure(n.commands.execute(DeleteUser, { userId: 0 }));
      expect((invalid as { issues?: unknown[] }).issues).toHaveLength(1);
      await n.stop();
    });

    it('are sent with stacks: true, for trusted callers', async () => {
      const n = await node({ stacks: true });
      const text = await rawReply(n.own, 'cmd.Fail', {});
      expect(text).toContain('"stack"');
      expect(text).toContain(repoRoot);
      const err = await failure(n.commands.execute(Fail, {}));
      const cause = (err as Error).cause as Error & { inner: Error; list: Error[] };
      expect(cause.stack).toMatch(/^Error: handler broke\n\s+at /);
      expect(cause.inner.stack).toMatch(/^TypeError: deeper\n\s+at /);
      expect(cause.list[0]?.stack).toMatch(/^RangeError: in a list\n\s+at /);
      await n.stop();
    });

    it('refuse a stacks option that is not a boolean', () => {
      expect(() =>
        serve(serverConn, new QueryBus(), { prefix, stacks: 'yes' as unknown as boolean }),
      ).toThrow(/options.stacks/);
    });
  });
});
