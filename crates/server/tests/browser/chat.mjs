// Drives the bundled web client in Chromium as two users, against a running
// server:  node chat.mjs <base_url> <screenshot_dir>
//
// Alice and Bob sign up through the UI (Alice also logs out and in again),
// Alice creates a public room, Bob finds it in the directory and joins, they
// see each other typing and exchange messages live, Alice reacts to Bob's
// message and uploads a PNG that Bob sees inline. Bob then misses an event
// (a version gap) and loses his connection for a while; his client fills
// both from /changes. Screenshots go to <screenshot_dir>, at desktop and
// phone sizes. Exits non-zero, saying which step failed, on any failure.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';

const [baseUrl, shotDir] = process.argv.slice(2);
if (!baseUrl || !shotDir) {
  console.error('usage: node chat.mjs <base_url> <screenshot_dir>');
  process.exit(2);
}
fs.mkdirSync(shotDir, { recursive: true });

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const TIMEOUT = 10_000;
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const started = Date.now();

// ------------------------------------------------------------ helpers

let currentStep = 'start-up';

async function step(name, fn) {
  currentStep = name;
  const t = Date.now();
  await fn();
  console.log(`ok   ${name} (${Date.now() - t} ms)`);
}

function fail(message) {
  throw new Error(message);
}

/** Waits until the locator matches a visible element (whose text matches `text`). */
async function visible(locator, text, timeout = TIMEOUT) {
  const target = text === undefined ? locator : locator.filter({ hasText: text });
  await target.first().waitFor({ state: 'visible', timeout });
  return target.first();
}

