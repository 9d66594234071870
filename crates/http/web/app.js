// The bundled web client. One module, no framework, no build step.
//
// Sections: constants and state · DOM helpers · session and the REST client ·
// errors and toasts · sign-in · rooms (list, open, history) · messages ·
// composer · reactions · read markers · typing and presence · the WebSocket
// gateway · applying events and catching up · dialogs · start-up.
//
// All user text goes into the page through textContent (el() and append()
// with strings), never through innerHTML.

// ------------------------------------------------------------ constants and state

const API = '/api/v1';
const SESSION_KEY = 'chat.session';
const EMOJI = ['👍', '❤️', '😂', '🎉', '😮', '😢'];
const PAGE_SIZE = 50;
const TYPING_SEND_EVERY_MS = 2000;
const TYPING_SHOW_MS = 5000;
const ACK_TIMEOUT_MS = 10000;
const PING_EVERY_MS = 25000;
const MAX_BACKOFF_MS = 30000;
const GROUP_WINDOW_MS = 5 * 60 * 1000;
const NARROW = window.matchMedia('(max-width: 720px)');

/** Everything the client knows, in one place. */
const state = {
  session: null, // {token, refresh_token, expires_at, user}
  me: null, // User
  rooms: new Map(), // room id -> Room (+ my_role, unread_count, last_message) + client fields, see newRoom()
  current: null, // id of the open room
  users: new Map(), // user id -> PublicUser, for presence and names
  ws: null,
  connecting: false, // openSocket() is between its first await and new WebSocket()
  wsReady: false, // `hello` received on state.ws
  wsAttempt: 0, // failed attempts since the last `hello`
  wsTimer: 0,
  pingTimer: 0,
  everConnected: false,
  replies: new Map(), // ref -> {resolve, reject, timer}
  nextRef: 1,
  typingSentAt: 0,
  compose: { reply: null, edit: null, attachment: null },
  blobs: new Map(), // attachment id -> Promise<object URL>
  stick: true, // the message list is scrolled to the bottom
  refreshRoomsTimer: 0,
};

// ------------------------------------------------------------ DOM helpers

const $ = (id) => document.getElementById(id);

/** Creates an element. Strings among the children become text nodes. */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = Array.isArray(value) ? value.filter(Boolean).join(' ') : value;
    else if (key === 'testid') node.dataset.testid = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

const ICONS = {
  reply: 'M9 14L4 9l5-5|M4 9h10a6 6 0 0 1 6 6v5',
  smile: 'M12 21a9 9 0 1 0 0-18a9 9 0 0 0 0 18z|M8.5 14.5a4.5 4.5 0 0 0 7 0|M9 9.5h.01|M15 9.5h.01',
  edit: 'M4 20h4L19 9l-4-4L4 16z|M13.5 6.5l4 4',
  trash: 'M4 7h16|M10 11v6|M14 11v6|M6 7l1 13h10l1-13|M9 7V4h6v3',
  close: 'M6 6l12 12|M18 6L6 18',
  retry: 'M20 11a8 8 0 1 0-2.3 5.7|M20 4v7h-7',
  file: 'M14 3H6v18h12V7z|M14 3v4h4',
  lock: 'M6 11h12v9H6z|M8.5 11V8a3.5 3.5 0 0 1 7 0v3',
  chat: 'M4 5h16v11H8l-4 4z',
};

function icon(name) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  for (const d of ICONS[name].split('|')) {
    const path = document.createElementNS(ns, 'path');
    path.setAttribute('d', d);
    svg.append(path);
  }
  return svg;
}

function iconButton(name, label, onclick, testid) {
  return el('button', { type: 'button', class: 'icon-btn', 'aria-label': label, title: label, testid, onclick }, icon(name));
}

/** A random id; crypto.randomUUID needs a secure context, this does not. */
function uid() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

function debounce(fn, ms) {
  let t = 0;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}

/** Runs fn at most once per animation frame. */
function perFrame(fn) {
  let queued = false;
  return () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => {
      queued = false;
      fn();
    });
  };
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dateFormat = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

function sameDay(a, b) {
  return a.toDateString() === b.toDateString();
}

function shortWhen(iso) {
  const d = new Date(iso);
  return sameDay(d, new Date()) ? timeFormat.format(d) : dateFormat.format(d);
}

function initials(name) {
  const parts = String(name || '?').trim().split(/[\s._-]+/).filter(Boolean);
  const letters = parts.length > 1 ? parts[0][0] + parts[1][0] : (parts[0] || '?').slice(0, 2);
  return letters.toUpperCase();
}

/** A stable hue per name, for avatars. */
function hue(text) {
  let h = 0;
  for (const ch of String(text)) h = (h * 31 + ch.codePointAt(0)) % 360;
  return h;
}

function avatar(name, presenceUserId) {
  const node = el('span', { class: 'avatar', 'aria-hidden': 'true' }, initials(name));
  node.style.setProperty('--hue', hue(name));
  if (presenceUserId) node.append(presenceDot(presenceUserId));
  return node;
}

function setAvatar(node, name) {
  node.textContent = initials(name);
  node.style.setProperty('--hue', hue(name));
}

function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

// ------------------------------------------------------------ session and the REST client

class ApiError extends Error {
  constructor(status, body, retryAfter) {
    super((body && body.error) || `Request failed (${status})`);
    this.status = status;
    this.code = (body && body.code) || (status ? `http_${status}` : 'network');
    this.fields = (body && body.fields) || null;
    this.retryAfter = retryAfter || null;
  }
}

const offlineError = () => new ApiError(0, { error: 'Cannot reach the server.', code: 'network' });

function loadSession() {
  try {
    return JSON.parse(localStorage.getItem(SESSION_KEY));
  } catch {
    return null;
  }
}

function saveSession(tokens) {
  state.session = {
    token: tokens.token,
    refresh_token: tokens.refresh_token,
    expires_at: tokens.expires_at,
    user: tokens.user || state.me,
  };
  if (tokens.user) state.me = tokens.user;
  localStorage.setItem(SESSION_KEY, JSON.stringify(state.session));
}

/**
 * A REST call. JSON in and out (or FormData in). On 401 the access token is
 * refreshed once and the call repeated; a refused refresh ends the session.
 */
async function api(method, path, body, { auth = true, retried = false } = {}) {
  const headers = {};
  let payload;
  if (body instanceof FormData) payload = body;
  else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const tokenUsed = state.session && state.session.token;
  if (auth && tokenUsed) headers.Authorization = `Bearer ${tokenUsed}`;
  let res;
  try {
    res = await fetch(API + path, { method, headers, body: payload });
  } catch {
    throw offlineError();
  }
  if (res.status === 401 && auth && !retried && state.session) {
    if (await refreshSession(tokenUsed)) return api(method, path, body, { auth, retried: true });
    endSession('Your session has ended. Please log in again.');
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) throw new ApiError(res.status, data, res.headers.get('Retry-After'));
  return data;
}

/** Fetches an attachment with the bearer token (refreshing once on 401). */
async function fetchBlob(url, retried = false) {
  const tokenUsed = state.session && state.session.token;
  let res;
  try {
    res = await fetch(url, { headers: { Authorization: `Bearer ${tokenUsed}` } });
  } catch {
    throw offlineError();
  }
  if (res.status === 401 && !retried && (await refreshSession(tokenUsed))) return fetchBlob(url, true);
  if (!res.ok) throw new ApiError(res.status, null);
  return res.blob();
}

let refreshing = null;

/**
 * Swaps the refresh token for new tokens; true on success. One refresh at a
 * time, also across tabs (a refresh token is good once: a second use would
 * revoke the session), and none if another tab already refreshed.
 */
function refreshSession(tokenUsed) {
  if (!refreshing) {
    const run = () => doRefresh(tokenUsed);
    const locked = navigator.locks ? navigator.locks.request('chat-refresh', run) : run();
    refreshing = locked.finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

async function doRefresh(tokenUsed) {
  const stored = loadSession();
  if (stored && stored.token !== tokenUsed && stored.refresh_token) {
    state.session = stored; // another tab refreshed meanwhile
    return true;
  }
  if (!state.session || !state.session.refresh_token) return false;
  let res;
  try {
    res = await fetch(`${API}/auth/refresh`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ refresh_token: state.session.refresh_token }),
    });
  } catch {
    throw offlineError();
  }
  if (!res.ok) return false;
  saveSession(await res.json());
  return true;
}

function tokenExpiresSoon() {
  const at = state.session && Date.parse(state.session.expires_at);
  return !at || at - Date.now() < 60000;
}

// ------------------------------------------------------------ errors and toasts

const FIELD_NAMES = { display_name: 'Display name', content: 'Message', q: 'Search', file: 'File' };

function fieldLabel(name) {
  const label = FIELD_NAMES[name] || name.replace(/_/g, ' ');
  return label.charAt(0).toUpperCase() + label.slice(1);
}

/** A readable sentence for any error, with the API's field messages. */
function describe(error) {
  if (!(error instanceof ApiError)) return 'Something went wrong. Please try again.';
  if (error.status === 0) return 'Cannot reach the server. Check your connection and try again.';
  if (error.status === 429) {
    const wait = error.retryAfter ? `${error.retryAfter} s` : 'a moment';
    return `Too many requests. Please wait ${wait} and try again.`;
  }
  if (error.status === 413) return 'That is too large to send.';
  let text = error.message;
  if (error.fields) {
    const parts = Object.entries(error.fields).map(([k, v]) => `${fieldLabel(k)} ${v}`);
    if (parts.length) text += `: ${parts.join('; ')}`;
  }
  return text;
}

