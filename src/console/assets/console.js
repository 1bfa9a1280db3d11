// The Omnirail console's one script (served from the binary; no inline script is allowed).
// It tells the person when something is assigned to them or changes on their work, from
// their own event stream, without reloading the page under their hands.
(function () {
  'use strict';
  var live = document.getElementById('live');
  if (!live || !document.querySelector('[data-testid="me"]') || !window.EventSource) return;
  var stream = new EventSource('/console/stream');
  var shown = 0;
  function tell(event) {
    var data = {};
    try { data = JSON.parse(event.data); } catch (e) { return; }
    shown += 1;
    live.hidden = false;
    live.textContent = '';
    var text = document.createElement('span');
    text.textContent = (data.summary || data.eventType || 'Something changed') + (shown > 1 ? ' (and ' + (shown - 1) + ' more)' : '') + '. ';
    var reload = document.createElement('a');
    reload.href = window.location.pathname + window.location.search;
    reload.textContent = 'Refresh';
    live.appendChild(text);
    live.appendChild(reload);
  }
  stream.onmessage = tell;
})();
