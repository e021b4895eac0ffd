import { describe, expect, it } from 'vitest';
import { ModuleTable, ModuleTableView } from './ModuleTable.js';

describe('ModuleTable', () => {
  it('gives each URL an index in registration order, the same index for the same URL', () => {
    const table = new ModuleTable(64 * 1024);
    expect(table.register('file:///a.js')).toBe(0);
    expect(table.register('file:///b.js')).toBe(1);
    expect(table.register('file:///a.js')).toBe(0);
    expect(table.register('file:///c.js')).toBe(2);
  });

  it('lets a view in another thread resolve indices to URLs, and unknown indices to undefined', () => {
    const table = new ModuleTable(64 * 1024);
    const urls = ['file:///handlers/users.js', 'file:///handlers/ünïcödé/ök.js', 'file:///x.js'];
    for (const url of urls) table.register(url);
    const view = new ModuleTableView(table.buffer);
    expect(urls.map((_, id) => view.url(id))).toEqual(urls);
    expect(view.url(3)).toBeUndefined();
    // An entry registered after the view read the table is found on demand.
    table.register('file:///late.js');
    expect(view.url(3)).toBe('file:///late.js');
  });

  it('resolves nothing but a registered non-negative integer index (a forged task may carry anything)', () => {
    const table = new ModuleTable(64 * 1024);
    table.register('file:///a.js');
    table.register('file:///b.js');
    const view = new ModuleTableView(table.buffer);
    for (const id of [
      -1,
      0.5,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      '1',
      'length',
      'constructor',
      '__proto__',
    ]) {
      expect(view.url(id as number), String(id)).toBeUndefined();
    }
    expect(view.url(1)).toBe('file:///b.js');
  });

  it('grows its buffer, keeping earlier entries for a view that read them before', () => {
    const table = new ModuleTable(256 * 1024);
    const view = new ModuleTableView(table.buffer);
    const initialBytes = table.buffer.byteLength;
    const url = (i: number) => `file:///handlers/${'nested/'.repeat(20)}module-${i}.js`;
    table.register(url(0));
    expect(view.url(0)).toBe(url(0));
    for (let i = 1; i < 200; i++) expect(table.register(url(i))).toBe(i);
    expect(table.buffer.byteLength).toBeGreaterThan(initialBytes);
    for (let i = 0; i < 200; i++) expect(view.url(i)).toBe(url(i));
    expect(new ModuleTableView(table.buffer).url(199)).toBe(url(199));
  });

  it('refuses a URL with -1 once full, keeping every earlier entry', () => {
    const table = new ModuleTable(8192);
    const long = (i: number) => `file:///${String(i).padStart(4, '0')}/${'x'.repeat(1000)}.js`;
    const ids: number[] = [];
    let id = 0;
    for (let i = 0; i < 20 && id >= 0; i++) {
      id = table.register(long(i));
      if (id >= 0) ids.push(id);
    }
    expect(id).toBe(-1);
    expect(ids.length).toBeGreaterThan(4);
    expect(table.buffer.byteLength).toBeLessThanOrEqual(8192);
    const view = new ModuleTableView(table.buffer);
    for (const i of ids) expect(view.url(i)).toBe(long(i));
    expect(view.url(ids.length)).toBeUndefined();
  });
});