function toast(message, kind = 'error') {
  const node = el(
    'div',
    { class: ['toast', kind], testid: 'toast' },
    el('span', {}, message),
    iconButton('close', 'Dismiss', () => node.remove()),
  );
  $('toasts').append(node);
  setTimeout(() => node.remove(), 7000);
}

function showError(error) {
  console.warn(error);
  if (!state.session) return; // the session ended; the sign-in page says so
  toast(describe(error));
}

/** Shows an error in a form: the message, and each field's next to its input. */
function showFormError(form, error) {
  clearFormError(form);
  const box = form.querySelector('.form-error');
  let shownInFields = false;
  if (error instanceof ApiError && error.fields) {
    for (const [name, message] of Object.entries(error.fields)) {
      const slot = form.querySelector(`.field-error[data-field="${CSS.escape(name)}"]`);
      if (slot) {
        slot.textContent = `${fieldLabel(name)} ${message}`;
        shownInFields = true;
      }
    }
  }
  box.textContent = shownInFields ? error.message : describe(error);
  box.hidden = false;
}

function clearFormError(form) {
  const box = form.querySelector('.form-error');
  box.hidden = true;
  box.textContent = '';
  for (const slot of form.querySelectorAll('.field-error')) slot.textContent = '';
}

async function withBusy(button, work) {
  button.disabled = true;
  try {
    return await work();
  } finally {
    button.disabled = false;
  }
}

// ------------------------------------------------------------ sign-in

function showAuth(message) {
  $('chat-view').hidden = true;
  $('auth-view').hidden = false;
  selectAuthTab('login');
  const box = $('login-form').querySelector('.form-error');
  box.textContent = message || '';
  box.hidden = !message;
  $('login-form').elements.login.focus();
}

function selectAuthTab(which) {
  const login = which === 'login';
  $('tab-login').setAttribute('aria-selected', String(login));
  $('tab-signup').setAttribute('aria-selected', String(!login));
  $('login-form').hidden = !login;
  $('signup-form').hidden = login;
}

async function onLogin(event) {
  event.preventDefault();
  const form = event.target;
  clearFormError(form);
  const login = form.elements.login.value.trim();
  const password = form.elements.password.value;
  if (!login || !password) {
    showFormError(form, new ApiError(400, { error: 'Enter your username (or email) and password.' }));
    return;
  }
  await withBusy(form.querySelector('[type=submit]'), async () => {
    try {
      await logIn(login, password);
      form.reset();
    } catch (e) {
      showFormError(form, e);
    }
  });
}

async function onSignup(event) {
  event.preventDefault();
  const form = event.target;
  clearFormError(form);
  const f = form.elements;
  const body = { username: f.username.value.trim(), email: f.email.value.trim(), password: f.password.value };
  const displayName = f.display_name.value.trim();
  if (displayName) body.display_name = displayName;
  await withBusy(form.querySelector('[type=submit]'), async () => {
    try {
      await api('POST', '/auth/register', body, { auth: false });
      await logIn(body.username, body.password);
      form.reset();
    } catch (e) {
      showFormError(form, e);
    }
  });
}

async function logIn(login, password) {
  const body = login.includes('@') ? { email: login, password } : { username: login, password };
  const tokens = await api('POST', '/auth/login', body, { auth: false });
  saveSession(tokens);
  startChat();
}

async function logOut() {
  try {
    await api('POST', '/auth/logout');
  } catch (e) {
    console.warn('logout', e);
  }
  endSession();
}

/** Forgets the session and everything loaded with it. */
function endSession(message) {
  if (!state.session && $('chat-view').hidden) return;
  state.session = null;
  localStorage.removeItem(SESSION_KEY);
  closeSocket();
  for (const p of state.blobs.values()) p.then((url) => URL.revokeObjectURL(url)).catch(() => {});
  state.blobs.clear();
  state.rooms.clear();
  state.users.clear();
  state.current = null;
  state.me = null;
  state.everConnected = false;
  resetComposer();
  $('room-list').replaceChildren();
  $('messages').replaceChildren();
  showConnection(null);
  for (const d of document.querySelectorAll('dialog[open]')) d.close();
  history.replaceState(null, '', location.pathname);
  document.title = 'Chat';
  showAuth(message);
}

function startChat() {
  $('auth-view').hidden = true;
  $('chat-view').hidden = false;
  renderMe();
  renderRoomList();
  showRoomPane(false);
  connect();
}

function renderMe() {
  const me = state.me;
  if (!me) return;
  $('me-name').textContent = me.display_name || me.username;
  $('me-username').textContent = `@${me.username}`;
  setAvatar($('me-avatar'), me.display_name || me.username);
}

// ------------------------------------------------------------ rooms

/** A room as the client keeps it: the API's fields plus local ones. */
function newRoom(dto) {
  return {
    my_role: 'member',
    unread_count: 0,
    last_message: null,
    ...dto,
    store: null, // loaded history, see loadRoom()
    members: null, // Map user id -> {user, role}
    receipts: new Map(), // user id -> last_read_seq
    myRead: 0,
    syncing: false, // a load or catch-up is running; events wait in buffer
    buffer: [],
    again: false,
    typers: new Map(), // user id -> {name, timer}
  };
}

const ROOM_FIELDS = ['kind', 'name', 'description', 'created_by', 'created_at', 'member_count', 'last_seq'];

function assignRoomFields(room, dto) {
  for (const key of ROOM_FIELDS) if (key in dto) room[key] = dto[key];
}

/** Adds (or updates) a room the API just answered with: create, join, DM. */
function ensureRoom(dto, extra = {}) {
  let room = state.rooms.get(dto.id);
  if (!room) {
    room = newRoom({ ...dto, ...extra });
    state.rooms.set(dto.id, room);
    if (room.kind === 'direct') loadMembers(room).catch(() => {});
  } else if (dto.version >= room.version && !room.store) {
    assignRoomFields(room, dto);
    room.version = dto.version;
  }
  scheduleRoomList();
  return room;
}

