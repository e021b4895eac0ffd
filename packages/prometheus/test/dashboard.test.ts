/**
 * The Grafana dashboard (grafana/cqrs-pool.json) and the example alert rules (alerts/cqrs-pool.rules.yml):
 * the dashboard has what Grafana needs to import it, and every query of both names only series that
 * registerCqrsMetrics exports — checked against a real exposition (the built test/fixtures/exposition.js,
 * which drives every kind of series). Syntax of the rules and their firing: `promtool` in CI.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseExposition } from './scrape.js';

const dashboardFile = new URL('../grafana/cqrs-pool.json', import.meta.url);
const rulesFile = new URL('../alerts/cqrs-pool.rules.yml', import.meta.url);
const exposition = new URL('../../../dist/packages/prometheus/test/fixtures/exposition.js', import.meta.url);

interface Target {
  refId?: unknown;
  expr?: unknown;
  datasource?: { type?: unknown; uid?: unknown };
}
interface Panel {
  id?: unknown;
  type?: unknown;
  title?: unknown;
  gridPos?: { h?: unknown; w?: unknown; x?: unknown; y?: unknown };
  datasource?: { type?: unknown; uid?: unknown };
  targets?: Target[];
}

const dashboard = JSON.parse(readFileSync(dashboardFile, 'utf8')) as {
  title?: unknown;
  uid?: unknown;
  schemaVersion?: unknown;
  panels?: Panel[];
  templating?: { list?: { name?: unknown; type?: unknown; query?: unknown }[] };
};
const panels = dashboard.panels ?? [];
const queryPanels = panels.filter((p) => p.type !== 'row');
const variables = dashboard.templating?.list ?? [];

// What a PromQL expression may name besides series: functions, aggregations, keywords, label names.
const promql = new Set([
  'sum',
  'max',
  'min',
  'avg',
  'count',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'and',
  'or',
  'unless',
  'rate',
  'increase',
  'irate',
  'histogram_quantile',
  'label_values',
  'absent',
  'clamp_min',
]);
const labels = new Set(['job', 'instance', 'handler', 'kind', 'code', 'from', 'to', 'le', 'quantile']);

/** The series names an expression uses (label values, strings and Grafana variables left out). */
function seriesIn(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\$\w+/g, '');
  const names = bare.match(/[a-zA-Z_:][a-zA-Z0-9_:]*/g) ?? [];
  return names.filter((name) => !promql.has(name) && !labels.has(name) && !/^\d/.test(name));
}

let exported: Set<string>;

beforeAll(async () => {
  const { stdout } = await promisify(execFile)(process.execPath, [exposition.pathname], { timeout: 60_000 });
  exported = new Set(parseExposition(stdout).samples.map((s) => s.name));
}, 90_000);

describe('grafana/cqrs-pool.json', () => {
  it('has what Grafana needs: a title, a uid, a schema version, a datasource variable, panels with targets', () => {
    expect(typeof dashboard.title).toBe('string');
    expect(dashboard.uid).toMatch(/^[a-zA-Z0-9_-]{1,40}$/);
    expect(dashboard.schemaVersion).toEqual(expect.any(Number));
    expect(variables).toContainEqual(
      expect.objectContaining({ name: 'datasource', type: 'datasource', query: 'prometheus' }),
    );
    expect(queryPanels.length).toBeGreaterThanOrEqual(10);
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const panel of queryPanels) {
      const where = String(panel.title);
      expect(panel.title, where).toEqual(expect.any(String));
      expect(panel.type, where).toEqual(expect.any(String));
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's syntax for the datasource variable.
      expect(panel.datasource, where).toEqual({ type: 'prometheus', uid: '${datasource}' });
      for (const key of ['h', 'w', 'x', 'y'] as const)
        expect(panel.gridPos?.[key], where).toEqual(expect.any(Number));
      expect((panel.gridPos?.x as number) + (panel.gridPos?.w as number), where).toBeLessThanOrEqual(24);
      expect(panel.targets?.length, where).toBeGreaterThan(0);
      const refIds = (panel.targets ?? []).map((t) => t.refId);
      expect(new Set(refIds).size, where).toBe(refIds.length);
      for (const target of panel.targets ?? []) {
        expect(target.expr, where).toEqual(expect.any(String));
        expect(target.datasource, where).toEqual(panel.datasource);
      }
    }
  });

  it('uses only the variables it defines', () => {
    const defined = new Set(variables.map((v) => v.name));
    const used = new Set(
      [...JSON.stringify(dashboard).matchAll(/\$\{?([a-zA-Z]\w*)/g)]
        .map((m) => m[1])
        .filter((name) => name !== undefined),
    );
    for (const name of used) expect(defined.has(name), `$${name}`).toBe(true);
  });

  it('queries only series registerCqrsMetrics exports', () => {
    const exprs = [
      ...queryPanels.flatMap((p) => (p.targets ?? []).map((t) => String(t.expr))),
      ...variables
        .filter((v) => v.type === 'query')
        .map((v) => String((v.query as { query?: unknown }).query)),
    ];
    const used = new Set(exprs.flatMap(seriesIn));
    expect([...used].filter((name) => !exported.has(name))).toEqual([]);
    // And every kind of series is on it: the list.
    for (const name of [
      'cqrs_executions_total',
      'cqrs_failures_total',
      'cqrs_call_duration_seconds_bucket',
      'cqrs_queue_wait_seconds_bucket',
      'cqrs_pool_busy_seconds_total',
      'cqrs_pool_threads',
      'cqrs_pool_queue_size',
      'cqrs_circuit_state',
      'cqrs_circuit_transitions_total',
      'cqrs_key_wait_seconds_bucket',
    ]) {
      expect(used.has(name), name).toBe(true);
    }
  });
});

describe('alerts/cqrs-pool.rules.yml', () => {
  it('alerts only on series registerCqrsMetrics exports', () => {
    const rules = parseYaml(readFileSync(rulesFile, 'utf8')) as {
      groups: { rules: { alert: string; expr: string }[] }[];
    };
    const all = rules.groups.flatMap((g) => g.rules);
    expect(all.length).toBeGreaterThan(5);
    const unknown = all.flatMap((r) =>
      seriesIn(r.expr)
        .filter((name) => !exported.has(name))
        .map((n) => `${r.alert}: ${n}`),
    );
    expect(unknown).toEqual([]);
  });
});
