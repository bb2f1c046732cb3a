// The sites table: static description from /v1/sites beside what /v1/overview says now.

import { get, type Overview, type SiteDoc } from '../api';
import { classes, empty, failure, h, loading } from '../dom';
import { t } from '../i18n';
import { onAuthError, type Page } from '../session';
import { siteName } from './map';

export const sitesPage: Page = (root) => {
  const body = h('div', {}, loading());
  root.append(h('h1', {}, t('sites.title')), body);
  let stopped = false;
  let timer: number | undefined;

  async function load(): Promise<void> {
    try {
      const [sites, overview] = await Promise.all([get<SiteDoc[]>('/v1/sites'), get<Overview>('/v1/overview')]);
      if (stopped) return;
      const now = new Map(overview.sites.map((s) => [s.site, s]));
      if (!sites.length) {
        body.replaceChildren(empty());
      } else {
        const head = ['col.site', 'col.name', 'col.capacity', 'col.busy', 'col.running', 'col.queued', 'col.power', 'col.carbon', 'col.green', 'col.tariff', 'col.status'] as const;
        body.replaceChildren(
          h(
            'table',
            { id: 'sites-table' },
            h('thead', {}, h('tr', {}, ...head.map((k) => h('th', {}, t(k))))),
            h(
              'tbody',
              {},
              ...sites.map((doc) => {
                const s = now.get(doc.id);
                const reach = doc.drained ? 'status.drained' : doc.reachable === true ? 'status.ok' : doc.reachable === false ? 'status.down' : 'status.none';
                return h(
                  'tr',
                  { 'data-site': doc.id },
                  h('td', {}, h('code', {}, doc.id)),
                  h('td', {}, siteName(doc, doc.id)),
                  h('td', {}, classes(s?.capacity)),
                  h('td', {}, classes(s?.busy)),
                  h('td', { class: 'num' }, s?.running ?? '—'),
                  h('td', { class: 'num' }, s?.queued ?? '—'),
                  h('td', { class: 'num' }, s ? s.power_kw.toFixed(1) : '—'),
                  h('td', { class: 'num' }, s ? s.grid_kg_per_kwh.toFixed(3) : '—'),
                  h('td', { class: 'num' }, s ? `${(s.green_share * 100).toFixed(0)}%` : '—'),
                  h('td', { class: 'num' }, s ? s.tariff_cny_per_kwh.toFixed(3) : '—'),
                  h('td', { class: `status ${reach.slice(7)}` }, t(reach)),
                );
              }),
            ),
          ),
        );
      }
    } catch (e) {
      if (stopped || onAuthError(e)) return;
      body.replaceChildren(failure((e as Error).message, load));
      return;
    }
    if (!stopped) timer = window.setTimeout(load, 5000);
  }

  load();
  return () => {
    stopped = true;
    window.clearTimeout(timer);
  };
};