async function fetchAll(path, maxPages = 10) {
  const items = [];
  let cursor = null;
  for (let page = 0; page < maxPages; page++) {
    const sep = path.includes('?') ? '&' : '?';
    const query = `${sep}limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const answer = await api('GET', path + query);
    items.push(...answer.items);
    cursor = answer.next_cursor;
    if (!cursor) break;
  }
  return items;
}

/** Reloads the list of my rooms and merges it into what is known. */
async function loadRooms() {
  const items = await fetchAll('/users/me/rooms');
  const seen = new Set();
  for (const dto of items) {
    seen.add(dto.id);
    mergeRoomSummary(dto);
  }
  for (const id of [...state.rooms.keys()]) if (!seen.has(id)) dropRoom(id);
  scheduleRoomList();
}

function mergeRoomSummary(dto) {
  const room = state.rooms.get(dto.id);
  if (!room) {
    ensureRoom(dto);
    return;
  }
  room.my_role = dto.my_role;
  if (dto.version < room.version) return; // what we have is newer
  assignRoomFields(room, dto);
  room.unread_count = dto.unread_count;
  room.last_message = dto.last_message;
  // A loaded room keeps its version: catchUp() brings its messages up to date.
  if (!room.store) room.version = dto.version;
}

const scheduleRoomsRefresh = () => {
  clearTimeout(state.refreshRoomsTimer);
  state.refreshRoomsTimer = setTimeout(() => loadRooms().catch(showError), 300);
};

/** Forgets a room I am no longer in. */
function dropRoom(id, why) {
  const room = state.rooms.get(id);
  if (!room) return;
  for (const t of room.typers.values()) clearTimeout(t.timer);
  state.rooms.delete(id);
  if (state.current === id) {
    navigate(null);
    if (why) toast(why, 'info');
  }
  scheduleRoomList();
}

function roomName(room) {
  if (room.kind !== 'direct') return room.name;
  const other = otherMember(room);
  if (other) return other.user.display_name || other.user.username;
  const mine = state.me ? state.me.username.toLowerCase() : '';
  const names = room.name.split(', ').filter((n) => n.toLowerCase() !== mine);
  return names.length ? names.join(', ') : 'Notes to self';
}

/** In a direct room, the other person (null in a DM with yourself). */
function otherMember(room) {
  if (room.kind !== 'direct' || !room.members || !state.me) return null;
  for (const m of room.members.values()) if (m.user.id !== state.me.id) return m;
  return null;
}

function activity(room) {
  return Date.parse((room.last_message && room.last_message.created_at) || room.created_at) || 0;
}

function preview(room) {
  const typers = [...room.typers.values()].map((t) => t.name);
  if (typers.length) return { text: typers.length === 1 ? `${typers[0]} is typing…` : 'Several people are typing…', typing: true };
  const m = room.last_message;
  if (!m) return { text: room.kind === 'direct' ? 'Say hello' : 'No messages yet', typing: false };
  const who = m.sender.id === (state.me && state.me.id) ? 'You' : m.sender.display_name || m.sender.username;
  let text = m.content;
  if (m.deleted) text = 'Message deleted';
  else if (m.kind === 'system') return { text: m.content, typing: false };
  else if (!text && m.attachment) text = m.kind === 'image' ? 'Photo' : m.attachment.filename;
  return { text: room.kind === 'direct' && who !== 'You' ? text : `${who}: ${text}`, typing: false };
}

function renderRoomList() {
  if (!state.me) return;
  const list = $('room-list');
  const focusedId = document.activeElement && document.activeElement.dataset.roomId;
  const rooms = [...state.rooms.values()].sort((a, b) => activity(b) - activity(a));
  list.replaceChildren(...rooms.map(roomItem));
  $('room-list-empty').hidden = rooms.length > 0;
  if (focusedId) {
    const again = list.querySelector(`[data-room-id="${CSS.escape(focusedId)}"]`);
    if (again) again.focus();
  }
  const unread = rooms.reduce((n, r) => n + (r.unread_count || 0), 0);
  document.title = unread ? `(${unread}) Chat` : 'Chat';
}

const scheduleRoomList = perFrame(renderRoomList);

function roomItem(room) {
  const name = roomName(room);
  const other = otherMember(room);
  const { text, typing } = preview(room);
  const unread = room.unread_count || 0;
  const label = `${name}${unread ? `, ${unread} unread` : ''}`;
  return el(
    'li',
    {},
    el(
      'button',
      {
        type: 'button',
        class: ['room-item', room.id === state.current && 'active', unread && 'has-unread'],
        'aria-current': room.id === state.current ? 'true' : null,
        'aria-label': label,
        dataset: { roomId: room.id },
        testid: 'room-item',
        onclick: () => navigate(room.id),
      },
      avatar(name, other && other.user.id),
      el(
        'span',
        { class: 'room-item-main' },
        el(
          'span',
          { class: 'room-item-top' },
          el('span', { class: 'room-name', testid: 'room-name' }, name),
          room.kind === 'private' ? el('span', { class: 'kind-icon', title: 'Private room' }, icon('lock')) : null,
          room.last_message ? el('time', { class: 'muted', datetime: room.last_message.created_at }, shortWhen(room.last_message.created_at)) : null,
        ),
        el(
          'span',
          { class: 'room-item-bottom' },
          el('span', { class: ['preview', typing && 'is-typing'], testid: 'room-preview' }, text),
          unread ? el('span', { class: 'badge', testid: 'unread-badge' }, unread > 99 ? '99+' : String(unread)) : null,
        ),
      ),
    ),
  );
}

// ------------------------------------------------------------ navigation (one room open at a time)

function navigate(roomId) {
  const target = roomId ? `#${roomId}` : location.pathname + location.search;
  if ((roomId ? `#${roomId}` : '') !== location.hash) history.pushState(null, '', target);
  route();
}

function route() {
  const id = location.hash.slice(1);
  if (id && state.rooms.has(id)) openRoom(id);
  else closeRoom();
}

function showRoomPane(open) {
  $('room-pane').hidden = !open;
  $('room-placeholder').hidden = open;
  document.body.classList.toggle('room-open', open);
}

function closeRoom() {
  if (state.current) stopTyping();
  state.current = null;
  resetComposer();
  $('messages').replaceChildren();
  $('jump-latest').hidden = true;
  showRoomPane(false);
  scheduleRoomList();
}

async function openRoom(id) {
  if (state.current === id) return;
  const room = state.rooms.get(id);
  state.current = id;
  resetComposer();
  showRoomPane(true);
  renderRoomHead(room);
  renderTyping();
  $('messages').replaceChildren();
  scheduleRoomList();
  if (!room.store) {
    setHistoryStatus('Loading messages…');
    try {
      await loadRoom(room);
    } catch (e) {
      setHistoryStatus(null);
      if (state.current !== id) return;
      if (e.status === 403 || e.status === 404) dropRoom(id, 'You are no longer in that room.');
      else {
        showError(e);
        navigate(null);
      }
      return;
    }
    setHistoryStatus(null);
    if (state.current !== id) return;
    renderRoomHead(room);
  }
  renderAllMessages(room);
  scrollToBottom();
  fillScreen(room);
  markReadSoon();
  if (!NARROW.matches) $('message-input').focus();
}

function currentRoom() {
  return state.current ? state.rooms.get(state.current) : null;
}

/**
 * Loads a room's state: the room (for its version) first, then the latest
 * page of history, its members and read markers. Events arriving meanwhile
 * wait and are applied afterwards in version order.
 */
async function loadRoom(room) {
  room.syncing = true;
  try {
    const info = await api('GET', `/rooms/${room.id}`);
    const [history, receipts] = await Promise.all([
      api('GET', `/rooms/${room.id}/messages?limit=${PAGE_SIZE}`),
      fetchAll(`/rooms/${room.id}/receipts`, 2),
      loadMembers(room),
    ]);
    room.store = { messages: new Map(), hasMore: history.has_more, loadingOlder: false, outbox: new Map() };
    for (const m of history.messages) room.store.messages.set(m.id, m);
    assignRoomFields(room, info);
    room.version = info.version;
    for (const r of receipts) {
      if (r.user_id === state.me.id) room.myRead = Math.max(room.myRead, r.last_read_seq);
      else room.receipts.set(r.user_id, r.last_read_seq);
    }
    const last = history.messages[history.messages.length - 1];
    if (last && (!room.last_message || last.seq >= room.last_message.seq)) room.last_message = last;
  } finally {
    finishSync(room);
  }
}

async function loadMembers(room) {
  const items = await fetchAll(`/rooms/${room.id}/members`, 3);
  room.members = new Map(items.map((m) => [m.user.id, m]));
  for (const m of items) rememberUser(m.user);
  if (room.id === state.current) renderRoomHead(room);
  scheduleRoomList();
}

function renderRoomHead(room) {
  const name = roomName(room);
  $('room-title').textContent = name;
  const head = $('room-avatar');
  setAvatar(head, name);
  head.replaceChildren(initials(name));
  const other = otherMember(room);
  if (other) head.append(presenceDot(other.user.id));
  $('room-subtitle').textContent = roomSubtitle(room);
  $('leave-btn').setAttribute('aria-label', room.kind === 'direct' ? 'Leave conversation' : 'Leave room');
}

function roomSubtitle(room) {
  const other = otherMember(room);
  if (other) {
    const user = state.users.get(other.user.id) || other.user;
    if (user.presence === 'online') return 'Online';
    return user.last_seen_at ? `Last seen ${shortWhen(user.last_seen_at)}` : 'Offline';
  }
  if (room.kind === 'direct') return 'Notes to self';
  const count = room.member_count || (room.members ? room.members.size : 0);
  let text = `${room.kind === 'private' ? 'Private' : 'Public'} · ${count} member${count === 1 ? '' : 's'}`;
  if (room.members) {
    const online = [...room.members.keys()].filter((id) => isOnline(id)).length;
    text += ` · ${online} online`;
  }
  if (room.description) text += ` · ${room.description}`;
  return text;
}

function setHistoryStatus(text) {
  const node = $('history-status');
  node.textContent = text || '';
  node.hidden = !text;
}

async function loadOlder(room) {
  const store = room.store;
  if (!store || !store.hasMore || store.loadingOlder) return;
  const oldest = Math.min(...[...store.messages.values()].map((m) => m.seq));
  if (!Number.isFinite(oldest) || oldest <= 1) {
    store.hasMore = false;
    return;
  }
  store.loadingOlder = true;
  setHistoryStatus('Loading earlier messages…');
  try {
    const page = await api('GET', `/rooms/${room.id}/messages?before=${oldest}&limit=${PAGE_SIZE}`);
    store.hasMore = page.has_more;
    const fresh = page.messages.filter((m) => !store.messages.has(m.id));
    for (const m of fresh) store.messages.set(m.id, m);
    if (state.current === room.id) {
      const list = $('messages');
      const fromBottom = list.scrollHeight - list.scrollTop;
      for (const m of fresh) placeMessage(room, m);
      list.scrollTop = list.scrollHeight - fromBottom;
    }
  } catch (e) {
    showError(e);
    return;
  } finally {
    store.loadingOlder = false;
    setHistoryStatus(null);
  }
  fillScreen(room);
}

/** While the history does not fill the list, there is no scroll to load more. */
function fillScreen(room) {
  const list = $('messages');
  if (state.current === room.id && room.store.hasMore && list.scrollHeight <= list.clientHeight + 200) loadOlder(room);
}

async function leaveRoom() {
  const room = currentRoom();
  if (!room) return;
  const what = room.kind === 'direct' ? 'this conversation' : `“${roomName(room)}”`;
  if (!(await confirmDialog(`Leave ${what}?`, 'Leave'))) return;
  try {
    await api('POST', `/rooms/${room.id}/leave`);
    dropRoom(room.id);
  } catch (e) {
    showError(e);
  }
}

// ------------------------------------------------------------ messages

function senderName(sender) {
  return sender.display_name || sender.username;
}

function isMine(m) {
  return state.me && m.sender.id === state.me.id;
}

function sortedMessages(room) {
  return [...room.store.messages.values()].sort((a, b) => a.seq - b.seq);
}

function renderAllMessages(room) {
  const list = $('messages');
  list.replaceChildren(...sortedMessages(room).map((m) => messageEl(room, m)));
  for (const node of list.children) updateGrouping(node);
  for (const pending of room.store.outbox.values()) list.append(pendingEl(room, pending));
  renderSeen(room);
}

/** Inserts or replaces one message in the open room's list, in seq order. */
function placeMessage(room, m) {
  const list = $('messages');
  const stick = state.stick;
  const node = messageEl(room, m);
  const old = list.querySelector(`li[data-id="${CSS.escape(m.id)}"]`);
  if (old) old.replaceWith(node);
  else {
    let before = null;
    for (let i = list.children.length - 1; i >= 0; i--) {
      const child = list.children[i];
      if (child.dataset.seq && Number(child.dataset.seq) < m.seq) break;
      before = child; // a later message, or an unsent one (always last)
    }
    list.insertBefore(node, before);
  }
  updateGrouping(node);
  if (node.nextElementSibling) updateGrouping(node.nextElementSibling);
  refreshQuotes(room, m);
  renderSeen(room);
  if (stick) scrollToBottom();
}

/** A message continues its sender's group when it follows theirs closely. */
function updateGrouping(node) {
  const prev = node.previousElementSibling;
  const joined =
    prev &&
    !node.classList.contains('system') &&
    !prev.classList.contains('system') &&
    prev.dataset.sender === node.dataset.sender &&
    Number(node.dataset.time) - Number(prev.dataset.time) < GROUP_WINDOW_MS;
  node.classList.toggle('continued', Boolean(joined));
}

/** Messages quoting m show its new text. */
function refreshQuotes(room, m) {
  for (const node of $('messages').querySelectorAll(`[data-quote-of="${CSS.escape(m.id)}"]`)) {
    node.replaceWith(quoteEl(room, m.id));
  }
}

function messageEl(room, m) {
  const base = {
    dataset: { id: m.id, seq: String(m.seq), sender: m.sender.id, time: String(Date.parse(m.created_at)) },
    testid: 'message',
  };
  if (m.kind === 'system') {
    return el('li', { ...base, class: 'msg system' }, el('p', { class: 'system-text', testid: 'message-text' }, m.content));
  }
  const mine = isMine(m);
  const when = new Date(m.created_at);
  const meta = el(
    'div',
    { class: 'msg-meta' },
    mine ? null : el('span', { class: 'author', testid: 'message-author' }, senderName(m.sender)),
    el('time', { datetime: m.created_at, title: fullFormat.format(when) }, timeFormat.format(when)),
  );
  const mediaOnly = !m.deleted && !m.content && !m.reply_to_id && m.attachment && /^(image|video)\//.test(m.attachment.content_type);
  const bubble = el('div', { class: ['bubble', mediaOnly && 'media-only'], title: fullFormat.format(when) });
  if (m.reply_to_id) bubble.append(quoteEl(room, m.reply_to_id));
  if (m.deleted) bubble.append(el('p', { class: 'text deleted-text', testid: 'message-text' }, 'This message was deleted'));
  else {
    if (m.attachment) bubble.append(attachmentEl(m.attachment));
    if (m.content) bubble.append(el('p', { class: 'text', testid: 'message-text' }, m.content));
    if (m.edited_at) bubble.append(el('span', { class: 'edited', testid: 'message-edited', title: `Edited ${fullFormat.format(new Date(m.edited_at))}` }, 'edited'));
  }
  return el(
    'li',
    {
      ...base,
      class: ['msg', mine && 'mine', m.deleted && 'deleted'],
      onclick: (e) => toggleTouchActions(e),
    },
    meta,
    el('div', { class: 'msg-row' }, bubble, m.deleted ? null : messageActions(room, m)),
    m.reactions.length ? reactionsEl(m) : null,
  );
}

/** On touch screens (no hover), a tap on a message shows its actions. */
function toggleTouchActions(event) {
  if (window.matchMedia('(hover: hover)').matches) return;
  if (event.target.closest('button, a, img, video, audio')) return;
  const node = event.currentTarget;
  for (const other of document.querySelectorAll('.msg.show-actions')) if (other !== node) other.classList.remove('show-actions');
  node.classList.toggle('show-actions');
}

function messageActions(room, m) {
  const mine = isMine(m);
  const canDelete = mine || room.my_role === 'owner' || room.my_role === 'admin' || (state.me && state.me.role === 'admin');
  return el(
    'div',
    { class: 'actions', role: 'toolbar', 'aria-label': 'Message actions' },
    iconButton('smile', 'Add reaction', (e) => togglePicker(e.currentTarget, m), 'react'),
    iconButton('reply', 'Reply', () => startReply(m), 'reply'),
    mine ? iconButton('edit', 'Edit message', () => startEdit(m), 'edit') : null,
    canDelete ? iconButton('trash', 'Delete message', () => deleteMessage(m), 'delete') : null,
  );
}

function quoteEl(room, parentId) {
  const parent = room.store && room.store.messages.get(parentId);
  let who = 'Reply';
  let text = 'Original message not loaded';
  if (parent) {
    who = senderName(parent.sender);
    if (parent.deleted) text = 'Message deleted';
    else text = parent.content || (parent.attachment ? parent.attachment.filename : '');
  }
  return el(
    'button',
    {
      type: 'button',
      class: 'quote',
      testid: 'message-quote',
      dataset: { quoteOf: parentId },
      'aria-label': `Replying to ${who}: ${text}. Show the message.`,
      onclick: (e) => {
        e.stopPropagation();
        revealMessage(parentId);
      },
    },
    el('span', { class: 'quote-author' }, who),
    el('span', { class: 'quote-text' }, text),
  );
}

function revealMessage(id) {
  const node = $('messages').querySelector(`li[data-id="${CSS.escape(id)}"]`);
  if (!node) return;
  node.scrollIntoView({ block: 'center', behavior: 'smooth' });
  node.classList.add('flash');
  setTimeout(() => node.classList.remove('flash'), 1200);
}

/** An object URL for an attachment, fetched once with the bearer token. */
function attachmentUrl(attachment) {
  let url = state.blobs.get(attachment.id);
  if (!url) {
    url = fetchBlob(attachment.url).then((blob) => URL.createObjectURL(blob));
    url.catch(() => state.blobs.delete(attachment.id));
    state.blobs.set(attachment.id, url);
  }
  return url;
}

function attachmentEl(a) {
  const type = a.content_type || '';
  if (/^image\/(png|jpeg|gif|webp)$/.test(type)) return imageEl(a);
  if (type.startsWith('video/') || type.startsWith('audio/')) return mediaEl(a, type.startsWith('video/') ? 'video' : 'audio');
  return el(
    'button',
    { type: 'button', class: 'file-chip', testid: 'message-file', 'aria-label': `Download ${a.filename}`, onclick: () => download(a) },
    icon('file'),
    el('span', { class: 'file-name' }, a.filename),
    el('span', { class: 'muted' }, formatSize(a.size)),
  );
}

function imageEl(a) {
  const img = el('img', { class: 'attachment-img', alt: a.filename, testid: 'message-image' });
  const link = el('a', { class: 'attachment-link', target: '_blank', rel: 'noopener', 'aria-label': `Open ${a.filename}` }, img);
  img.addEventListener('load', () => {
    img.classList.add('loaded');
    if (state.stick) scrollToBottom();
  });
  attachmentUrl(a)
    .then((url) => {
      img.src = url;
      link.href = url;
    })
    .catch(() => link.replaceWith(el('span', { class: 'muted' }, `Could not load ${a.filename}`)));
  return link;
}

function mediaEl(a, tag) {
  const media = el(tag, { class: `attachment-${tag}`, controls: true, preload: 'metadata', testid: `message-${tag}`, 'aria-label': a.filename });
  attachmentUrl(a)
    .then((url) => {
      media.src = url;
    })
    .catch(() => media.replaceWith(el('span', { class: 'muted' }, `Could not load ${a.filename}`)));
  return media;
}

async function download(a) {
  try {
    const url = await attachmentUrl(a);
    const link = el('a', { href: url, download: a.filename });
    document.body.append(link);
    link.click();
    link.remove();
  } catch (e) {
    showError(e);
  }
}

/** A message being sent: shown greyed until the server has it. */
function pendingEl(room, p) {
  const failed = p.status === 'failed';
  return el(
    'li',
    { class: ['msg', 'mine', 'pending', failed && 'failed'], dataset: { ref: p.ref, sender: state.me.id, time: String(p.time) }, testid: 'message-pending' },
    el('div', { class: 'msg-meta' }, el('span', {}, failed ? 'Not sent' : 'Sending…')),
    el(
      'div',
      { class: 'msg-row' },
      el('div', { class: 'bubble' }, p.attachmentName ? el('p', { class: 'text muted' }, `📎 ${p.attachmentName}`) : null, p.draft.content ? el('p', { class: 'text' }, p.draft.content) : null),
      failed
        ? el(
            'div',
            { class: 'actions visible' },
            iconButton('retry', 'Retry sending', () => retrySend(room, p), 'retry'),
            iconButton('close', 'Discard message', () => discardPending(room, p), 'discard'),
          )
        : null,
    ),
  );
}

function renderPending(room, p) {
  if (state.current !== room.id) return;
  const list = $('messages');
  const old = list.querySelector(`li[data-ref="${CSS.escape(p.ref)}"]`);
  const gone = !room.store.outbox.has(p.ref);
  if (gone) {
    if (old) old.remove();
    return;
  }
  const node = pendingEl(room, p);
  if (old) old.replaceWith(node);
  else list.append(node);
  updateGrouping(node);
  scrollToBottom();
}

function scrollToBottom() {
  const list = $('messages');
  list.scrollTop = list.scrollHeight;
  state.stick = true;
  $('jump-latest').hidden = true;
}

function onMessagesScroll() {
  const list = $('messages');
  const fromBottom = list.scrollHeight - list.scrollTop - list.clientHeight;
  state.stick = fromBottom < 60;
  $('jump-latest').hidden = fromBottom < 400;
  const room = currentRoom();
  if (room && room.store && list.scrollTop < 200) loadOlder(room);
  markReadSoon();
}

// ------------------------------------------------------------ composer

function resetComposer() {
  const c = state.compose;
  if (c.attachment && c.attachment.preview) URL.revokeObjectURL(c.attachment.preview);
  c.reply = null;
  c.edit = null;
  c.attachment = null;
  const input = $('message-input');
  input.value = '';
  autoGrow();
  renderComposerContext();
  renderPendingAttachment();
}

function renderComposerContext() {
  const { reply, edit } = state.compose;
  const box = $('composer-context');
  box.hidden = !reply && !edit;
  box.classList.toggle('editing', Boolean(edit));
  if (reply) {
    const who = isMine(reply) ? 'yourself' : senderName(reply.sender);
    $('composer-context-text').textContent = `Replying to ${who}: ${reply.content || (reply.attachment ? reply.attachment.filename : '')}`;
  }
  else if (edit) $('composer-context-text').textContent = 'Editing your message';
  $('send-btn').setAttribute('aria-label', edit ? 'Save changes' : 'Send message');
}

function startReply(m) {
  state.compose.reply = m;
  state.compose.edit = null;
  renderComposerContext();
  $('message-input').focus();
}

function startEdit(m) {
  state.compose.edit = m;
  state.compose.reply = null;
  const input = $('message-input');
  input.value = m.content;
  autoGrow();
  renderComposerContext();
  input.focus();
}

function cancelContext() {
  if (state.compose.edit) $('message-input').value = '';
  state.compose.edit = null;
  state.compose.reply = null;
  autoGrow();
  renderComposerContext();
}

function autoGrow() {
  const input = $('message-input');
  input.style.height = 'auto';
  input.style.height = `${Math.min(input.scrollHeight, 180)}px`;
}

function onComposerKey(event) {
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $('composer').requestSubmit();
  } else if (event.key === 'Escape') {
    cancelContext();
  } else if (event.key === 'ArrowUp' && !event.target.value) {
    const room = currentRoom();
    const mine = room && room.store && sortedMessages(room).filter((m) => isMine(m) && !m.deleted && m.kind !== 'system').pop();
    if (mine) {
      event.preventDefault();
      startEdit(mine);
    }
  }
}

