// Isolated-world content script: carries the main-world script's requests (content/page.js) to
// the service worker and the answers back. It adds nothing to them: the worker takes the origin
// and frame from the browser's `sender`, never from the message.
'use strict';

window.addEventListener('message', (event) => {
  const data = event.data;
  if (event.source !== window || !data || data.source !== 'behalf-key-page' || typeof data.id !== 'string') return;
  const reply = (outcome) => window.postMessage({ source: 'behalf-key-extension', id: data.id, outcome }, window.location.origin);
  // The worker answers {ok, value} (or {ok: false, error}); a failure leaves the request to the browser.
  chrome.runtime
    .sendMessage({ type: 'page-request', kind: data.kind, options: data.options, conditional: data.conditional === true })
    .then(
      (answer) => reply(answer && answer.ok ? answer.value : { pass: true, reason: answer?.error?.message ?? 'no answer' }),
      (e) => reply({ pass: true, reason: `Behalf Key is not running: ${e.message}` }),
    );
});
