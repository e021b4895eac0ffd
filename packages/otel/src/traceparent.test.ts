import { TraceFlags } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { formatTraceparent, parseTraceparent } from './traceparent.js';

const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
const spanId = '00f067aa0ba902b7';

describe('traceparent', () => {
  it('round-trips a sampled span context with its tracestate', () => {
    const parsed = parseTraceparent(`00-${traceId}-${spanId}-01`, 'congo=t61rcWkgMzE');
    expect(parsed).toMatchObject({ traceId, spanId, traceFlags: TraceFlags.SAMPLED, isRemote: true });
    expect(parsed?.traceState?.serialize()).toBe('congo=t61rcWkgMzE');
    expect(formatTraceparent(parsed!)).toBe(`00-${traceId}-${spanId}-01`);
  });

  it('keeps only the sampled flag', () => {
    expect(parseTraceparent(`00-${traceId}-${spanId}-00`)?.traceFlags).toBe(TraceFlags.NONE);
    expect(formatTraceparent({ traceId, spanId, traceFlags: 0xff })).toBe(`00-${traceId}-${spanId}-01`);
  });

  it('accepts extra fields from a later version only', () => {
    expect(parseTraceparent(`01-${traceId}-${spanId}-01-extra`)?.spanId).toBe(spanId);
    expect(parseTraceparent(`00-${traceId}-${spanId}-01-extra`)).toBeUndefined();
  });

  it.each([
    ['version ff', `ff-${traceId}-${spanId}-01`],
    ['all-zero trace id', `00-${'0'.repeat(32)}-${spanId}-01`],
    ['all-zero span id', `00-${traceId}-${'0'.repeat(16)}-01`],
    ['upper case', `00-${traceId.toUpperCase()}-${spanId}-01`],
    ['short span id', `00-${traceId}-${spanId.slice(1)}-01`],
    ['empty', ''],
  ])('refuses %s', (_what, value) => {
    expect(parseTraceparent(value)).toBeUndefined();
  });
});
