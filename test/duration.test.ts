import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from '../src/shared/duration.js';

describe('parseDuration', () => {
  it.each([
    ['250ms', 250],
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['2d', 172_800_000],
    ['1h30m', 5_400_000],
    ['1h30m15s', 5_415_000],
    ['1m500ms', 60_500],
    ['1.5h', 5_400_000],
    ['0.5s', 500],
    ['0s', 0],
    ['90', 90],
    ['0', 0],
    ['  5m  ', 300_000],
  ])('parses %j as %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it('takes numbers as milliseconds', () => {
    expect(parseDuration(0)).toBe(0);
    expect(parseDuration(1500)).toBe(1500);
    expect(parseDuration(2.5)).toBe(2.5);
  });

  it.each(['5 minutes', '-1s', '', '   ', '1h 30m', '5M', '1e3', 'ms', 's30', '1.s', '.5s', '5m30', '1w', 'NaN', '-5'])(
    'rejects %j',
    (text) => {
      expect(() => parseDuration(text)).toThrow(`invalid duration "${text}" (use e.g. 30s, 5m, 1h30m)`);
    },
  );

  it.each([-1, Number.NaN, Number.POSITIVE_INFINITY])('rejects the number %d', (n) => {
    expect(() => parseDuration(n)).toThrow(`invalid duration ${n}`);
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0ms'],
    [250, '250ms'],
    [999, '999ms'],
    [999.4, '999ms'],
    [999.6, '1s'],
    [1000, '1s'],
    [1499, '1s'],
    [30_000, '30s'],
    [60_000, '1m'],
    [90_000, '1m30s'],
    [3_600_000, '1h'],
    [3_601_000, '1h1s'],
    [5_400_000, '1h30m'],
    [5_415_000, '1h30m15s'],
    [86_400_000, '24h'],
  ])('formats %d ms as %j', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('round-trips whole seconds through parseDuration', () => {
    for (const ms of [1000, 59_000, 61_000, 3_599_000, 3_600_000, 7_384_000])
      expect(parseDuration(formatDuration(ms))).toBe(ms);
  });
});
