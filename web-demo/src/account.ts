/**
 * `/account`: sign in, or create an account, then back to where the user came from (`?next=`,
 * same-site paths only) or to the Volunteer page.
 */
import { api, ApiError, fetchMe, signOut } from './session.js';
import { $ } from './page.js';

interface PageState {
  state: string;
  error?: { code: string; message: string };
}


const MESSAGES: Record<string, string> = {
  CASCADE_ERR_ACCOUNT_BAD_CREDENTIALS: 'Wrong name or password.',
  CASCADE_ERR_ACCOUNT_NAME_TAKEN: 'This name is taken: pick another one.',
  CASCADE_ERR_ACCOUNT_INVALID_NAME: 'Names are 3 to 32 letters, digits, _ . - and start with a letter or digit.',
  CASCADE_ERR_ACCOUNT_WEAK_PASSWORD: 'Passwords have at least 10 characters.',
  CASCADE_ERR_ACCOUNT_RATE_LIMITED: 'Too many attempts. Wait a minute and try again.',
  CASCADE_ERR_ACCOUNT_BUSY: 'The server is busy. Try again in a moment.',
  CASCADE_ERR_ACCOUNT_DISABLED: 'Accounts are switched off on this server.',
};

/** Where to go once signed in: a path of this site only (never another origin). */
function next(): string {
  const n = new URLSearchParams(window.location.search).get('next') ?? '';
  return /^\/(?!\/)[\w\-./]*$/.test(n) && n !== '/account' ? n : '/volunteer';
}

export async function accountPage(demo: PageState): Promise<void> {
  let mode: 'signin' | 'signup' = new URLSearchParams(window.location.search).get('mode') === 'signup' ? 'signup' : 'signin';
  const me = await fetchMe();
  if (me) {
    $('formPanel').hidden = true;
    $('signedInPanel').hidden = false;
    $('who').textContent = me.name;
    $('heading').textContent = 'Your account';
    $('signOut').addEventListener('click', async () => {
      await signOut().catch(() => undefined);
      window.location.href = '/account';
    });
    demo.state = 'signedin';
    return;
  }
  const setMode = (m: 'signin' | 'signup') => {
    mode = m;
    const signup = m === 'signup';
    $('tabSignin').classList.toggle('active', !signup);
    $('tabSignup').classList.toggle('active', signup);
    $('heading').textContent = signup ? 'Create an account' : 'Sign in';
    $('submit').textContent = signup ? 'Create my account' : 'Sign in';
    $('nameHint').hidden = !signup;
    $('passwordHint').hidden = !signup;
    $<HTMLInputElement>('password').autocomplete = signup ? 'new-password' : 'current-password';
    $('error').hidden = true;
  };
  $('tabSignin').addEventListener('click', () => setMode('signin'));
  $('tabSignup').addEventListener('click', () => setMode('signup'));
  setMode(mode);
  $('form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const submit = $<HTMLButtonElement>('submit');
    submit.disabled = true;
    $('error').hidden = true;
    demo.state = 'submitting';
    try {
      await api('POST', mode === 'signup' ? '/api/account/signup' : '/api/account/signin', {
        name: $<HTMLInputElement>('name').value.trim(),
        password: $<HTMLInputElement>('password').value,
      });
      demo.state = 'signedin';
      window.location.href = next();
    } catch (err) {
      const e = err instanceof ApiError ? err : new ApiError('CASCADE_ERR_CLIENT_CONNECTION', 'cannot reach the server', 0);
      demo.state = 'error';
      demo.error = { code: e.code, message: e.message };
      const box = $('error');
      box.textContent = MESSAGES[e.code] ?? e.message;
      box.hidden = false;
      submit.disabled = false;
    }
  });
  demo.state = 'ready';
}
