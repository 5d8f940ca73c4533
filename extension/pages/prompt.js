// The prompt window: approval (user presence) and the PIN (user verification) for a sign-in,
// "register for which user?" for an admin's create, or a notice (PIN blocked). Its dialog id is
// the URL's fragment; the question comes from the worker, the answer goes back to it.

const $ = (id) => document.getElementById(id);
const dialogId = location.hash.slice(1);
let current = null;

async function load() {
  const answer = await chrome.runtime.sendMessage({ type: 'prompt-question', dialogId });
  current = answer?.ok ? answer.value : null;
  render(current);
}

function render(q) {
  $('working').hidden = q !== null;
  $('form').hidden = q === null;
  if (!q) return;
  const retries = q.retries;
  $('error').textContent = q.error ?? '';
  $('error').hidden = !q.error;
  $('retries').textContent = retries === undefined ? '' : `${retries} ${retries === 1 ? 'retry' : 'retries'} left before the PIN is blocked.`;
  $('retries').hidden = retries === undefined;
  $('pin').value = '';
  $('pin-field').hidden = !q.askPin;
  $('pin').required = q.askPin === true;
  $('for-user-field').hidden = q.kind !== 'create';
  $('for-user').required = q.kind === 'create';
  $('back').hidden = q.kind !== 'create';
  $('no').hidden = q.kind === 'notice';
  const several = q.kind === 'get' && q.accounts.length > 1;
  $('account-field').hidden = !several;
  if (several) {
    $('account').replaceChildren(
      ...q.accounts.map((a) => Object.assign(document.createElement('option'), { value: a.id, textContent: a.name ?? a.displayName ?? a.id })),
    );
  }
  if (q.kind === 'get') {
    const account = q.accounts[0]?.name ?? q.upn;
    $('question').textContent = several ? `Sign in to ${q.rpId}: with which account?` : `Sign in to ${q.rpId} as ${account}?`;
    $('yes').textContent = 'Sign in';
  } else if (q.kind === 'create') {
    $('question').textContent = `${q.rpName ?? q.rpId} (${q.origin}) asks to register a passkey. Register for which user? Your own PIN approves it.`;
    $('yes').textContent = 'Register';
    if (q.forUser) $('for-user').value = q.forUser;
  } else {
    $('question').textContent = q.message;
    $('yes').textContent = 'Close';
    if (q.blocked) $('title').textContent = 'Behalf Key: PIN blocked';
  }
  (q.askPin ? (q.kind === 'create' && !$('for-user').value ? $('for-user') : $('pin')) : $('yes')).focus();
}

async function reply(answer) {
  current = null;
  render(null);
  await chrome.runtime.sendMessage({ type: 'prompt-answer', dialogId, answer });
}

$('form').addEventListener('submit', (e) => {
  e.preventDefault();
  const q = current;
  if (!q) return;
  if (q.kind === 'get') {
    const credentialId = q.accounts.length > 1 ? $('account').value : q.accounts[0]?.id;
    reply({ approve: true, credentialId, pin: q.askPin ? $('pin').value : undefined });
  }
  else if (q.kind === 'create') reply({ forUser: $('for-user').value.trim(), pin: $('pin').value });
  else reply({});
});
$('no').addEventListener('click', () => reply(null));
$('back').addEventListener('click', () => reply({ handBack: true }));

chrome.runtime.onMessage.addListener((m) => {
  if (m?.type === 'prompt-update' && m.dialogId === dialogId) void load();
});
void load();
// An MV3 worker stops after 30 s without events, and the request it holds open would be lost
// while the user reads or types: each message is an event.
setInterval(() => void chrome.runtime.sendMessage({ type: 'prompt-question', dialogId }).catch(() => {}), 20_000);
