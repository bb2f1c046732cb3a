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
