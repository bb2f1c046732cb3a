// The jobs table, newest first, paginated with the API's `before` cursor and
// filtered by state. The cursor and filter live in the hash
// (#/jobs?state=Running&before=120), so a page can be linked and the back button
// works. Rows change in place as the live stream reports their jobs; new jobs
// appear at the top of the first page.

import { get, type JobDoc, type JobPage } from '../api';
import { subscribe, whileDown } from '../live';
import { empty, failure, h, loading, tableBox, time } from '../dom';
import { JOB_STATES, stateName, t } from '../i18n';
import { onAuthError, type Page } from '../session';

const LIMIT = 25;

export const jobsPage: Page = (root, params) => {
  const state = params.get('state') ?? '';
  const before = params.get('before');
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
  let rows = new Map<number, HTMLTableRowElement>();
  let tbody: HTMLTableSectionElement | null = null;
  let nextButton: HTMLButtonElement | null = null;
  // The next page starts below the oldest row shown (which moves as new jobs
  // push rows off the first page).
  let nextCursor: number | null = null;

  const row = (job: JobDoc) =>
    h(
      'tr',
      { 'data-job': job.id, 'data-state': job.state },
      h('td', {}, h('a', { href: `#/job/${job.id}` }, `#${job.id}`)),
      h('td', {}, h('span', { class: `pill ${job.state}` }, stateName(job.state))),
      h('td', {}, job.site ?? '—'),
      h('td', { class: 'num' }, job.tenant_id),
      h('td', {}, time(job.created_at)),
      h('td', {}, time(job.start_at)),
      h('td', { class: 'num' }, job.exit_code ?? '—'),
    );

  /** Applies a `jobs` event: rows change in place; on the first page, new jobs
   * that pass the filter come in at the top (the oldest row moves to page 2). */
  function apply(jobs: JobDoc[]): void {
    if (!tbody) {
      // An empty first page: the first job to show brings the table.
      if (!before && jobs.some((j) => !state || j.state === state)) load();
      return;
    }
    for (const job of jobs) {
      const old = rows.get(job.id);
      if (old) {
        const fresh = row(job);
        fresh.classList.add('changed');
        old.replaceWith(fresh);
        rows.set(job.id, fresh);
        continue;
      }
      if (state && job.state !== state) continue;
      if (before || job.id <= Math.max(0, ...rows.keys())) continue;
      const fresh = row(job);
      fresh.classList.add('changed');
      tbody.prepend(fresh);
      rows.set(job.id, fresh);
      if (rows.size > LIMIT) {
        const oldest = Math.min(...rows.keys());
        rows.get(oldest)?.remove();
        rows.delete(oldest);
        nextCursor = Math.min(...rows.keys());
        if (nextButton) nextButton.disabled = false;
      }
    }
  }
  const unsubscribe = [
    subscribe('jobs', (data) => apply((data as { jobs: JobDoc[] }).jobs)),
    subscribe('resync', () => load()),
    whileDown(load),
  ];

  async function load(): Promise<void> {
    const q = new URLSearchParams({ limit: String(LIMIT), order: 'desc' });
    if (state) q.set('state', state);
    if (before) q.set('before', before);
    try {
      const page = await get<JobPage>(`/v1/jobs?${q}`);
      if (stopped) return;
      const table = page.jobs.length
        ? tableBox(
            h(
              'table',
              { id: 'jobs-table' },
              h(
                'thead',
                {},
                h('tr', {}, ...(['col.id', 'col.state', 'col.site', 'col.tenant', 'col.created', 'col.start', 'col.exit'] as const).map((k) => h('th', {}, t(k)))),
              ),
              (tbody = h('tbody', {}, ...page.jobs.map(row))),
            ),
            t('jobs.title'),
          )
        : empty();
      rows = new Map();
      if (!page.jobs.length) tbody = null;
      for (const tr of tbody?.querySelectorAll('tr') ?? []) rows.set(Number(tr.getAttribute('data-job')), tr as HTMLTableRowElement);
      nextCursor = page.next ?? null;
      const pageNo = trail.length + 1;
      const pager = h(
        'div',
        { class: 'pager' },
        h(
          'button',
          {
            id: 'prev',
            disabled: pageNo === 1,
            onclick: () => go({ state, before: trail[trail.length - 1] === '0' ? '' : (trail[trail.length - 1] ?? ''), trail: trail.slice(0, -1).join(',') }),
          },
          t('jobs.prev'),
        ),
        h('span', {}, t('jobs.page', pageNo)),
        h(
          'button',
          {
            id: 'next',
            disabled: page.next === null || page.next === undefined,
            onclick: () => go({ state, before: String(nextCursor), trail: [...trail, before ?? '0'].join(',') }),
          },
          t('jobs.next'),
        ),
      );
      nextButton = pager.querySelector('#next');
      body.replaceChildren(table, pager);
    } catch (e) {
      if (stopped || onAuthError(e)) return;
      body.replaceChildren(failure((e as Error).message, load));
    }
  }

  load();
  return () => {
    stopped = true;
    for (const f of unsubscribe) f();
  };
};
