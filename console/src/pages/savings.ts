// Savings: what the jobs placed in a window cost and emitted, against the same
// jobs under `local-fifo` (each at its home site, first come first served), for
// the network and per tenant. A tenant sees only its own row. The server says how
// the comparison is made; that label is shown as it is.

import * as echarts from 'echarts/core';
import { BarChart } from 'echarts/charts';
import { GridComponent, LegendComponent, TooltipComponent } from 'echarts/components';
import { CanvasRenderer } from 'echarts/renderers';
import { get, type Comparison, type SavingsDoc } from '../api';
import { describeChart, empty, failure, h, loading, scrollRegion, time } from '../dom';
import { lang, t } from '../i18n';
import { onAuthError, type Page } from '../session';

echarts.use([BarChart, GridComponent, LegendComponent, TooltipComponent, CanvasRenderer]);

const fmt = (n: number, digits = 0) => n.toLocaleString(lang() === 'zh' ? 'zh-CN' : 'en', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const pct = (saved: number, base: number) => (base > 0 ? `${((100 * saved) / base).toFixed(1)}%` : '—');

export const savingsPage: Page = (root, params) => {
  const days = Math.min(90, Math.max(1, Number(params.get('days') ?? 7) || 7));
  const select = h(
    'select',
    { id: 'savings-days', onchange: () => (location.hash = `#/savings?days=${select.value}`) },
    ...[1, 7, 30, 90].map((d) => h('option', { value: d, selected: d === days }, t('savings.days', d))),
  );
  const body = h('div', {}, loading());
  root.append(h('div', { class: 'title-row' }, h('h1', {}, t('savings.title')), h('label', {}, t('savings.window'), ' ', select)), body);
  let stopped = false;
  const charts: echarts.ECharts[] = [];

  function card(c: Comparison, title: string, id: string): HTMLElement {
    // Positive: less than local-fifo (saved); negative: more.
    const saved = (v: number, digits: number, base: number) => {
      if (Math.abs(v) < 0.5 * 10 ** -digits) return h('span', {}, '0');
      return v > 0
        ? h('span', { class: 'good' }, `${fmt(v, digits)} (${pct(v, base)})`)
        : h('span', { class: 'bad' }, t('savings.more', fmt(-v, digits), pct(-v, base)));
    };
    const line = (label: Parameters<typeof t>[0], actual: number, fifo: number, diff: number, digits: number, field: string) =>
      h(
        'tr',
        {},
        h('th', { scope: 'row' }, t(label)),
        h('td', { class: 'num' }, fmt(actual, digits)),
        h('td', { class: 'num' }, fmt(fifo, digits)),
        h('td', { class: 'num', 'data-field': field }, saved(diff, digits, fifo)),
      );
    const heading = h('h2', { id: `${id}-title` }, title);
    const section = h(
      'section',
      { class: 'card saving', id },
      heading,
      h('p', { class: 'muted' }, t('savings.jobs'), ' ', h('span', { 'data-field': 'jobs' }, c.jobs), c.excluded ? ` (${t('savings.excluded', c.excluded)})` : ''),
      h(
        'table',
        { class: 'compact saving-table' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            // The row headers' column: named for screen readers, blank on screen.
            h('th', {}, h('span', { class: 'sr-only' }, t('savings.measure'))),
            h('th', {}, t('savings.actual')),
            h('th', {}, t('savings.localFifo')),
            h('th', {}, t('savings.saved')),
          ),
        ),
        h(
          'tbody',
          {},
          line('savings.costCny', c.actual.cost_cny, c.local_fifo.cost_cny, c.saved_cny, 0, 'saved-cny'),
          line('savings.carbonKg', c.actual.carbon_kg, c.local_fifo.carbon_kg, c.saved_kg, 1, 'saved-kg'),
        ),
      ),
    );
    // A narrow window scrolls the card's table sideways, inside the card.
    return scrollRegion(section, heading);
  }

  function chart(box: HTMLElement, rows: Comparison[]): void {
    requestAnimationFrame(() => {
      if (!box.isConnected) return;
      const c = echarts.init(box, undefined, { renderer: 'canvas' });
      charts.push(c);
      const names = rows.map((r) => r.tenant ?? t('savings.network'));
      describeChart(box, t('savings.chartAlt', names.join(lang() === 'zh' ? '、' : ', ')));
      c.setOption({
        animation: false,
        tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' } },
        legend: { top: 0 },
        grid: [
          { left: 120, right: '54%', top: 40, bottom: 24 },
          { left: '58%', right: 16, top: 40, bottom: 24 },
        ],
        xAxis: [
          { type: 'value', gridIndex: 0, name: 'CNY' },
          { type: 'value', gridIndex: 1, name: 'kg CO₂' },
        ],
        yAxis: [
          { type: 'category', gridIndex: 0, data: names, inverse: true },
          { type: 'category', gridIndex: 1, data: names, inverse: true, axisLabel: { show: false } },
        ],
        series: [
          { type: 'bar', name: t('savings.actual'), xAxisIndex: 0, yAxisIndex: 0, itemStyle: { color: '#2b6cb0' }, data: rows.map((r) => Math.round(r.actual.cost_cny)) },
          { type: 'bar', name: t('savings.localFifo'), xAxisIndex: 0, yAxisIndex: 0, itemStyle: { color: '#a0aec0' }, data: rows.map((r) => Math.round(r.local_fifo.cost_cny)) },
          { type: 'bar', name: t('savings.actual'), xAxisIndex: 1, yAxisIndex: 1, itemStyle: { color: '#2f855a' }, data: rows.map((r) => Number(r.actual.carbon_kg.toFixed(1))) },
          { type: 'bar', name: t('savings.localFifo'), xAxisIndex: 1, yAxisIndex: 1, itemStyle: { color: '#c6d3c9' }, data: rows.map((r) => Number(r.local_fifo.carbon_kg.toFixed(1))) },
        ],
      });
    });
  }

  async function load(): Promise<void> {
    try {
      const doc = await get<SavingsDoc>(`/v1/savings?days=${days}`);
      if (stopped) return;
      for (const c of charts.splice(0)) c.dispose();
      const rows = doc.tenants;
      if (!rows.length && !doc.network?.jobs) {
        body.replaceChildren(empty());
        return;
      }
      const box = h('div', { class: 'chart', id: 'savings-chart' });
      body.replaceChildren(
        h('p', { class: 'muted' }, t('savings.span', time(doc.from), time(doc.to))),
        h(
          'div',
          { class: 'savings-grid' },
          doc.network ? card(doc.network, t('savings.network'), 'savings-network') : null,
          ...rows.map((r) => card(r, r.tenant ?? `#${r.tenant_id}`, `savings-tenant-${r.tenant_id}`)),
        ),
        h('section', { class: 'card' }, box),
        h('p', { class: 'muted', id: 'savings-label' }, doc.label),
      );
      chart(box, doc.network ? [{ ...doc.network, tenant: t('savings.network') }, ...rows] : rows);
    } catch (e) {
      if (stopped || onAuthError(e)) return;
      body.replaceChildren(failure((e as Error).message, load));
    }
  }

  load();
  // The server recomputes at most every 30 s.
  const timer = window.setInterval(load, 30000);
  const resize = () => charts.forEach((c) => c.resize());
  window.addEventListener('resize', resize);
  return () => {
    stopped = true;
    window.clearInterval(timer);
    window.removeEventListener('resize', resize);
    for (const c of charts) c.dispose();
  };
};