function onComposerInput() {
  autoGrow();
  if (state.compose.edit) return;
  const room = currentRoom();
  const now = Date.now();
  if (room && $('message-input').value.trim() && now - state.typingSentAt >= TYPING_SEND_EVERY_MS) {
    state.typingSentAt = now;
    sendFrame('typing', { room_id: room.id });
  }
}

function stopTyping() {
  state.typingSentAt = 0;
}

async function onComposerSubmit(event) {
  event.preventDefault();
  const room = currentRoom();
  if (!room || !room.store) return;
  const input = $('message-input');
  const content = input.value.trim();
  const { edit, reply, attachment } = state.compose;
  if (edit) {
    if (!content && !edit.attachment) return;
    await saveEdit(room, edit, content);
    return;
  }
  if (!content && !attachment) return;
  const draft = { content };
  if (reply) draft.reply_to_id = reply.id;
  let attachmentName = null;
  if (attachment) {
    try {
      const uploaded = await attachment.upload;
      draft.attachment_id = uploaded.id;
      attachmentName = uploaded.filename;
    } catch {
      return; // the upload's error is already shown
    }
  }
  input.value = '';
  autoGrow();
  state.compose.reply = null;
  if (attachment && attachment.preview) URL.revokeObjectURL(attachment.preview);
  state.compose.attachment = null;
  renderComposerContext();
  renderPendingAttachment();
  stopTyping();
  sendMessage(room, draft, attachmentName);
}

