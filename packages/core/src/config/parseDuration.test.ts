import { describe, expect, it } from 'vitest';
import { parseDuration } from './parseDuration.js';

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['10m', 600_000],
    ['1h', 3_600_000],
    ['1m30s', 90_000],
    ['1h2m3s4ms', 3_723_004],
    ['1.5s', 1_500],
    ['0.7s', 700],
    ['.25s', 250],
    ['2.5ms', 2.5],
    ['0s', 0],
    ['0', 0],
    ['10m10m', 1_200_000],
  ])('reads %s as %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each([
    '',
    '10',
    '30',
    '10 min',
    ' 30s',
    '30s ',
    '30S',
    '-5s',
    '+5s',
    '1d',
    '5sec',
    '1m 30s',
    's',
    '.s',
    '1e3ms',
    'ms',
    '30s!',
    `${'9'.repeat(400)}h`,
  ])('refuses %j', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });
});
