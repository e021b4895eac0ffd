import { headers } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { metadataOf, timeoutOf } from './requestHeaders.js';

const with_ = (pairs: Record<string, string>) => {
  const h = headers();
  for (const [k, v] of Object.entries(pairs)) h.set(k, v);
  return h;
};

describe('request headers', () => {
  it('take Cqrs-Timeout-Ms as a decimal integer from 1 to 2^31 - 1, and nothing else', () => {
    expect(timeoutOf(undefined)).toBeUndefined();
    expect(timeoutOf(with_({ 'Cqrs-Timeout-Ms': '5000' }))).toBe(5000);
    expect(timeoutOf(with_({ 'Cqrs-Timeout-Ms': '2147483647' }))).toBe(2_147_483_647);
    expect(timeoutOf(with_({ 'Cqrs-Timeout-Ms': '0500' }))).toBe(500);
    for (const bad of ['0', '-1', '+5', '5e3', '5000.0', '0x10', '2147483648', 'soon']) {
      expect(() => timeoutOf(with_({ 'Cqrs-Timeout-Ms': bad })), bad).toThrow(/decimal integer/);
    }
  });

  it('read metadata from Cqrs-Metadata, adding W3C trace headers only when it has no traceparent', () => {
    expect(metadataOf(undefined)).toEqual({});
    expect(metadataOf(with_({ 'Cqrs-Metadata': '{"a":"1"}', traceparent: 'tp' }))).toEqual({
      a: '1',
      traceparent: 'tp',
    });
    expect(metadataOf(with_({ 'Cqrs-Metadata': '{"traceparent":"mine"}', traceparent: 'tp' }))).toEqual({
      traceparent: 'mine',
    });
    expect(() => metadataOf(with_({ 'Cqrs-Metadata': '{"a":1}' }))).toThrow(/must be a string/);
  });
});