async function saveEdit(room, m, content) {
  try {
    const updated = await api('PATCH', `/messages/${m.id}`, { content });
    const known = room.store.messages.get(m.id);
    if (known) {
      known.content = updated.content;
      known.edited_at = updated.edited_at;
      if (state.current === room.id) placeMessage(room, known);
    }
    cancelContext();
  } catch (e) {
    showError(e);
  }
}

/**
 * Sends over the WebSocket (reconciled with its `ack`), falling back to REST
 * with the same client_msg_id, which the server deduplicates.
 */
function sendMessage(room, draft, attachmentName) {
  const p = { ref: uid(), draft: { ...draft }, attachmentName, status: 'sending', time: Date.now() };
  p.draft.client_msg_id = p.ref;
  deliver(room, p);
}

async function deliver(room, p) {
  p.status = 'sending';
  room.store.outbox.set(p.ref, p);
  renderPending(room, p);
  try {
    let message;
    try {
      ({ message } = await sendFrame('message:send', { room_id: room.id, ...p.draft }, true));
    } catch (e) {
      if (e instanceof ApiError) throw e;
      message = await api('POST', `/rooms/${room.id}/messages`, p.draft);
    }
    room.store.outbox.delete(p.ref);
    renderPending(room, p);
    if (!room.store.messages.has(message.id)) applyMessage(room, message);
    markReadSoon();
  } catch (e) {
    p.status = 'failed';
    renderPending(room, p);
    showError(e);
  }
}

/** Tries again with the same client_msg_id: if the first try did arrive, the server answers with that message. */
function retrySend(room, p) {
  deliver(room, p);
}

function discardPending(room, p) {
  room.store.outbox.delete(p.ref);
  renderPending(room, p);
}

async function deleteMessage(m) {
  if (!(await confirmDialog('Delete this message for everyone?', 'Delete'))) return;
  try {
    await api('DELETE', `/messages/${m.id}`);
    const room = state.rooms.get(m.room_id);
    if (room) applyDeleted(room, { id: m.id, seq: m.seq });
  } catch (e) {
    showError(e);
  }
}

function onFileChosen() {
  const input = $('file-input');
  const file = input.files && input.files[0];
  input.value = '';
  if (!file) return;
  const old = state.compose.attachment;
  if (old && old.preview) URL.revokeObjectURL(old.preview);
  const pending = { name: file.name, status: 'uploading', preview: file.type.startsWith('image/') ? URL.createObjectURL(file) : null };
  const form = new FormData();
  form.append('file', file, file.name);
  pending.upload = api('POST', '/attachments', form).then(
    (uploaded) => {
      pending.status = 'ready';
      // Our own copy shows at once, without downloading it back.
      if (pending.preview) state.blobs.set(uploaded.id, Promise.resolve(URL.createObjectURL(file)));
      if (state.compose.attachment === pending) renderPendingAttachment();
      return uploaded;
    },
    (e) => {
      if (state.compose.attachment === pending) {
        state.compose.attachment = null;
        renderPendingAttachment();
      }
      showError(e);
      throw e;
    },
  );
  pending.upload.catch(() => {});
  state.compose.attachment = pending;
  renderPendingAttachment();
  $('message-input').focus();
}

function renderPendingAttachment() {
  const a = state.compose.attachment;
  const box = $('pending-attachment');
  box.hidden = !a;
  if (!a) return;
  box.dataset.status = a.status;
  const thumb = $('pending-thumb');
  thumb.hidden = !a.preview;
  if (a.preview) thumb.src = a.preview;
  $('pending-name').textContent = a.status === 'uploading' ? `Uploading ${a.name}…` : a.name;
}

function removeAttachment() {
  const a = state.compose.attachment;
  if (a && a.preview) URL.revokeObjectURL(a.preview);
  state.compose.attachment = null;
  renderPendingAttachment();
}

// ------------------------------------------------------------ reactions

let openPicker = null;

function togglePicker(button, m) {
  const wasOpenHere = openPicker && openPicker.anchor === button;
  closePicker();
  if (wasOpenHere) return;
  const picker = el(
    'div',
    { class: 'picker', role: 'menu', 'aria-label': 'Pick a reaction', testid: 'emoji-picker' },
    EMOJI.map((emoji) =>
      el(
        'button',
        {
          type: 'button',
          role: 'menuitem',
          'aria-label': `React with ${emoji}`,
          testid: 'pick-emoji',
          dataset: { emoji },
          onclick: (e) => {
            e.stopPropagation();
            closePicker();
            setReaction(m, emoji, !hasMyReaction(m, emoji));
          },
        },
        emoji,
      ),
    ),
  );
  button.parentElement.append(picker);
  button.setAttribute('aria-expanded', 'true');
  openPicker = { anchor: button, node: picker };
  picker.querySelector('button').focus();
}

function closePicker() {
  if (!openPicker) return;
  openPicker.node.remove();
  openPicker.anchor.setAttribute('aria-expanded', 'false');
  openPicker = null;
}

function hasMyReaction(m, emoji) {
  return m.reactions.some((r) => r.emoji === emoji && r.me);
}

function reactionsEl(m) {
  return el(
    'div',
    { class: 'reactions', testid: 'reactions' },
    m.reactions.map((r) =>
      el(
        'button',
        {
          type: 'button',
          class: ['reaction', r.me && 'me'],
          'aria-pressed': String(r.me),
          'aria-label': `${r.emoji} ${r.count}${r.me ? ', including you. Remove your reaction' : '. Add yours'}`,
          testid: 'reaction',
          dataset: { emoji: r.emoji },
          onclick: (e) => {
            e.stopPropagation();
            setReaction(m, r.emoji, !r.me);
          },
        },
        el('span', { class: 'reaction-emoji' }, r.emoji),
        el('span', { class: 'reaction-count' }, String(r.count)),
      ),
    ),
  );
}

