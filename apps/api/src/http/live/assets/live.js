// The live transcript page's script: plain ES module, no framework, no build step.
// Holds no credential: the login answer is an HttpOnly cookie the browser sends by itself.
// Text goes into the page with textContent only, never as HTML.

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

const view = {
  login: $('login-view'),
  app: $('app-view'),
  who: $('who'),
  appName: $('app-name'),
  form: /** @type {HTMLFormElement} */ ($('login')),
  apiId: /** @type {HTMLInputElement} */ ($('api-id')),
  secret: /** @type {HTMLInputElement} */ ($('api-secret')),
  loginError: $('login-error'),
  calls: $('calls'),
  callsEmpty: $('calls-empty'),
  heading: $('transcript-heading'),
  status: $('transcript-status'),
  transcript: $('transcript'),
};

const CALLS_REFRESH_MS = 2000;
let callsTimer = 0;
let callsShown = '';
/** @type {{ id: string, source: EventSource, seen: Set<string> } | null} */
let watching = null;

async function getJson(path, init = {}) {
  const response = await fetch(path, { credentials: 'same-origin', headers: { accept: 'application/json' }, ...init });
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON
  }
  return { status: response.status, body };
}

function showLogin(message = '') {
  stopWatching();
  clearInterval(callsTimer);
  callsShown = '';
  view.app.hidden = true;
  view.who.hidden = true;
  view.login.hidden = false;
  view.loginError.textContent = message;
  view.apiId.focus();
}

function showApp(session) {
  view.login.hidden = true;
  view.app.hidden = false;
  view.who.hidden = false;
  view.appName.textContent = session.name || session.apiId;
  refreshCalls();
  clearInterval(callsTimer);
  callsTimer = setInterval(refreshCalls, CALLS_REFRESH_MS);
}

view.form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const apiId = view.apiId.value.trim();
  const apiSecret = view.secret.value;
  if (!apiId || !apiSecret) {
    view.loginError.textContent = 'Enter the API id and the secret.';
    return;
  }
  view.loginError.textContent = '';
  const { status, body } = await getJson('/live/session', {
    method: 'POST',
    headers: { accept: 'application/json', 'content-type': 'application/json' },
    body: JSON.stringify({ apiId, apiSecret }),
  });
  view.secret.value = '';
  if (status === 200) {
    showApp(body);
    return;
  }
  view.loginError.textContent = body?.error?.message ?? `Login failed (HTTP ${status}).`;
  view.secret.focus();
});

$('logout').addEventListener('click', async () => {
  await getJson('/live/session/end', { method: 'POST' });
  showLogin('Logged out.');
});

async function refreshCalls() {
  const { status, body } = await getJson('/live/calls').catch(() => ({ status: 0, body: null }));
  if (status === 401) {
    showLogin('Your session ended; log in again.');
    return;
  }
  if (status !== 200) return; // keep the list; try again on the next tick
  const items = body.items;
  const shown = JSON.stringify(items);
  if (shown === callsShown) return; // unchanged: leave the DOM (and the keyboard focus) alone
  callsShown = shown;
  view.callsEmpty.hidden = items.length > 0;
  const focused = document.activeElement instanceof HTMLElement ? document.activeElement.dataset.callId : undefined;
  view.calls.replaceChildren(
    ...items.map((call) => {
      const item = document.createElement('li');
      const button = document.createElement('button');
      button.type = 'button';
      button.dataset.callId = call.externalId;
      if (watching?.id === call.externalId) button.setAttribute('aria-current', 'true');
      const id = document.createElement('span');
      id.className = 'call-id';
      id.textContent = call.externalId;
      const meta = document.createElement('span');
      meta.className = 'call-meta';
      const state = document.createElement('span');
      state.className = call.live ? 'badge-live' : '';
      state.textContent = call.live ? (call.transcribing ? 'live · transcribing' : 'live') : 'ended';
      meta.append(state, ` · ${call.utterances} utterance${call.utterances === 1 ? '' : 's'} · ${clock(call.lastEventTimestamp)}`);
      button.append(id, meta);
      button.addEventListener('click', () => watch(call.externalId));
      item.append(button);
      return item;
    }),
  );
  if (focused) view.calls.querySelector(`[data-call-id="${focused}"]`)?.focus();
}

function stopWatching() {
  watching?.source.close();
  watching = null;
}

function watch(callId) {
  stopWatching();
  for (const button of view.calls.querySelectorAll('button')) {
    if (button.dataset.callId === callId) button.setAttribute('aria-current', 'true');
    else button.removeAttribute('aria-current');
  }
  view.heading.textContent = `Call ${callId}`;
  view.status.textContent = 'Connecting…';
  view.transcript.replaceChildren();
  const source = new EventSource(`/live/calls/${encodeURIComponent(callId)}/events`);
  const current = { id: callId, source, seen: new Set() };
  watching = current;
  source.addEventListener('open', () => {
    if (watching === current) view.status.textContent = 'Watching: new utterances appear below as they are transcribed.';
  });
  source.addEventListener('utterance', (event) => {
    if (watching !== current) return;
    const utterance = JSON.parse(event.data);
    if (current.seen.has(utterance.utteranceId)) return; // a reconnect replays the backlog
    current.seen.add(utterance.utteranceId);
    append(utterance);
  });
  source.addEventListener('error', async () => {
    if (watching !== current) return;
    view.status.textContent = 'Connection lost; reconnecting…';
    // EventSource cannot see the status: ask whether the session ended or the call is gone.
    const { status } = await getJson('/live/session');
    if (status === 401) showLogin('Your session ended; log in again.');
    else if (source.readyState === EventSource.CLOSED && watching === current) {
      view.status.textContent = 'This call cannot be watched (it may have expired). Pick another call.';
    }
  });
}

function append(u) {
  const list = view.transcript;
  // Follow the conversation only when the reader is already at the end (not while they scroll back).
  const root = document.documentElement;
  const nearBottom = root.scrollHeight - root.scrollTop - root.clientHeight < 80;
  const item = document.createElement('li');
  item.className = 'utterance';
  item.dataset.role = u.role;
  item.dataset.utteranceId = u.utteranceId;
  const meta = document.createElement('div');
  meta.className = 'meta';
  const role = document.createElement('span');
  role.className = 'role';
  role.textContent = u.role;
  const time = document.createElement('time');
  time.dateTime = u.createdTimestamp;
  time.textContent = clock(u.createdTimestamp);
  const media = document.createElement('span');
  media.className = 'media';
  media.textContent = `${mediaTime(u.startMs)}–${mediaTime(u.endMs)} into the call`;
  const latency = document.createElement('span');
  latency.className = 'latency';
  latency.textContent = `latency ${u.latencyMs} ms`;
  latency.title = 'From the end of speech to the transcript';
  meta.append(role, time, media, latency);
  const text = document.createElement('p');
  text.className = u.text ? 'text' : 'text empty';
  text.textContent = u.text || '(nothing intelligible)';
  item.append(meta, text);
  list.append(item);
  if (nearBottom) item.scrollIntoView({ block: 'end' });
}

const clock = (iso) => new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });

function mediaTime(ms) {
  const s = Math.floor(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

// Logged in already (the cookie is still valid)? Otherwise the login form.
getJson('/live/session').then(
  ({ status, body }) => (status === 200 ? showApp(body) : showLogin()),
  () => showLogin('The gateway did not answer.'),
);
