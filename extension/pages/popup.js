// The toolbar popup: pairing (server URL, code, device name, PIN twice) and the paired status,
// with the local-key registrations waiting for the user's approval.

const $ = (id) => document.getElementById(id);

async function send(message) {
  const answer = await chrome.runtime.sendMessage(message);
  if (!answer?.ok) throw Object.assign(new Error(answer?.error?.message ?? 'Behalf Key did not answer.'), answer?.error ?? {});
  return answer.value;
}

function say(text) {
  $('message').textContent = text ?? '';
  $('message').hidden = !text;
}

const PROXY_WORDS = {
  attached: 'Behalf Key answers passkey requests',
  taken: 'another extension holds the WebAuthn proxy: Behalf Key answers through the page only',
  detached: "the browser's own passkeys are in use",
};

function render(s) {
  $('pair').hidden = s.paired;
  $('status').hidden = !s.paired;
  if (!s.paired) {
    if (s.lastUnpaired?.reason === 'revoked') say('Your administrator revoked this device. Ask for a new pairing code.');
    return;
  }
  const me = s.me;
  $('user').textContent = me ? `${me.user.display_name ?? ''} <${me.user.upn}>` : s.pairing.user.upn;
  $('device-name').textContent = me?.device_name ?? s.pairing.deviceName;
  $('role').textContent = me?.role ?? s.pairing.role;
  $('retries').textContent = me ? (me.pin_retries === 0 ? 'blocked' : String(me.pin_retries)) : '?';
  $('proxy').textContent = PROXY_WORDS[s.proxy.state] ?? s.proxy.state;
  if (s.error) say(s.error.message);
  const list = $('requests');
  list.replaceChildren();
  for (const r of s.requests ?? []) list.append(requestForm(r));
}

/** A local-key registration waiting: "your administrator asks to register a passkey for …". */
function requestForm(r) {
  const form = document.createElement('form');
  const text = document.createElement('p');
  text.textContent = `${r.asked_by ?? 'Your administrator'} asks to register a passkey for ${r.rp_name ?? r.rp_id}: approve?`;
  const label = document.createElement('label');
  label.htmlFor = `pin-${r.id}`;
  label.textContent = 'PIN';
  const pin = document.createElement('input');
  pin.id = `pin-${r.id}`;
  pin.type = 'password';
  pin.autocomplete = 'off';
  const approve = document.createElement('button');
  approve.type = 'submit';
  approve.textContent = 'Approve';
  const decline = document.createElement('button');
  decline.type = 'button';
  decline.textContent = 'Decline';
  form.append(text, label, pin, approve, decline);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    act(() => send({ type: 'approve-local', requestId: r.id, pin: pin.value }));
  });
  decline.addEventListener('click', () => act(() => send({ type: 'decline-local', requestId: r.id })));
  return form;
}

async function act(work) {
  say('');
  try {
    await work();
  } catch (e) {
    say(e.code === 'pin_invalid' && e.retries !== undefined ? `Wrong PIN: ${e.retries} retries left.` : e.message);
  }
  render(await send({ type: 'status' }));
}

$('pair').addEventListener('submit', (e) => {
  e.preventDefault();
  if ($('pin').value !== $('pin2').value) return say('The two PINs differ.');
  return act(() =>
    send({ type: 'pair', serverUrl: $('server').value, code: $('code').value, deviceName: $('device').value, pin: $('pin').value }),
  );
});
$('unpair').addEventListener('click', () => act(() => send({ type: 'unpair' })));

send({ type: 'status' }).then(render, (e) => say(e.message));
