// A few DOM helpers, so that pages build elements without innerHTML (no injection
// from names or logs) and show the same loading, empty and error states.

import { t } from './i18n';

type Child = Node | string | number | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number | boolean | ((e: Event) => void)> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (typeof value === 'function') el.addEventListener(name.replace(/^on/, ''), value);
    else if (value === true) el.setAttribute(name, '');
    else if (value !== false) el.setAttribute(name, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    el.append(typeof child === 'number' ? String(child) : child);
  }
  return el;
}

export function loading(): HTMLElement {
  return h('div', { class: 'state loading', 'data-state': 'loading' }, t('state.loading'));
}

export function empty(): HTMLElement {
  return h('div', { class: 'state empty', 'data-state': 'empty' }, t('state.empty'));
}

export function failure(message: string, retry?: () => void): HTMLElement {
  return h(
    'div',
    { class: 'state error', 'data-state': 'error', role: 'alert' },
    t('state.error', message),
    retry ? h('button', { onclick: retry }, t('state.retry')) : null,
  );
}

/** Gives a chart's box (ECharts draws on a canvas, which screen readers cannot
 * read) the role of an image and `text` as its name: what the chart shows and
 * where its figures are in text. */
export function describeChart(box: HTMLElement, text: string): void {
  box.setAttribute('role', 'img');
  box.setAttribute('aria-label', text);
}

/** Makes a box that may scroll (a log, a wide table in its own box) reachable
 * from the keyboard while its content overflows it, so that the overflow can be
 * scrolled without a mouse: it then takes focus (tabindex 0) and is a region
 * named by `name` (a heading, or a text). While everything fits, it is a plain
 * box and no stop on the way through the page. Follows the box's size and its
 * children's (a narrower window, a table whose cells change). */
export function scrollRegion<E extends HTMLElement>(box: E, name: HTMLElement | string): E {
  if (typeof name !== 'string' && !name.id) throw new Error('scrollRegion: a heading that names a region needs an id');
  const follow = () => {
    const overflows = box.scrollWidth > box.clientWidth + 1 || box.scrollHeight > box.clientHeight + 1;
    if (overflows === box.hasAttribute('tabindex')) return;
    if (overflows) {
      box.setAttribute('tabindex', '0');
      box.setAttribute('role', 'region');
      if (typeof name === 'string') box.setAttribute('aria-label', name);
      else box.setAttribute('aria-labelledby', name.id);
    } else {
      for (const attribute of ['tabindex', 'role', 'aria-label', 'aria-labelledby']) box.removeAttribute(attribute);
    }
  };
  const observer = new ResizeObserver(follow);
  observer.observe(box);
  for (const child of box.children) observer.observe(child);
  return box;
}

/** A table in a box of its own, which a narrow window scrolls sideways (the
 * page itself never does): a scroll region named by `name`. */
export function tableBox(table: HTMLTableElement, name: HTMLElement | string): HTMLElement {
  return scrollRegion(h('div', { class: 'table-wrap' }, table), name);
}

/** Unix seconds as a local date and time, or an em dash. */
export function time(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return '—';
  const d = new Date(seconds * 1000);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function sum(values: Record<string, number> | undefined): number {
  return Object.values(values ?? {}).reduce((a, b) => a + b, 0);
}

export function classes(values: Record<string, number> | undefined): string {
  const entries = Object.entries(values ?? {});
  return entries.length ? entries.map(([k, v]) => `${k} ${v}`).join(', ') : '—';
}

/** The size of a site for the map: its accelerators (every class but CPU cores and
 * memory), or its CPU cores where it has none. */
export function units(capacity: Record<string, number> | undefined): number {
  const entries = Object.entries(capacity ?? {});
  const accelerators = entries.filter(([k]) => k !== 'cpu' && !k.startsWith('mem')).reduce((a, [, v]) => a + v, 0);
  return accelerators || (capacity?.cpu ?? 0);
}
