import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Dialogs } from '../src/dialogs.js';

function fakeBrowser() {
  const log = [];
  let nextWindow = 1;
  return {
    log,
    windows: {
      create: async (o) => { log.push(['create', o.url, o.type]); return { id: nextWindow++ }; },
      remove: async (id) => { log.push(['remove', id]); },
      getLastFocused: async () => ({ id: 99 }),
      update: async (id, o) => { log.push(['update', id, o.focused]); },
    },
    runtime: {
      getURL: (p) => `chrome-extension://id/${p}`,
      sendMessage: async (m) => { log.push(['message', m.type]); },
    },
  };
}

const until = async (cond) => {
  for (let i = 0; i < 1000 && !cond(); i++) await new Promise((r) => setImmediate(r));
  assert.ok(cond());
};

test('one window per request: asked again in the same window, closed when the request ends, focus given back', async () => {
  const browser = fakeBrowser();
  const dialogs = new Dialogs(browser);
  const first = dialogs.ask(7, { kind: 'get', rpId: 'login.microsoft.com' });
  await until(() => browser.log.length === 1);
  const id = browser.log[0][1].split('#')[1];
  assert.equal(browser.log[0][2], 'popup');
  assert.equal(dialogs.question(id).rpId, 'login.microsoft.com');
  dialogs.answer(id, { approve: true, pin: '1' });
  assert.deepEqual(await first, { approve: true, pin: '1' });
  assert.equal(dialogs.question(id), null, 'no question while the worker works');
  const second = dialogs.ask(7, { kind: 'get', retries: 7 });
  await until(() => browser.log.length === 2);
  assert.deepEqual(browser.log[1], ['message', 'prompt-update']);
  assert.equal(dialogs.question(id).retries, 7);
  await dialogs.close(7);
  assert.equal(await second, null);
  assert.deepEqual(browser.log[2], ['remove', 1]);
  assert.deepEqual(browser.log[3], ['update', 99, true], 'the window the request came from has the focus back');
  assert.equal(dialogs.answer(id, {}), false, 'a closed dialog takes no answer');
});

test('closing the window declines', async () => {
  const browser = fakeBrowser();
  const dialogs = new Dialogs(browser);
  const asked = dialogs.ask('k', { kind: 'create' });
  await until(() => browser.log.length === 1);
  dialogs.windowClosed(1);
  assert.equal(await asked, null);
});