/** Adds or removes my reaction; shown at once, confirmed by the event. */
async function setReaction(m, emoji, add) {
  const room = state.rooms.get(m.room_id);
  const current = room && room.store && room.store.messages.get(m.id);
  if (current) {
    current.reactions = toggledReactions(current.reactions, emoji, add);
    if (state.current === room.id) placeMessage(room, current);
  }
  try {
    await api(add ? 'PUT' : 'DELETE', `/messages/${m.id}/reactions/${encodeURIComponent(emoji)}`);
  } catch (e) {
    if (current) {
      current.reactions = toggledReactions(current.reactions, emoji, !add);
      if (state.current === room.id) placeMessage(room, current);
    }
    showError(e);
  }
}

function toggledReactions(reactions, emoji, add) {
  const list = reactions.map((r) => ({ ...r }));
  const found = list.find((r) => r.emoji === emoji);
  if (add && !found) list.push({ emoji, count: 1, me: true });
  else if (add && !found.me) Object.assign(found, { count: found.count + 1, me: true });
  else if (!add && found && found.me) Object.assign(found, { count: found.count - 1, me: false });
  return list.filter((r) => r.count > 0);
}

// ------------------------------------------------------------ read markers

let readTimer = 0;

function markReadSoon() {
  clearTimeout(readTimer);
  readTimer = setTimeout(markRead, 200);
}

function canSeeRoom() {
  return document.visibilityState === 'visible' && document.hasFocus() && !$('room-pane').hidden;
}

/** Moves my read marker to the newest message on screen. */
function markRead() {
  const room = currentRoom();
  if (!room || !room.store || !canSeeRoom()) return;
  const seq = highestVisibleSeq();
  if (!seq || seq <= room.myRead) return;
  room.myRead = seq;
  recountUnread(room);
  scheduleRoomList();
  if (!sendFrame('read', { room_id: room.id, seq })) {
    api('POST', `/rooms/${room.id}/read`, { seq }).catch((e) => console.warn('read', e));
  }
}

function highestVisibleSeq() {
  const list = $('messages');
  const bottom = list.getBoundingClientRect().bottom;
  const items = list.querySelectorAll('li[data-seq]');
  for (let i = items.length - 1; i >= 0; i--) {
    const rect = items[i].getBoundingClientRect();
    if (rect.top + Math.min(rect.height, 24) <= bottom) return Number(items[i].dataset.seq);
  }
  return 0;
}

function recountUnread(room) {
  if (room.myRead >= room.last_seq) room.unread_count = 0;
  else if (room.store) {
    const mine = state.me.id;
    room.unread_count = [...room.store.messages.values()].filter((m) => m.seq > room.myRead && m.sender.id !== mine && !m.deleted && m.kind !== 'system').length;
  }
}

/** "Seen by …" under my newest message, from the others' read markers. */
function renderSeen(room) {
  if (state.current !== room.id || !room.store) return;
  const list = $('messages');
  for (const old of list.querySelectorAll('.seen')) old.remove();
  const mine = sortedMessages(room).filter((m) => isMine(m) && m.kind !== 'system').pop();
  if (!mine) return;
  const node = list.querySelector(`li[data-id="${CSS.escape(mine.id)}"]`);
  if (!node) return;
  const readers = [...room.receipts.entries()].filter(([, seq]) => seq >= mine.seq).map(([id]) => userName(room, id));
  let text = 'Sent';
  if (readers.length) text = room.kind === 'direct' ? 'Seen' : `Seen by ${readers.join(', ')}`;
  node.append(el('p', { class: 'seen muted', testid: 'seen-by' }, text));
}

function userName(room, id) {
  const member = room.members && room.members.get(id);
  const user = (member && member.user) || state.users.get(id);
  return user ? user.display_name || user.username : 'someone';
}

// ------------------------------------------------------------ typing and presence

function rememberUser(user) {
  const known = state.users.get(user.id);
  state.users.set(user.id, { ...known, ...user });
}

function isOnline(userId) {
  const u = state.users.get(userId);
  return Boolean(u && u.presence === 'online');
}

function presenceDot(userId) {
  const online = isOnline(userId);
  return el('span', {
    class: ['dot', online ? 'online' : 'offline'],
    dataset: { presence: userId },
    title: online ? 'Online' : 'Offline',
    testid: 'presence',
  });
}

function onPresence({ user_id, presence, last_seen_at }) {
  const user = state.users.get(user_id) || { id: user_id };
  state.users.set(user_id, { ...user, presence, last_seen_at });
  for (const dot of document.querySelectorAll(`[data-presence="${CSS.escape(user_id)}"]`)) {
    dot.classList.toggle('online', presence === 'online');
    dot.classList.toggle('offline', presence !== 'online');
    dot.title = presence === 'online' ? 'Online' : 'Offline';
  }
  const room = currentRoom();
  if (room) $('room-subtitle').textContent = roomSubtitle(room);
}

function onTyping({ room_id, user }) {
  const room = state.rooms.get(room_id);
  if (!room || (state.me && user.id === state.me.id)) return;
  const old = room.typers.get(user.id);
  if (old) clearTimeout(old.timer);
  const timer = setTimeout(() => clearTyping(room, user.id), TYPING_SHOW_MS);
  room.typers.set(user.id, { name: senderName(user), timer });
  if (room.id === state.current) renderTyping();
  scheduleRoomList();
}

function clearTyping(room, userId) {
  const t = room.typers.get(userId);
  if (!t) return;
  clearTimeout(t.timer);
  room.typers.delete(userId);
  if (room.id === state.current) renderTyping();
  scheduleRoomList();
}

function renderTyping() {
  const room = currentRoom();
  const names = room ? [...room.typers.values()].map((t) => t.name) : [];
  let text = '';
  if (names.length === 1) text = `${names[0]} is typing…`;
  else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
  else if (names.length > 2) text = 'Several people are typing…';
  const node = $('typing');
  node.textContent = text;
  node.classList.toggle('active', Boolean(text));
}

// ------------------------------------------------------------ the WebSocket gateway

function showConnection(text) {
  const node = $('connection-status');
  node.textContent = text || '';
  node.hidden = !text;
}

function connect() {
  clearTimeout(state.wsTimer);
  if (!state.session || state.ws || state.connecting) return;
  state.connecting = true;
  openSocket().finally(() => {
    state.connecting = false;
  });
}

async function openSocket() {
  try {
    if (tokenExpiresSoon()) await refreshSession(state.session.token);
    // First, and after a failure, check the server answers and the token is
    // still good (api() refreshes it on 401) before opening the socket.
    if (state.wsAttempt > 0 || !state.everConnected) {
      state.me = await api('GET', '/users/me');
      renderMe();
    }
  } catch (e) {
    if (!state.session) return;
    if (e.status === 404) {
      endSession('Your account is no longer available. Please log in again.');
      return;
    }
    if (e.status !== 0) console.warn('reconnect', e);
    scheduleReconnect();
    return;
  }
  if (!state.session || state.ws) return;
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const ws = new WebSocket(`${scheme}://${location.host}${API}/ws?token=${encodeURIComponent(state.session.token)}`);
  state.ws = ws;
  ws.addEventListener('message', (event) => onFrame(ws, event.data));
  ws.addEventListener('close', (event) => onSocketClosed(ws, event.code));
}

function onSocketClosed(ws, code) {
  if (state.ws !== ws) return;
  state.ws = null;
  state.wsReady = false;
  clearInterval(state.pingTimer);
  for (const [ref, r] of state.replies) {
    clearTimeout(r.timer);
    r.reject(new Error('disconnected'));
    state.replies.delete(ref);
  }
  if (!state.session) return;
  if (state.everConnected) showConnection('Reconnecting…');
  if (code === 1008) state.wsAttempt = Math.max(state.wsAttempt, 1); // revoked: check the session first
  scheduleReconnect();
}

function scheduleReconnect() {
  clearTimeout(state.wsTimer);
  const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** state.wsAttempt) * (0.75 + Math.random() * 0.5);
  state.wsAttempt += 1;
  if (state.wsAttempt > 2) showConnection(`Connection lost. Retrying in ${Math.ceil(delay / 1000)} s…`);
  state.wsTimer = setTimeout(connect, delay);
}

/** Retries at once, e.g. when the browser comes back online. */
function reconnectNow() {
  if (!state.session || state.ws || state.connecting) return;
  clearTimeout(state.wsTimer);
  connect();
}

function closeSocket() {
  clearTimeout(state.wsTimer);
  clearInterval(state.pingTimer);
  const ws = state.ws;
  state.ws = null;
  state.wsReady = false;
  state.wsAttempt = 0;
  if (ws) ws.close(1000, 'bye');
}

/** Drops a connection that stopped answering, and reconnects. */
function dropSocket(ws) {
  if (state.ws !== ws) return;
  ws.close(4000, 'no pong');
  onSocketClosed(ws, 4000);
}

/**
 * Sends a frame. Without expectReply: true if it went out. With it: a
 * promise of the reply's payload (rejected with ApiError on `error`, with a
 * plain Error when offline or after ACK_TIMEOUT_MS).
 */
