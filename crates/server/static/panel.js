// Behalf's panel: the little the pages need beyond htmx. No framework, no inline handlers (the
// Content-Security-Policy allows scripts from this origin only), and every page works without it
// except the conveniences below.

/** The selection on the users page: a count, "this page", and "everyone who matches". */
function selection() {
  const form = document.getElementById('selection');
  if (!form) return;
  const count = document.getElementById('selection-count');
  const allMatching = document.getElementById('all-matching');
  const allButton = document.getElementById('select-all-matching');
  const boxes = () => [...form.querySelectorAll('input[type=checkbox][name=user]')];
  const show = () => {
    if (allMatching.value === '1') {
      count.textContent = 'Every user who matches the search is selected';
      return;
    }
    const n = boxes().filter((b) => b.checked).length;
    count.textContent = n === 0 ? 'None selected' : `${n} selected`;
  };
  const setAll = (on) => {
    allMatching.value = on ? '1' : '';
    allButton.setAttribute('aria-pressed', on ? 'true' : 'false');
    allButton.textContent = on ? 'Clear the selection' : 'Select all that match';
    for (const b of boxes()) b.checked = on;
    show();
  };
  form.addEventListener('change', (event) => {
    const target = event.target;
    if (target.id === 'select-page') {
      for (const b of boxes()) b.checked = target.checked;
    } else if (target.name === 'user' && !target.checked && allMatching.value === '1') {
      allMatching.value = '';
      allButton.setAttribute('aria-pressed', 'false');
      allButton.textContent = 'Select all that match';
    }
    show();
  });
  allButton.addEventListener('click', () => setAll(allMatching.value !== '1'));
  // New results (search, next page) start with nothing selected.
  document.body.addEventListener('htmx:afterSwap', (event) => {
    if (event.target.id === 'users-results' || event.detail.target?.id === 'users-results') setAll(false);
  });
  show();
}

/** Forms marked `data-confirm` ask before they post. */
function confirmations() {
  document.addEventListener('submit', (event) => {
    const message = event.target.dataset?.confirm;
    if (message && !window.confirm(message)) event.preventDefault();
  });
}

selection();
confirmations();
