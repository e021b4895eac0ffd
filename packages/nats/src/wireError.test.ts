import type { ErrorCode } from '@cqrs-pool/core';
import { CqrsError, ErrorCodes, isCqrsError } from '@cqrs-pool/core';
import { isForwarded } from '@cqrs-pool/core/internal';
import { describe, expect, it } from 'vitest';
import { taggedJson } from './taggedJson.js';
import { decodeError, encodeError } from './wireError.js';

const overTheWire = (err: unknown): CqrsError => decodeError(encodeError(err, taggedJson), taggedJson, 'Op');

describe('errors over the wire', () => {
  it('rebuild every core code as a CqrsError with that code, its message and details, marked forwarded', () => {
    for (const code of Object.values(ErrorCodes) as ErrorCode[]) {
      const original = new CqrsError(code, `${code} happened`, {
        handler: 'Op',
        retryAfterMs: 125,
        issues: [{ path: ['a'], message: 'bad', at: new Date(0) }],
        cause: Object.assign(new TypeError('root'), { code: 'E_ROOT', big: 10n }),
      });
      const rebuilt = overTheWire(original);
      expect(isCqrsError(rebuilt, code), code).toBe(true);
      expect(rebuilt.message).toBe(`${code} happened`);
      expect(rebuilt).toMatchObject({ handler: 'Op', retryAfterMs: 125 });
      expect(rebuilt.issues).toEqual([{ path: ['a'], message: 'bad', at: new Date(0) }]);
      expect(rebuilt.cause).toMatchObject({ name: 'TypeError', message: 'root', code: 'E_ROOT', big: 10n });
      expect(isForwarded(rebuilt)).toBe(true);
    }
  });

  it('wrap an error that is not a CqrsError (a code this version does not know) in HANDLER_FAILED', () => {
    const fromNewerServer = Object.assign(new Error('shiny'), { code: 'SOME_FUTURE_CODE' });
    const rebuilt = overTheWire(fromNewerServer);
    expect(isCqrsError(rebuilt, 'HANDLER_FAILED')).toBe(true);
    expect((rebuilt.cause as Error).message).toBe('shiny');
    expect(isCqrsError(overTheWire('a thrown string'), 'HANDLER_FAILED')).toBe(true);
  });

  it('turn a reply body that is not an error into NOT_CLONEABLE, not a crash or a wrong error', () => {
    for (const body of ['{oops', '42', '{"t":"nope"}']) {
      const rebuilt = decodeError(Buffer.from(body), taggedJson, 'Op');
      expect(isCqrsError(rebuilt, 'NOT_CLONEABLE'), body).toBe(true);
    }
  });

  it('still send the code and message when a field of the error defeats the codec', () => {
    const codec = {
      name: 'picky',
      encode: (value: unknown) => {
        if (JSON.stringify(value).includes('fields')) throw new TypeError('no fields');
        return taggedJson.encode(value);
      },
      decode: taggedJson.decode,
    };
    const err = Object.assign(new CqrsError('VALIDATION', 'bad'), { extra: 1 });
    const rebuilt = decodeError(encodeError(err, codec), codec, 'Op');
    expect(isCqrsError(rebuilt, 'VALIDATION')).toBe(true);
    expect(rebuilt.message).toBe('bad');
  });
});
