() => {
  /* What the page needs for the keyboard and screen readers that Gradio's components do not give
     (zsdemo/app/server.py passes this to launch(js=...)); tests/test_accessibility.py checks each. */
  if (window.__zsPage) return;
  window.__zsPage = true;

  /* Skip links, first in the Tab order: to Classify (at the foot of the window, last in the page's
     order) and to the results. */
  const skipTo = (id, text) => {
    const link = document.createElement('a');
    link.href = '#' + id;
    link.className = 'zs-skip';
    link.textContent = text;
    link.addEventListener('click', (e) => {
      const target = document.getElementById(id);
      if (!target) return;
      e.preventDefault();
      if (target.tagName !== 'BUTTON') target.setAttribute('tabindex', '-1');
      target.focus({preventScroll: true});
      target.scrollIntoView({block: 'nearest'});
    });
    return link;
  };
  const skips = document.createElement('nav');
  skips.setAttribute('aria-label', 'Skip links');
  skips.append(skipTo('run', 'Skip to Classify'), skipTo('results', 'Skip to the results'));
  document.body.prepend(skips);

  /* One polite live region says what a run does, once per change: its start, its progress at most
     every 15 s, its end or refusal. Gradio's progress overlay changes every tick, so the status
     line itself is not a live region. */
  const say = document.createElement('div');
  say.id = 'zs-announce';
  say.className = 'zs-sr-only';
  say.setAttribute('role', 'status');
  say.setAttribute('aria-live', 'polite');
  say.setAttribute('aria-atomic', 'true');
  document.body.append(say);
  window.__zsAnnounced = [];
  let last = '', lastProgressAt = 0;
  const announce = (text) => {
    text = (text || '').replace(/\s+/g, ' ').trim();
    if (!text || text === last) return;
    last = text;
    say.textContent = text;
    window.__zsAnnounced.push(text);
  };
  const watchStatus = (id) => {
    const line = document.getElementById(id);
    if (!line || line.__zsWatched) return;
    line.__zsWatched = true;
    new MutationObserver(() => {
      const status = line.querySelector('.zs-status');
      const progress = line.querySelector('.progress-text');
      if (progress && !status?.classList.contains('zs-status-error')) {
        const now = Date.now();
        if (now - lastProgressAt > 15000) {
          lastProgressAt = now;
          announce('Working: ' + progress.innerText);
        }
        return;
      }
      lastProgressAt = 0;
      if (status) announce(status.innerText);
      else if (id === 'eval-summary') announce(line.innerText.slice(0, 300));
    }).observe(line, {childList: true, subtree: true, characterData: true});
  };

  /* Gradio's widgets, repaired where axe finds them wanting: the gallery's upload icon is a button
     holding a second button (app.css hides the inner one; a click or Enter on the outer one opens
     the file dialog through it); a toast's header is a "button" holding its close button;
     an untranslated label is read as "common.webcam". */
  const LABELS = {'common.webcam': 'Take a photo with the camera', 'common.clear': 'Clear',
                  'common.download': 'Download'};
  let rowFocus = null;
  document.addEventListener('focusin', (e) => {
    const row = e.target.closest?.('#summary .zs-row');
    rowFocus = row ? row.dataset.index : null;
  });
  const repair = () => {
    for (const inner of document.querySelectorAll('button.icon-button button.upload-container')) {
      if (inner.__zsRepaired) continue;
      inner.__zsRepaired = true;
      const outer = inner.closest('button.icon-button');
      outer.addEventListener('click', (e) => { if (!inner.contains(e.target)) inner.click(); });
    }
    for (const head of document.querySelectorAll('.toast-header[role="button"]')) {
      head.removeAttribute('role');          // a "button" holding the close button: the close button stays
      head.removeAttribute('tabindex');
    }
    for (const el of document.querySelectorAll('[aria-label^="common."], [title^="common."]')) {
      const key = el.getAttribute('aria-label') || el.getAttribute('title');
      const label = LABELS[key] || key.slice(7).replace(/_/g, ' ');
      el.setAttribute('aria-label', label);
      el.setAttribute('title', label);
    }
    // Gradio names each radio button of a group apart ("radio-20", "radio-21"): a screen reader
    // hears "1 of 1". One name per group (the arrow keys are handled below either way).
    for (const group of document.querySelectorAll('fieldset')) {
      const radios = group.querySelectorAll('input[type="radio"]');
      const name = 'zs-' + (group.id || radios[0]?.name);
      for (const r of radios) if (r.name !== name) r.name = name;
    }
    // A summary row inspected by keyboard is redrawn (the selection moves): the focus stays on it.
    if (rowFocus !== null && (!document.activeElement || document.activeElement === document.body)) {
      document.querySelector(`#summary .zs-row[data-index="${rowFocus}"]`)?.focus();
    }
    watchStatus('run-status');
    watchStatus('eval-summary');
  };
  repair();
  // Coalesced: Gradio redraws often (a progress tick is a mutation), one repair per 150 ms at most.
  let pending = null;
  new MutationObserver(() => { if (!pending) pending = setTimeout(() => { pending = null; repair(); }, 150); })
    .observe(document.body, {childList: true, subtree: true});

  /* The arrow keys move within a group of radio buttons (the preset, the sense picker): Gradio
     names each button apart, so the browser's own arrow keys could not. */
  document.addEventListener('keydown', (e) => {
    const keys = {ArrowDown: 1, ArrowRight: 1, ArrowUp: -1, ArrowLeft: -1};
    const radio = e.target;
    if (!(e.key in keys) || !(radio instanceof HTMLInputElement) || radio.type !== 'radio') return;
    const radios = [...(radio.closest('fieldset') || document).querySelectorAll('input[type="radio"]')];
    const next = radios[(radios.indexOf(radio) + keys[e.key] + radios.length) % radios.length];
    e.preventDefault();
    next.focus();
    next.click();
  });

  /* Escape stops a run (the Stop button is shown only while one runs). */
  document.addEventListener('keydown', (e) => {
    if (e.key !== 'Escape' || e.target.closest?.('[aria-expanded="true"]')) return;   // closing a list first
    for (const id of ['stop', 'eval-stop']) {
      const stop = document.getElementById(id);
      if (stop && stop.offsetParent !== null && !stop.disabled) { stop.click(); return; }
    }
  });
}
