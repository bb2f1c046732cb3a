// The network map: China (and Singapore) with every site at its coordinates, sized
// by capacity and coloured by grid carbon intensity or green share, polled every
// few seconds. The container exposes what the chart drew (data-rendered-sites) and
// when it first drew every site (data-first-render-ms), for tests and benchmarks.

import * as echarts from 'echarts/core';
import { ScatterChart } from 'echarts/charts';
import { GeoComponent, TooltipComponent, VisualMapComponent } from 'echarts/components';
import { CanvasRenderer } from 'echarts/renderers';
import networkMap from 'virtual:network-map';
import { get, type Overview, type SiteDoc, type SiteNow } from '../api';
import { classes, failure, h, loading, units } from '../dom';
import { lang, t } from '../i18n';
import { onAuthError, type Page } from '../session';

echarts.use([ScatterChart, GeoComponent, TooltipComponent, VisualMapComponent, CanvasRenderer]);
// Registered as `china` so that ECharts adds the 南海诸岛 inset and 钓鱼岛 to it.
echarts.registerMap('china', networkMap as Parameters<typeof echarts.registerMap>[1]);

const REFRESH_MS = 3000;
type Metric = 'carbon' | 'green';
let metric: Metric = localStorage.getItem('suanwang.metric') === 'green' ? 'green' : 'carbon';

export function siteName(doc: SiteDoc | undefined, id: string): string {
  if (!doc) return id;
  return (lang() === 'zh' ? doc.site.name_zh : doc.site.name) ?? doc.site.name ?? id;
}

