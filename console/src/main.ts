// The console's shell: hash routes, the header (navigation, live-stream state,
// language, sign-out), and the one place that sends an expired token back to the
// login page.

import './style.css';
import { setToken, token } from './api';
import { h } from './dom';
import { lang, setLang, t } from './i18n';
import { loginPage } from './pages/login';
import { mapPage } from './pages/map';
import { sitesPage } from './pages/sites';
import { jobsPage } from './pages/jobs';
import { jobPage } from './pages/job';
import { sitePage } from './pages/site';
import { savingsPage } from './pages/savings';
import { submitPage } from './pages/submit';
import { connect, disconnect, liveState, onLiveState, subscribe, type LiveState } from './live';
import { onAuthError } from './session';
import { ApiError } from './api';

import type { Page } from './session';
const app = document.getElementById('app')!;
let stop: (() => void) | void;

/** The section a route belongs to: a site's page under Sites, a job's under Jobs. */
const SECTION: Record<string, string> = { site: 'sites', job: 'jobs' };

function header(route: string): HTMLElement {
  const section = SECTION[route] ?? route;
  const link = (hash: string, key: 'nav.map' | 'nav.sites' | 'nav.jobs' | 'nav.savings' | 'nav.submit') =>
    h('a', { href: hash, class: section === hash.slice(2) ? 'active' : '', 'data-nav': key }, t(key));
  return h(
    'header',
    {},
    h('span', { class: 'brand' }, h('span', { lang: 'zh-CN' }, '算网'), ' suanwang'),
    h(
      'nav',
      {},
      link('#/map', 'nav.map'),
      link('#/sites', 'nav.sites'),
      link('#/jobs', 'nav.jobs'),
      link('#/savings', 'nav.savings'),
      link('#/submit', 'nav.submit'),
    ),
    h('span', { class: 'spacer' }),
    token() ? liveBadge() : null,
    h(
      'button',
      {
        id: 'lang',
        // The button names the other language in that language.
        lang: lang() === 'en' ? 'zh-CN' : 'en',
        onclick: () => {
          setLang(lang() === 'en' ? 'zh' : 'en');
          render();
        },
      },
      t('lang.switch'),
    ),
    token()
      ? h(
          'button',
          {
            id: 'signout',
            onclick: () => {
              setToken(null);
              disconnect();
              location.hash = '#/login';
            },
          },
          t('nav.signout'),
        )
      : null,
  );
}

let unwatch: (() => void) | undefined;

/** The live stream's state, kept current. */
function liveBadge(): HTMLElement {
  // A status: a screen reader says when the stream drops or comes back.
  const badge = h('span', { id: 'live', class: 'live', role: 'status' });
  const show = (s: LiveState) => {
    badge.className = `live ${s}`;
    badge.setAttribute('data-live', s);
    badge.textContent = t(s === 'live' ? 'live.on' : s === 'connecting' ? 'live.connecting' : 'live.off');
  };
  show(liveState());
  if (unwatch) unwatch();
  unwatch = onLiveState(show);
  return badge;
}

// A stream refused for its token signs out like any other 401.
subscribe('unauthorized', () => onAuthError(new ApiError(401, 'unauthorized')));

function render(): void {
  if (stop) stop();
  stop = undefined;
  const [path, query] = location.hash.replace(/^#\/?/, '').split('?');
  const [route, arg] = path.split('/');
  const params = new URLSearchParams(query ?? '');
  if (!token() && route !== 'login') {
    location.hash = '#/login';
    return;
  }
  if (route !== 'login') connect();
  // A control that draws the page again (the language button, a filter) keeps
  // the keyboard's focus: it is found again by its id in the new page.
  const focused = document.activeElement?.id;
  const main = h('main', { 'data-page': route || 'map' });
  app.replaceChildren(header(route || 'map'), main);
  document.title = `${t('app.title')} · ${route || 'map'}`;
  const pages: Record<string, Page> = {
    login: loginPage,
    map: mapPage,
    sites: sitesPage,
    jobs: jobsPage,
    job: jobPage,
    site: sitePage,
    savings: savingsPage,
    submit: submitPage,
  };
  const page = pages[route] ?? (route ? null : mapPage);
  if (!page) {
    location.hash = '#/map';
    return;
  }
  stop = page(main, params, arg);
  if (focused) document.getElementById(focused)?.focus();
}

setLang(lang());
window.addEventListener('hashchange', render);
render();
