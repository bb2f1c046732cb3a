// The jobs table, paginated with the API's `after` cursor and filtered by state.
// The cursor and filter live in the hash (#/jobs?state=Running&after=120), so a
// page can be linked and the back button works.

import { get, type JobPage } from '../api';
import { empty, failure, h, loading, time } from '../dom';
import { JOB_STATES, stateName, t } from '../i18n';
import { onAuthError, type Page } from '../session';

const LIMIT = 25;

export const jobsPage: Page = (root, params) => {
  const state = params.get('state') ?? '';
  const after = params.get('after');
  // Cursors of the earlier pages, so that "Previous" can go back.
  const trail = (params.get('trail') ?? '').split(',').filter(Boolean);
  const go = (next: Record<string, string>) => {
    const q = new URLSearchParams(Object.entries(next).filter(([, v]) => v !== ''));
    location.hash = `#/jobs?${q}`;
  };
  const select = h(
    'select',
    { id: 'state-filter', onchange: () => go({ state: select.value }) },
    h('option', { value: '' }, t('jobs.any')),
    ...JOB_STATES.map((s) => h('option', { value: s, selected: s === state }, stateName(s))),
  );
  const body = h('div', {}, loading());
  root.append(
    h('div', { class: 'title-row' }, h('h1', {}, t('jobs.title')), h('label', {}, t('jobs.state'), ' ', select)),
    body,
  );
  let stopped = false;

  async function load(): Promise<void> {
    const q = new URLSearchParams({ limit: String(LIMIT) });
    if (state) q.set('state', state);
    if (after) q.set('after', after);
    try {
      const page = await get<JobPage>(`/v1/jobs?${q}`);
      if (stopped) return;
      const table = page.jobs.length
        ? h(
            'table',
            { id: 'jobs-table' },
            h(
              'thead',
              {},
              h('tr', {}, ...(['col.id', 'col.state', 'col.site', 'col.tenant', 'col.created', 'col.start', 'col.exit'] as const).map((k) => h('th', {}, t(k)))),
            ),
            h(
              'tbody',
              {},
              ...page.jobs.map((job) =>
                h(
                  'tr',
                  { 'data-job': job.id },
                  h('td', {}, h('a', { href: `#/job/${job.id}` }, `#${job.id}`)),
                  h('td', {}, h('span', { class: `pill ${job.state}` }, stateName(job.state))),
                  h('td', {}, job.site ?? '—'),
                  h('td', { class: 'num' }, job.tenant_id),
                  h('td', {}, time(job.created_at)),
                  h('td', {}, time(job.start_at)),
                  h('td', { class: 'num' }, job.exit_code ?? '—'),
                ),
              ),
            ),
          )
        : empty();
      const pageNo = trail.length + 1;
      const pager = h(
        'div',
        { class: 'pager' },
        h(
          'button',
          {
            id: 'prev',
            disabled: pageNo === 1,
            onclick: () => go({ state, after: trail[trail.length - 1] === '0' ? '' : (trail[trail.length - 1] ?? ''), trail: trail.slice(0, -1).join(',') }),
          },
          t('jobs.prev'),
        ),
        h('span', {}, t('jobs.page', pageNo)),
        h(
          'button',
          {
            id: 'next',
            disabled: page.next === null || page.next === undefined,
            onclick: () => go({ state, after: String(page.next), trail: [...trail, after ?? '0'].join(',') }),
          },
          t('jobs.next'),
        ),
      );
      body.replaceChildren(table, pager);
    } catch (e) {
      if (stopped || onAuthError(e)) return;
      body.replaceChildren(failure((e as Error).message, load));
    }
  }

  load();
  return () => {
    stopped = true;
  };
};
