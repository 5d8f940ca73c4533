// The prompt window (pages/prompt.html): one small window per request, opened on the first
// question and reused for the next ones (a wrong PIN asks again in the same window), closed when
// the request ends. Closing it is declining.

const SIZE = { width: 440, height: 420 };

export class Dialogs {
  /** @param {typeof chrome} browser the `chrome` namespace (windows, runtime) */
  constructor(browser) {
    this.browser = browser;
    /** request key → dialog */
    this.byKey = new Map();
    /** dialog id → dialog */
    this.byId = new Map();
  }

  /**
   * Shows `question` for the request `key` and answers what the user answered, or null when
   * they closed the window.
   * @param {string | number} key
   * @param {object} question
   */
  async ask(key, question) {
    let dialog = this.byKey.get(key);
    const answer = new Promise((resolve) => {
      if (dialog) {
        dialog.resolve?.(null);
        Object.assign(dialog, { question, resolve });
      } else {
        dialog = { id: crypto.randomUUID(), key, question, resolve, windowId: null };
        this.byKey.set(key, dialog);
        this.byId.set(dialog.id, dialog);
      }
    });
    if (dialog.windowId === null) {
      // The window the request came from, focused again when the prompt closes: Chromium
      // refuses a create's answer ("the page does not have focus") for an unfocused page.
      dialog.returnTo = await this.browser.windows.getLastFocused().then((w) => w.id, () => undefined);
      const win = await this.browser.windows.create({
        url: this.browser.runtime.getURL(`pages/prompt.html#${dialog.id}`),
        type: 'popup',
        focused: true,
        ...SIZE,
      });
      dialog.windowId = win.id;
    } else {
      // The open prompt page reads the new question.
      await this.browser.runtime.sendMessage({ type: 'prompt-update', dialogId: dialog.id }).catch(() => {});
    }
    return answer;
  }

  /** The question the prompt page `dialogId` shows, or null when it has none now (working). */
  question(dialogId) {
    return this.byId.get(dialogId)?.question ?? null;
  }

  /** The prompt page's answer. */
  answer(dialogId, answer) {
    const dialog = this.byId.get(dialogId);
    if (!dialog || !dialog.resolve) return false;
    const resolve = dialog.resolve;
    dialog.resolve = null;
    dialog.question = null;
    resolve(answer ?? null);
    return true;
  }

  /** Chromium closed a window: if it was a prompt, its question is declined. */
  windowClosed(windowId) {
    for (const dialog of this.byId.values()) {
      if (dialog.windowId === windowId) {
        dialog.windowId = undefined;
        this.#drop(dialog);
        dialog.resolve?.(null);
      }
    }
  }

  /** The request `key` ended (answered, handed back or canceled): its window goes. */
  async close(key) {
    const dialog = this.byKey.get(key);
    if (!dialog) return;
    this.#drop(dialog);
    dialog.resolve?.(null);
    if (dialog.windowId) await this.browser.windows.remove(dialog.windowId).catch(() => {});
    if (dialog.returnTo !== undefined) await this.browser.windows.update(dialog.returnTo, { focused: true }).catch(() => {});
  }

  #drop(dialog) {
    this.byKey.delete(dialog.key);
    this.byId.delete(dialog.id);
  }
}