export const mapPage: Page = (root) => {
  const chartBox = h('div', { id: 'map', class: 'map', 'data-rendered-sites': '' });
  const totals = h('dl', { class: 'totals' });
  const updated = h('p', { class: 'muted', id: 'map-updated' });
  const status = h('div', { class: 'map-status' }, loading());
  const switcher = h(
    'div',
    { class: 'switch', role: 'radiogroup', 'aria-label': t('map.colour') },
    ...(['carbon', 'green'] as Metric[]).map((m) =>
      h(
        'button',
        {
          'data-metric': m,
          class: m === metric ? 'on' : '',
          role: 'radio',
          'aria-checked': m === metric ? 'true' : 'false',
          onclick: () => {
            metric = m;
            localStorage.setItem('suanwang.metric', m);
            for (const b of switcher.querySelectorAll('button')) {
              const on = b.getAttribute('data-metric') === m;
              b.classList.toggle('on', on);
              b.setAttribute('aria-checked', on ? 'true' : 'false');
            }
            draw();
          },
        },
        t(m === 'carbon' ? 'map.carbon' : 'map.green'),
      ),
    ),
  );
  root.append(
    h(
      'div',
      { class: 'map-page' },
      h('section', { class: 'map-wrap' }, chartBox, status),
      h(
        'aside',
        { class: 'card side' },
        h('h2', {}, t('map.colour')),
        switcher,
        h('p', { class: 'muted' }, t('map.size')),
        h('p', { class: 'muted' }, t('map.inset')),
        totals,
        updated,
      ),
    ),
  );

  const chart = echarts.init(chartBox, undefined, { renderer: 'canvas' });
  let sites: SiteDoc[] = [];
  let overview: Overview | null = null;
  let timer: number | undefined;
  let stopped = false;
  let firstFull = false;

  chart.on('finished', () => {
    // Read back what the scatter series laid out: only sites with a position inside
    // the canvas count as drawn.
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const model = (chart as any).getModel();
    const series = model?.getSeriesByIndex(0);
    if (!series) return;
    const data = series.getData();
    const drawn: string[] = [];
    const [width, height] = [chart.getWidth(), chart.getHeight()];
    for (let i = 0; i < data.count(); i++) {
      const layout = data.getItemLayout(i) as number[] | undefined;
      if (layout && layout[0] >= 0 && layout[1] >= 0 && layout[0] <= width && layout[1] <= height) {
        drawn.push(String(data.getRawDataItem(i).siteId));
      }
    }
    chartBox.setAttribute('data-rendered-sites', drawn.sort().join(','));
    if (!firstFull && sites.length > 0 && drawn.length === sites.length) {
      firstFull = true;
      chartBox.setAttribute('data-first-render-ms', performance.now().toFixed(0));
    }
  });

  function draw(): void {
    if (!overview) return;
    const byId = new Map(sites.map((s) => [s.id, s]));
    const now = new Map(overview.sites.map((s) => [s.site, s]));
    const maxCapacity = Math.max(1, ...sites.map((s) => units(now.get(s.id)?.capacity)));
    const value = (s: SiteNow | undefined) =>
      s ? (metric === 'carbon' ? s.grid_kg_per_kwh : s.green_share) : 0;
    chart.setOption({
      tooltip: {
        trigger: 'item',
        formatter: (p: { data: { siteId: string } }) => tooltip(byId.get(p.data.siteId), now.get(p.data.siteId), p.data.siteId),
      },
      geo: {
        map: 'china',
        roam: true,
        top: 16,
        bottom: 16,
        itemStyle: { areaColor: '#eef2f6', borderColor: '#9aa9b8', borderWidth: 0.6 },
        emphasis: { disabled: true },
        select: { disabled: true },
        tooltip: { show: false },
      },
      visualMap: {
        type: 'continuous',
        dimension: 2,
        seriesIndex: 0,
        min: 0,
        max: metric === 'carbon' ? 1 : 1,
        calculable: false,
        left: 16,
        bottom: 24,
        text: metric === 'carbon' ? ['1.0 kg/kWh', '0'] : ['100%', '0%'],
        inRange: {
          color:
            metric === 'carbon' ? ['#1a9850', '#fee08b', '#d73027'] : ['#d73027', '#fee08b', '#1a9850'],
        },
      },
      series: [
        {
          type: 'scatter',
          coordinateSystem: 'geo',
          geoIndex: 0,
          animation: false,
          data: sites.map((doc) => {
            const s = now.get(doc.id);
            const capacity = units(s?.capacity);
            return {
              siteId: doc.id,
              name: siteName(doc, doc.id),
              value: [doc.site.location.lon, doc.site.location.lat, value(s), capacity],
              symbolSize: 10 + 30 * Math.sqrt(capacity / maxCapacity),
              itemStyle: {
                borderColor: s?.reachable === false || doc.drained ? '#555' : '#fff',
                borderWidth: 1.5,
                borderType: s?.reachable === false ? 'dashed' : 'solid',
                opacity: 0.9,
              },
            };
          }),
          label: {
            show: true,
            position: 'right',
            formatter: '{b}',
            fontSize: 11,
            color: '#223',
          },
          labelLayout: { hideOverlap: true },
        },
      ],
    });
    const fmt = (n: number, digits = 0) => n.toLocaleString(lang() === 'zh' ? 'zh-CN' : 'en', { maximumFractionDigits: digits });
    totals.replaceChildren(
      h('dt', {}, t('map.sites')),
      h('dd', { id: 'total-sites' }, sites.length),
      h('dt', {}, t('map.pending')),
      h('dd', {}, overview.pending),
      h('dt', {}, t('map.power')),
      h('dd', {}, `${fmt(overview.power_kw)} kW`),
      h('dt', {}, t('map.carbonRate')),
      h('dd', {}, `${fmt(overview.carbon_kg_per_hour)} kg CO₂/h`),
      h('dt', {}, t('map.cost')),
      h('dd', {}, `${fmt(overview.cost_cny_per_hour)} CNY/h`),
    );
    updated.textContent = t('map.updated', new Date(overview.at * 1000).toLocaleString(lang() === 'zh' ? 'zh-CN' : 'en'));
  }

  async function refresh(): Promise<void> {
    try {
      const [siteDocs, now] = await Promise.all([
        sites.length ? Promise.resolve(sites) : get<SiteDoc[]>('/v1/sites'),
        get<Overview>('/v1/overview'),
      ]);
      if (stopped) return;
      sites = siteDocs;
      overview = now;
      status.replaceChildren(sites.length ? '' : h('div', { class: 'state empty', 'data-state': 'empty' }, t('state.empty')));
      draw();
    } catch (e) {
      if (stopped || onAuthError(e)) return;
      status.replaceChildren(failure((e as Error).message));
    }
    if (!stopped) timer = window.setTimeout(refresh, REFRESH_MS);
  }

  const resize = () => chart.resize();
  window.addEventListener('resize', resize);
  refresh();
  return () => {
    stopped = true;
    window.clearTimeout(timer);
    window.removeEventListener('resize', resize);
    chart.dispose();
  };
};

function tooltip(doc: SiteDoc | undefined, s: SiteNow | undefined, id: string): string {
  // ECharts renders this as HTML: escape the names.
  const esc = (v: string) => v.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  const lines = [`<b>${esc(siteName(doc, id))}</b> (${esc(id)})`];
  if (s) {
    lines.push(
      `${esc(t('col.capacity'))}: ${esc(classes(s.capacity))}`,
      `${esc(t('col.busy'))}: ${esc(classes(s.busy))}`,
      `${esc(t('map.running'))}: ${s.running} · ${esc(t('map.queued'))}: ${s.queued}`,
      `${esc(t('map.carbon'))}: ${s.grid_kg_per_kwh.toFixed(3)} kg/kWh`,
      `${esc(t('map.green'))}: ${(s.green_share * 100).toFixed(0)}%`,
    );
    if (s.reachable === false) lines.push(esc(t('map.unreachable')));
  }
  return lines.join('<br>');
}