/** Polls fn until it returns a truthy value. */
async function until(what, fn, timeout = TIMEOUT) {
  const end = Date.now() + timeout;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > end) fail(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function shot(user, name) {
  const file = path.join(shotDir, name);
  await user.page.screenshot({ path: file });
  console.log(`     screenshot ${file}`);
}

/** A valid PNG: a w×h gradient, built by hand (signature, IHDR, IDAT, IEND). */
function makePng(w, h) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const sum = Buffer.alloc(4);
    sum.writeUInt32BE(crc(body));
    return Buffer.concat([len, body, sum]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const rows = [];
  for (let y = 0; y < h; y++) {
    const row = Buffer.alloc(1 + w * 3);
    for (let x = 0; x < w; x++) {
      row[1 + x * 3] = Math.round((255 * x) / w);
      row[2 + x * 3] = 70;
      row[3 + x * 3] = Math.round((255 * y) / h);
    }
    rows.push(row);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(Buffer.concat(rows))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/**
 * Puts a proxy between the page's WebSocket and the server, so the test can
 * drop frames the server sends and cut or refuse the connection.
 */
async function controlSockets(context) {
  const ctl = { drop: null, refuse: false, open: [] };
  await context.routeWebSocket(/\/api\/v1\/ws/, (ws) => {
    if (ctl.refuse) {
      ws.close({ code: 4001, reason: 'refused by the test' });
      return;
    }
    const server = ws.connectToServer();
    ws.onMessage((m) => server.send(m));
    server.onMessage((m) => {
      if (ctl.drop && ctl.drop(String(m))) return;
      ws.send(m);
    });
    ctl.open.push({ ws, server });
  });
  ctl.cut = async () => {
    for (const { ws, server } of ctl.open.splice(0)) {
      await ws.close({ code: 4000, reason: 'cut by the test' }).catch(() => {});
      await server.close({ code: 4000, reason: 'cut by the test' }).catch(() => {});
    }
  };
  return ctl;
}

async function newUser(browser, name) {
  const context = await browser.newContext({ viewport: DESKTOP });
  const sockets = await controlSockets(context);
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (msg) => {
    const text = msg.text();
    // Failed requests the test provokes (a bad login, cut sockets) are logged by the browser; they are not the page's bugs.
    const expected = /^Failed to load resource|^WebSocket connection to .* failed/.test(text);
    if ((msg.type() === 'error' && !expected) || /Content Security Policy|Refused to/.test(text)) problems.push(`console ${msg.type()}: ${text}`);
  });
  const user = {
    name,
    display: name[0].toUpperCase() + name.slice(1),
    username: `${name}_${run}`,
    password: `pw-${run}-secret`,
    context,
    page,
    sockets,
    problems,
  };
  user.email = `${user.username}@example.com`;
  return user;
}

const tid = (user, id) => user.page.getByTestId(id);

/** The room list entry whose name is exactly `name`. */
function roomItem(user, name) {
  const exact = new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
  return tid(user, 'room-item').filter({ has: user.page.getByTestId('room-name').filter({ hasText: exact }) });
}

/** The message whose own text (not a quote of it) contains `text`. */
function message(user, text) {
  return tid(user, 'message').filter({ has: user.page.getByTestId('message-text').filter({ hasText: text }) });
}

async function signUp(user) {
  await tid(user, 'tab-signup').click();
  await tid(user, 'signup-username').fill(user.username);
  await tid(user, 'signup-display-name').fill(user.display);
  await tid(user, 'signup-email').fill(user.email);
  await tid(user, 'signup-password').fill(user.password);
}

async function loggedIn(user) {
  await visible(tid(user, 'me-name'), user.display);
}

/** Types slowly (so the typing indicator fires), checks the other side sees it, sends. */
async function say(from, to, text) {
  const input = tid(from, 'message-input');
  await input.click();
  await input.pressSequentially(text, { delay: 15 });
  await visible(tid(to, 'typing-indicator'), `${from.display} is typing`);
  await input.press('Enter');
  await visible(message(to, text).getByTestId('message-text'), text);
  await visible(message(from, text).getByTestId('message-text'), text);
}

// ------------------------------------------------------------ the scenario

async function scenario(alice, bob) {
  const room = `Lobby ${run}`;

  await step('both open the client and see the sign-in page', async () => {
    await Promise.all([alice.page.goto(baseUrl), bob.page.goto(baseUrl)]);
    await visible(tid(alice, 'login-form'));
    await visible(tid(bob, 'login-form'));
  });

  await step('a bad login shows a readable error', async () => {
    await tid(alice, 'login-username').fill(alice.username);
    await tid(alice, 'login-password').fill('wrong-password');
    await tid(alice, 'login-submit').click();
    const error = await visible(tid(alice, 'login-error'));
    const text = (await error.textContent()).trim();
    if (!text || /undefined|\{/.test(text)) fail(`unreadable login error: ${JSON.stringify(text)}`);
  });

  await step('alice signs up', async () => {
    await signUp(alice);
    await shot(alice, '01-signup-alice-desktop.png');
    await tid(alice, 'signup-submit').click();
    await loggedIn(alice);
  });

  await step('alice logs out and logs in again', async () => {
    await tid(alice, 'logout').click();
    await visible(tid(alice, 'login-form'));
    await tid(alice, 'login-username').fill(alice.username);
    await tid(alice, 'login-password').fill(alice.password);
    await tid(alice, 'login-submit').click();
    await loggedIn(alice);
  });

  await step('bob signs up', async () => {
    await signUp(bob);
    await tid(bob, 'signup-submit').click();
    await loggedIn(bob);
  });

  await step('alice creates a public room', async () => {
    await tid(alice, 'new-room').click();
    await tid(alice, 'create-room-name').fill(room);
    await tid(alice, 'create-room-description').fill('Browser test room');
    await tid(alice, 'create-room-public').check();
    await tid(alice, 'create-room-submit').click();
    await visible(tid(alice, 'room-title'), room);
    await visible(tid(alice, 'room-item'), room);
  });

  await step('bob finds the room in the directory and joins', async () => {
    await tid(bob, 'open-directory').click();
    await tid(bob, 'directory-search').fill(run);
    const item = await visible(tid(bob, 'directory-item'), room);
    await shot(bob, '02-directory-bob-desktop.png');
    await item.getByTestId('directory-join').click();
    await visible(tid(bob, 'room-title'), room);
    await visible(tid(bob, 'room-item'), room);
  });

  const fromBob = `Hi Alice, Bob here (${run})`;
  const fromAlice = `Welcome Bob! <b>not bold</b> & <script>alert(1)</script>`;

  await step('bob types (alice sees it) and sends; alice gets it live', async () => {
    await say(bob, alice, fromBob);
  });

  await step('alice types (bob sees it) and answers; bob gets it live, as plain text', async () => {
    await say(alice, bob, fromAlice);
    const text = message(bob, 'Welcome Bob!').getByTestId('message-text');
    if ((await text.textContent()) !== fromAlice) fail(`bob sees ${JSON.stringify(await text.textContent())}`);
    if ((await text.locator('b, script').count()) !== 0) fail('user text was rendered as HTML');
  });

  await step("alice reacts to bob's message; bob sees the reaction live", async () => {
    const theirs = message(alice, fromBob);
    await theirs.hover();
    await theirs.getByTestId('react').click();
    await tid(alice, 'emoji-picker').getByRole('menuitem', { name: 'React with 👍' }).click();
    await visible(theirs.getByTestId('reaction'), '👍');
    const mine = await visible(message(bob, fromBob).getByTestId('reaction'), '👍');
    await until('the reaction count 1 on bob’s side', async () => (await mine.textContent()).includes('1'));
    const pressed = await theirs.getByTestId('reaction').first().getAttribute('aria-pressed');
    if (pressed !== 'true') fail(`alice's own reaction is not highlighted (aria-pressed=${pressed})`);
  });

  await step("bob replies to alice's message; alice sees the quoted parent", async () => {
    const parent = message(bob, 'Welcome Bob!');
    await parent.hover();
    await parent.getByTestId('reply').click();
    await visible(tid(bob, 'composer-context'), `Replying to ${alice.display}`);
    const reply = `Thanks, glad to be here (${run})`;
    await tid(bob, 'message-input').fill(reply);
    await tid(bob, 'message-input').press('Enter');
    await visible(message(alice, reply).getByTestId('message-quote'), 'Welcome Bob!');
    await visible(message(bob, reply).getByTestId('message-quote'), 'Welcome Bob!');
    if (await tid(bob, 'composer-context').isVisible()) fail('the reply context stayed after sending');
  });

  await step('alice sees that bob has read her message', async () => {
    await visible(message(alice, 'Welcome Bob!').getByTestId('seen-by'), /Seen by Bob/);
  });

  await step('alice uploads a PNG; bob sees it inline from a blob: URL', async () => {
    const file = path.join(os.tmpdir(), `chat-test-${run}.png`);
    fs.writeFileSync(file, makePng(96, 64));
    await tid(alice, 'file-input').setInputFiles(file);
    await visible(alice.page.locator('[data-testid="pending-attachment"][data-status="ready"]'));
    await tid(alice, 'send').click();
    const img = await visible(bob.page.locator('img[data-testid="message-image"][src^="blob:"]'));
    await until('the image to decode on bob’s side', () => img.evaluate((i) => i.complete && i.naturalWidth === 96));
    await visible(alice.page.locator('img[data-testid="message-image"][src^="blob:"]'));
    fs.rmSync(file, { force: true });
  });

  await step('desktop screenshots of the conversation', async () => {
    await shot(alice, '03-room-alice-desktop.png');
    await shot(bob, '04-room-bob-desktop.png');
  });

  await step('bob messages alice directly; alice sees the new conversation with an unread badge', async () => {
    const dm = `Psst, just between us (${run})`;
    await tid(bob, 'new-dm').click();
    await tid(bob, 'dm-search').fill(alice.username);
    const person = await visible(tid(bob, 'dm-user'), `@${alice.username}`);
    await person.getByTestId('message-user').click();
    await visible(tid(bob, 'room-title'), alice.display);
    await visible(tid(bob, 'room-subtitle'), 'Online');
    const dot = roomItem(bob, alice.display).getByTestId('presence');
    await until('alice’s presence dot to be online', async () => /\bonline\b/.test((await dot.getAttribute('class')) || ''));
    await tid(bob, 'message-input').fill(dm);
    await tid(bob, 'message-input').press('Enter');
    const item = roomItem(alice, bob.display);
    await visible(item.getByTestId('unread-badge'), '1');
    await visible(item.getByTestId('room-preview'), dm);
    await shot(alice, '05-unread-dm-alice-desktop.png');
    await item.click();
    await visible(message(alice, dm));
    await item.getByTestId('unread-badge').waitFor({ state: 'detached' });
    await visible(message(bob, dm).getByTestId('seen-by'), 'Seen');
    // Back to the room for what follows.
    await roomItem(alice, room).click();
    await roomItem(bob, room).click();
    await visible(tid(alice, 'room-title'), room);
    await visible(tid(bob, 'room-title'), room);
  });

  await step('alice deletes a message of hers; bob sees it deleted', async () => {
    const oops = `Oops, wrong window (${run})`;
    await tid(alice, 'message-input').fill(oops);
    await tid(alice, 'message-input').press('Enter');
    const mine = await visible(message(alice, oops));
    await visible(message(bob, oops));
    const id = await mine.getAttribute('data-id');
    await mine.hover();
    await mine.getByTestId('delete').click();
    await tid(alice, 'confirm-yes').click();
    const gone = `[data-testid="message"][data-id="${id}"]`;
    await visible(alice.page.locator(gone), 'This message was deleted');
    await visible(bob.page.locator(gone), 'This message was deleted');
  });

  await step('bob misses an event; his client fills the gap from /changes', async () => {
    const missed = `This one gets lost on the way (${run})`;
    let dropped = false;
    bob.sockets.drop = (frame) => {
      if (frame.includes('"message:new"') && frame.includes(missed)) return (dropped = true);
      return false;
    };
    await tid(alice, 'message-input').fill(missed);
    await tid(alice, 'message-input').press('Enter');
    await until('the frame to be dropped', () => dropped);
    bob.sockets.drop = null;
    const after = `And this one arrives (${run})`;
    await tid(alice, 'message-input').fill(after);
    await tid(alice, 'message-input').press('Enter');
    await visible(message(bob, after));
    await visible(message(bob, missed));
  });

  await step('bob is cut off; alice edits a message meanwhile; bob reconnects and catches up', async () => {
    bob.sockets.refuse = true;
    await bob.sockets.cut();
    await visible(tid(bob, 'connection-status'));
    const ours = message(alice, 'Welcome Bob!');
    await ours.hover();
    await ours.getByTestId('edit').click();
    const edited = `Welcome Bob, edited while you were away (${run})`;
    await tid(alice, 'message-input').fill(edited);
    await tid(alice, 'message-input').press('Enter');
    await visible(message(alice, edited));
    bob.sockets.refuse = false;
    await visible(message(bob, edited), undefined, 20_000);
    await tid(bob, 'connection-status').waitFor({ state: 'hidden' });
  });

  await step('bob on a phone: the open room, then back to the room list', async () => {
    await bob.page.setViewportSize(PHONE);
    await visible(tid(bob, 'back'));
    if (await tid(bob, 'room-list').isVisible()) fail('the room list shows beside the room on a phone');
    await shot(bob, '06-room-bob-phone.png');
    await tid(bob, 'back').click();
    await visible(tid(bob, 'room-item'), room);
    if (await tid(bob, 'messages').isVisible()) fail('the room shows beside the room list on a phone');
    await shot(bob, '07-rooms-bob-phone.png');
    await roomItem(bob, room).click();
    await visible(tid(bob, 'room-title'), room);
  });
}

// ------------------------------------------------------------ main

let browser;
let users = [];
let failed = false;
try {
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  users = [await newUser(browser, 'alice'), await newUser(browser, 'bob')];
  await scenario(...users);
  for (const u of users) {
    if (u.problems.length) {
      currentStep = `${u.name}'s page stayed free of errors`;
      fail(u.problems.join('\n'));
    }
  }
} catch (e) {
  failed = true;
  console.error(`\nFAILED at step "${currentStep}":\n${e && e.stack ? e.stack : e}`);
  for (const u of users) {
    if (u.problems.length) console.error(`\n${u.name}'s page reported:\n  ${u.problems.join('\n  ')}`);
    await u.page
      .screenshot({ path: path.join(shotDir, `failure-${u.name}.png`) })
      .then(() => console.error(`screenshot ${path.join(shotDir, `failure-${u.name}.png`)}`))
      .catch(() => {});
  }
} finally {
  if (browser) await browser.close().catch(() => {});
}
console.log(`${failed ? 'FAILED' : 'passed'} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
process.exit(failed ? 1 : 0);