function sendFrame(type, payload, expectReply = false) {
  const ws = state.ws;
  if (!state.wsReady || !ws || ws.readyState !== WebSocket.OPEN) {
    return expectReply ? Promise.reject(new Error('offline')) : false;
  }
  if (!expectReply) {
    ws.send(JSON.stringify({ type, payload }));
    return true;
  }
  const ref = `r${state.nextRef++}`;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      state.replies.delete(ref);
      reject(new Error('timeout'));
    }, ACK_TIMEOUT_MS);
    state.replies.set(ref, { resolve, reject, timer });
    ws.send(JSON.stringify({ type, payload, ref }));
  });
}

function onFrame(ws, data) {
  if (state.ws !== ws) return;
  let frame;
  try {
    frame = JSON.parse(data);
  } catch {
    return;
  }
  const reply = frame.ref && state.replies.get(frame.ref);
  if (reply) {
    state.replies.delete(frame.ref);
    clearTimeout(reply.timer);
    if (frame.type === 'error') reply.reject(new ApiError(400, frame.payload));
    else reply.resolve(frame.payload);
    return;
  }
  const handler = EVENTS[frame.type];
  if (handler) handler(frame.payload || {});
}

function onHello({ user }) {
  state.me = user;
  state.wsReady = true;
  state.wsAttempt = 0;
  state.everConnected = true;
  showConnection(null);
  renderMe();
  clearInterval(state.pingTimer);
  const ws = state.ws;
  state.pingTimer = setInterval(() => {
    sendFrame('ping', {}, true).catch(() => dropSocket(ws));
  }, PING_EVERY_MS);
  resync();
}

/** After (re)connecting: reload the room list, catch up loaded rooms. */
async function resync() {
  try {
    await loadRooms();
  } catch (e) {
    if (e.status !== 0) showError(e);
    return;
  }
  for (const room of state.rooms.values()) if (room.store) catchUp(room);
  if (!state.current) route();
  else if (state.current && !state.rooms.has(state.current)) navigate(null);
  else renderRoomHead(currentRoom());
}

// ------------------------------------------------------------ applying events and catching up

const EVENTS = {
  hello: onHello,
  pong: () => {},
  'message:new': (p) => counted(p, (room) => onMessageNew(room, p.message)),
  'message:updated': (p) => counted(p, (room) => applyMessage(room, p.message)),
  'message:deleted': (p) => counted(p, (room) => applyDeleted(room, p)),
  'reaction:updated': (p) => counted(p, (room) => applyReaction(room, p)),
  'room:updated': (p) => {
    if (!state.rooms.has(p.room_id)) {
      ensureRoom(p.room);
      scheduleRoomsRefresh(); // for my_role, unread_count, last_message
      return;
    }
    counted(p, (room) => applyRoom(room, p.room));
  },
  'room:deleted': (p) => dropRoom(p.room_id, 'This room was deleted.'),
  'member:joined': (p) => {
    rememberUser(p.user);
    if (state.me && p.user.id === state.me.id && !state.rooms.has(p.room_id)) scheduleRoomsRefresh();
    else counted(p, (room) => applyMember(room, p.user, p.role));
  },
  'member:updated': (p) => counted(p, (room) => applyRole(room, p.user_id, p.role)),
  'member:left': (p) => {
    if (state.me && p.user_id === state.me.id) dropRoom(p.room_id, 'You are no longer in this room.');
    else counted(p, (room) => applyLeft(room, p.user_id));
  },
  typing: onTyping,
  read: onRead,
  presence: onPresence,
  error: (p) => {
    console.warn('gateway error', p);
    if (p.code === 'rate_limited') toast('You are sending too fast. Slow down a little.');
  },
};

/**
 * Applies a counted event in version order. An event already covered is
 * ignored; one past a gap waits while the gap is filled from /changes.
 */
function counted(payload, apply) {
  const room = state.rooms.get(payload.room_id);
  const version = payload.version;
  if (!room) {
    scheduleRoomsRefresh();
    return;
  }
  if (room.syncing) {
    room.buffer.push({ version, apply });
    return;
  }
  if (version <= room.version) return;
  if (version > room.version + 1) {
    room.buffer.push({ version, apply });
    catchUp(room);
    return;
  }
  room.version = version;
  apply(room);
}

function finishSync(room) {
  room.syncing = false;
  const waiting = room.buffer.sort((a, b) => a.version - b.version);
  room.buffer = [];
  for (const w of waiting) counted({ room_id: room.id, version: w.version }, w.apply);
}

/** Fills a room's gap: everything after its version, page by page. */
async function catchUp(room) {
  if (room.syncing) {
    room.again = true;
    return;
  }
  room.syncing = true;
  let failed = false;
  try {
    let since = room.version;
    for (;;) {
      const changes = await api('GET', `/rooms/${room.id}/changes?since=${since}&limit=500`);
      applyChanges(room, changes);
      since = changes.version;
      room.version = since;
      if (!changes.has_more) break;
    }
  } catch (e) {
    failed = true;
    if (e.status === 403 || e.status === 404) {
      room.syncing = false;
      dropRoom(room.id, 'You are no longer in this room.');
      return;
    }
    if (e.status === 400) {
      reloadRoom(room); // our version is not one the server knows: start afresh
      return;
    }
    console.warn('catch-up', e);
  }
  if (failed) {
    // Try again later; events seen meanwhile are covered by the next pass.
    room.syncing = false;
    room.buffer = [];
    if (state.wsReady) setTimeout(() => catchUp(room), 3000);
    return;
  }
  finishSync(room);
  if (room.again) {
    room.again = false;
    catchUp(room);
  }
}

function reloadRoom(room) {
  room.syncing = false;
  room.buffer = [];
  room.store = null;
  if (state.current === room.id) {
    state.current = null;
    openRoom(room.id);
  }
}

function applyChanges(room, changes) {
  const lastSeq = room.last_seq;
  applyRoom(room, changes.room);
  room.last_seq = lastSeq; // applyMessage() moves it, counting unread on the way
  for (const m of changes.messages) applyMessage(room, m);
  room.last_seq = Math.max(room.last_seq, changes.room.last_seq);
  for (const member of changes.members) applyMember(room, member.user, member.role);
  for (const id of changes.left_member_ids) {
    if (state.me && id === state.me.id) return dropRoom(room.id, 'You are no longer in this room.');
    applyLeft(room, id);
  }
}

function applyRoom(room, dto) {
  assignRoomFields(room, dto);
  if (room.id === state.current) renderRoomHead(room);
  scheduleRoomList();
}

function onMessageNew(room, m) {
  applyMessage(room, m);
  if (!isMine(m) && m.seq > room.myRead) sendFrame('delivered', { room_id: room.id, seq: m.seq });
  if (room.id === state.current) markReadSoon();
}

/** Puts a message (new or changed) into the room and onto the screen. */
function applyMessage(room, m) {
  if (m.seq > room.last_seq) {
    if (!isMine(m) && !m.deleted && m.kind !== 'system') room.unread_count = (room.unread_count || 0) + 1;
    if (!isMine(m)) clearTyping(room, m.sender.id); // they sent what they were typing
    room.last_seq = m.seq;
  }
  if (!room.last_message || m.seq >= room.last_message.seq) room.last_message = m;
  if (room.store) {
    room.store.messages.set(m.id, m);
    if (room.id === state.current) placeMessage(room, m);
  }
  scheduleRoomList();
}

function applyDeleted(room, { id, seq }) {
  const gone = (m) => ({ ...m, deleted: true, content: '', attachment: null });
  if (room.last_message && room.last_message.id === id) room.last_message = gone(room.last_message);
  const m = room.store && room.store.messages.get(id);
  if (m) {
    const updated = gone(m);
    room.store.messages.set(id, updated);
    if (room.id === state.current) placeMessage(room, updated);
    if (seq > room.myRead) recountUnread(room);
  }
  scheduleRoomList();
}

function applyReaction(room, p) {
  const m = room.store && room.store.messages.get(p.message_id);
  if (!m) return;
  const mine = state.me && p.user_id === state.me.id;
  m.reactions = p.reactions.map((r) => {
    const before = m.reactions.find((x) => x.emoji === r.emoji);
    const me = mine && r.emoji === p.emoji ? p.added : Boolean(before && before.me);
    return { emoji: r.emoji, count: r.count, me };
  });
  if (room.id === state.current) placeMessage(room, m);
}

function applyMember(room, user, role) {
  rememberUser(user);
  if (room.members) {
    const had = room.members.get(user.id);
    room.members.set(user.id, { user, role, joined_at: had ? had.joined_at : new Date().toISOString() });
    if (!had && !room.syncing) room.member_count = Math.max(room.member_count, room.members.size);
  }
  if (state.me && user.id === state.me.id) room.my_role = role;
  if (room.id === state.current) renderRoomHead(room);
  scheduleRoomList();
}

function applyRole(room, userId, role) {
  const member = room.members && room.members.get(userId);
  if (member) member.role = role;
  if (state.me && userId === state.me.id) room.my_role = role;
}

function applyLeft(room, userId) {
  if (room.members && room.members.delete(userId)) room.member_count = Math.max(0, room.member_count - 1);
  room.receipts.delete(userId);
  clearTyping(room, userId);
  if (room.id === state.current) {
    renderRoomHead(room);
    renderSeen(room);
  }
}

