import { ApiError, get, setToken } from '../api';
import { h } from '../dom';
import { t } from '../i18n';
import { takeNotice, type Page } from '../session';

export const loginPage: Page = (root) => {
  const message = h('p', { class: 'message', id: 'login-message', role: 'alert' }, takeNotice() ?? '');
  const input = h('input', {
    id: 'token',
    type: 'password',
    autocomplete: 'off',
    placeholder: 'sw_…',
    'aria-label': t('login.token'),
  });
  const submit = h('button', { type: 'submit' }, t('login.submit'));
  const form = h(
    'form',
    { class: 'login card' },
    h('h1', {}, t('login.title')),
    h('p', { class: 'help' }, t('login.help')),
    h('label', { for: 'token' }, t('login.token')),
    input,
    submit,
    message,
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const value = input.value.trim();
    if (!value) {
      message.textContent = t('login.empty');
      return;
    }
    message.textContent = t('login.checking');
    submit.disabled = true;
    try {
      // Any principal may list its jobs: a cheap check that the token is valid.
      await get('/v1/jobs?limit=1', value);
      setToken(value);
      location.hash = '#/map';
    } catch (err) {
      message.textContent =
        err instanceof ApiError && (err.status === 401 || err.status === 403)
          ? t('login.invalid')
          : t('state.error', (err as Error).message);
    } finally {
      submit.disabled = false;
    }
  });
  root.append(form);
  input.focus();
};
