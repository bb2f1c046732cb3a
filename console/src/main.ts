// The console's shell: hash routes, the header (navigation, language, sign-out),
// and the one place that sends an expired token back to the login page.

import './style.css';
import { setToken, token } from './api';
import { h } from './dom';
import { lang, setLang, t } from './i18n';
import { loginPage } from './pages/login';
import { mapPage } from './pages/map';
import { sitesPage } from './pages/sites';
import { jobsPage } from './pages/jobs';
import { jobPage } from './pages/job';

import type { Page } from './session';
const app = document.getElementById('app')!;
let stop: (() => void) | void;

function header(route: string): HTMLElement {
  const link = (hash: string, key: 'nav.map' | 'nav.sites' | 'nav.jobs') =>
    h('a', { href: hash, class: route === hash.slice(2).split('/')[0] ? 'active' : '', 'data-nav': key }, t(key));
  return h(
    'header',
    {},
    h('span', { class: 'brand' }, '算网 suanwang'),
    h('nav', {}, link('#/map', 'nav.map'), link('#/sites', 'nav.sites'), link('#/jobs', 'nav.jobs')),
    h('span', { class: 'spacer' }),
    h(
      'button',
      {
        id: 'lang',
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
              location.hash = '#/login';
            },
          },
          t('nav.signout'),
        )
      : null,
  );
}

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
  const main = h('main', { 'data-page': route || 'map' });
  app.replaceChildren(header(route || 'map'), main);
  document.title = `${t('app.title')} · ${route || 'map'}`;
  const pages: Record<string, Page> = {
    login: loginPage,
    map: mapPage,
    sites: sitesPage,
    jobs: jobsPage,
    job: jobPage,
  };
  const page = pages[route] ?? (route ? null : mapPage);
  if (!page) {
    location.hash = '#/map';
    return;
  }
  stop = page(main, params, arg);
}

setLang(lang());
window.addEventListener('hashchange', render);
render();