function onRead({ room_id, user_id, seq }) {
  const room = state.rooms.get(room_id);
  if (!room) return;
  if (state.me && user_id === state.me.id) {
    // My marker, moved on another device.
    if (seq > room.myRead) {
      room.myRead = seq;
      recountUnread(room);
      scheduleRoomList();
    }
    return;
  }
  if (seq > (room.receipts.get(user_id) || 0)) {
    room.receipts.set(user_id, seq);
    renderSeen(room);
  }
}

// ------------------------------------------------------------ dialogs

function openDialog(id) {
  const dialog = $(id);
  if (!dialog.open) dialog.showModal();
  return dialog;
}

function confirmDialog(text, yesLabel = 'OK') {
  const dialog = openDialog('confirm-dialog');
  $('confirm-text').textContent = text;
  $('confirm-yes').textContent = yesLabel;
  $('confirm-no').focus();
  return new Promise((resolve) => {
    const done = (answer) => {
      $('confirm-form').onsubmit = null;
      $('confirm-no').onclick = null;
      dialog.onclose = null;
      if (dialog.open) dialog.close();
      resolve(answer);
    };
    $('confirm-form').onsubmit = (e) => {
      e.preventDefault();
      done(true);
    };
    $('confirm-no').onclick = () => done(false);
    dialog.onclose = () => done(false);
  });
}

function openCreateRoom() {
  const form = $('create-room-form');
  form.reset();
  clearFormError(form);
  openDialog('create-room-dialog');
  form.elements.name.focus();
}

async function onCreateRoom(event) {
  event.preventDefault();
  const form = event.target;
  clearFormError(form);
  const f = form.elements;
  const body = { name: f.name.value.trim(), kind: f.kind.value };
  if (f.description.value.trim()) body.description = f.description.value.trim();
  await withBusy(form.querySelector('[type=submit]'), async () => {
    try {
      const room = await api('POST', '/rooms', body);
      ensureRoom(room, { my_role: 'owner' });
      $('create-room-dialog').close();
      navigate(room.id);
    } catch (e) {
      showFormError(form, e);
    }
  });
}

const directory = { cursor: null, query: '' };

function openDirectory() {
  openDialog('directory-dialog');
  const input = $('directory-search');
  input.value = '';
  searchDirectory();
  input.focus();
}

async function searchDirectory(more = false) {
  const q = $('directory-search').value.trim();
  if (!more) {
    directory.cursor = null;
    directory.query = q;
  }
  const params = new URLSearchParams({ limit: '20' });
  if (directory.query) params.set('q', directory.query);
  if (more && directory.cursor) params.set('cursor', directory.cursor);
  try {
    const page = await api('GET', `/rooms?${params}`);
    if (!more && q !== $('directory-search').value.trim()) return; // a newer search is running
    const list = $('directory-list');
    const items = page.items.map(directoryItem);
    if (more) list.append(...items);
    else list.replaceChildren(...items);
    directory.cursor = page.next_cursor;
    $('directory-more').hidden = !page.next_cursor;
    $('directory-empty').hidden = list.children.length > 0;
  } catch (e) {
    showError(e);
  }
}

function directoryItem(dto) {
  const joined = state.rooms.has(dto.id);
  const button = el(
    'button',
    {
      type: 'button',
      class: ['btn', 'small', !joined && 'primary'],
      'aria-label': `${joined ? 'Open' : 'Join'} ${dto.name}`,
      testid: 'directory-join',
      onclick: () => joinRoom(dto, button),
    },
    joined ? 'Open' : 'Join',
  );
  return el(
    'li',
    { class: 'pick-item', testid: 'directory-item', dataset: { roomId: dto.id } },
    avatar(dto.name),
    el(
      'span',
      { class: 'pick-main' },
      el('span', { class: 'pick-title' }, dto.name),
      el('span', { class: 'muted' }, `${dto.member_count} member${dto.member_count === 1 ? '' : 's'}${dto.description ? ` · ${dto.description}` : ''}`),
    ),
    button,
  );
}

async function joinRoom(dto, button) {
  if (state.rooms.has(dto.id)) {
    $('directory-dialog').close();
    navigate(dto.id);
    return;
  }
  await withBusy(button, async () => {
    try {
      const room = await api('POST', `/rooms/${dto.id}/join`);
      ensureRoom(room);
      $('directory-dialog').close();
      navigate(room.id);
    } catch (e) {
      showError(e);
    }
  });
}

function openDmDialog() {
  openDialog('dm-dialog');
  const input = $('dm-search');
  input.value = '';
  $('dm-list').replaceChildren();
  $('dm-empty').hidden = true;
  searchPeople();
  input.focus();
}

async function searchPeople() {
  const q = $('dm-search').value.trim();
  const params = new URLSearchParams({ limit: '20' });
  if (q) params.set('q', q);
  try {
    const page = await api('GET', `/users?${params}`);
    if (q !== $('dm-search').value.trim()) return;
    for (const u of page.items) rememberUser(u);
    $('dm-list').replaceChildren(...page.items.map((u) => personItem(u, 'dm-user')));
    $('dm-empty').hidden = page.items.length > 0;
  } catch (e) {
    showError(e);
  }
}

function personItem(user, testid, role) {
  const self = state.me && user.id === state.me.id;
  const name = user.display_name || user.username;
  return el(
    'li',
    { class: 'pick-item', testid, dataset: { userId: user.id } },
    avatar(name, user.id),
    el(
      'span',
      { class: 'pick-main' },
      el('span', { class: 'pick-title' }, name, self ? el('span', { class: 'muted' }, ' (you)') : null),
      el('span', { class: 'muted' }, `@${user.username}${role && role !== 'member' ? ` · ${role}` : ''}`),
    ),
    el(
      'button',
      { type: 'button', class: 'btn small', 'aria-label': self ? 'Open notes to self' : `Message ${name}`, testid: 'message-user', onclick: (e) => openDm(user, e.currentTarget) },
      icon('chat'),
      el('span', { class: 'btn-label' }, 'Message'),
    ),
  );
}

async function openDm(user, button) {
  await withBusy(button, async () => {
    try {
      const room = await api('POST', '/dms', { user_id: user.id });
      ensureRoom(room);
      for (const d of document.querySelectorAll('dialog[open]')) d.close();
      navigate(room.id);
    } catch (e) {
      showError(e);
    }
  });
}

async function openMembers() {
  const room = currentRoom();
  if (!room) return;
  openDialog('members-dialog');
  $('members-title').textContent = `Members of ${roomName(room)}`;
  try {
    await loadMembers(room);
    const members = [...room.members.values()].sort((a, b) => Number(isOnline(b.user.id)) - Number(isOnline(a.user.id)));
    $('members-list').replaceChildren(...members.map((m) => personItem(state.users.get(m.user.id) || m.user, 'member-item', m.role)));
  } catch (e) {
    showError(e);
  }
}

// ------------------------------------------------------------ start-up

function bindUi() {
  $('tab-login').addEventListener('click', () => selectAuthTab('login'));
  $('tab-signup').addEventListener('click', () => selectAuthTab('signup'));
  $('login-form').addEventListener('submit', onLogin);
  $('signup-form').addEventListener('submit', onSignup);
  $('logout-btn').addEventListener('click', logOut);
  $('new-room-btn').addEventListener('click', openCreateRoom);
  $('directory-btn').addEventListener('click', openDirectory);
  $('new-dm-btn').addEventListener('click', openDmDialog);
  $('create-room-form').addEventListener('submit', onCreateRoom);
  $('directory-search').addEventListener('input', debounce(() => searchDirectory(), 250));
  $('directory-more').addEventListener('click', () => searchDirectory(true));
  $('dm-search').addEventListener('input', debounce(searchPeople, 250));
  $('members-btn').addEventListener('click', openMembers);
  $('leave-btn').addEventListener('click', leaveRoom);
  $('back-btn').addEventListener('click', () => navigate(null));
  $('jump-latest').addEventListener('click', () => {
    scrollToBottom();
    markReadSoon();
  });
  $('messages').addEventListener('scroll', onMessagesScroll, { passive: true });
  $('composer').addEventListener('submit', onComposerSubmit);
  $('message-input').addEventListener('keydown', onComposerKey);
  $('message-input').addEventListener('input', onComposerInput);
  $('composer-context-cancel').addEventListener('click', cancelContext);
  $('file-input').addEventListener('change', onFileChosen);
  $('pending-remove').addEventListener('click', removeAttachment);
  for (const button of document.querySelectorAll('dialog [data-close]')) {
    button.addEventListener('click', () => button.closest('dialog').close());
  }
  document.addEventListener('click', (e) => {
    if (openPicker && !e.target.closest('.picker') && e.target !== openPicker.anchor && !openPicker.anchor.contains(e.target)) closePicker();
  });
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && openPicker) {
      const anchor = openPicker.anchor;
      closePicker();
      anchor.focus();
    }
  });
  window.addEventListener('popstate', route);
  window.addEventListener('focus', markReadSoon);
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') {
      markReadSoon();
      reconnectNow();
    }
  });
  window.addEventListener('online', reconnectNow);
  window.addEventListener('storage', (e) => {
    if (e.key !== SESSION_KEY) return;
    const stored = loadSession();
    if (stored) state.session = stored; // another tab refreshed the tokens
    else if (state.session) endSession('You logged out in another tab.');
  });
}

function boot() {
  bindUi();
  state.session = loadSession();
  if (!state.session || !state.session.token) {
    state.session = null;
    showAuth();
    return;
  }
  state.me = state.session.user || null;
  startChat();
}

boot();
