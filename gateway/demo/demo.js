// Symphonic demo: a shared board (state document, JSON Merge Patch deltas) and a chat (events).
// Uses the browser bundle's global `Symphonic`. Add ?json to the URL to use the JSON encoding.
(() => {
  // biome-ignore lint/suspicious/noRedundantUseStrict: a classic script (not a module), so this is not redundant
  'use strict';
  var S = window.Symphonic;
  var COLS = 16,
    ROWS = 10;
  var COLOURS = ['#ef4444', '#f59e0b', '#eab308', '#22c55e', '#06b6d4', '#3b82f6', '#8b5cf6', '#ec4899'];
  var $ = (id) => document.getElementById(id);

  var proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  var encoding = /[?&]json\b/.test(location.search) ? 'json' : 'msgpack';
  var client = new S.SymphonicClient(proto + '//' + location.host + '/ws', { encoding: encoding, name: 'demo-page' });
  window.symphonicClient = client; // for poking at it from the console

  // ---- connection ----------------------------------------------------------------------------
  client.on('state', (e) => {
    badge($('conn'), e.newState);
    log('connection ' + e.oldState + ' → ' + e.newState + (e.code ? ' (' + e.code + ')' : '') + (e.reason ? ': ' + e.reason : ''));
  });
  client.on('connected', (i) => {
    $('node').textContent = 'node ' + i.node;
    log('welcome: session ' + i.session.slice(0, 8) + '… ' + (i.resumed ? 'resumed' : 'new'));
  });
  client.on('error', (e) => {
    log('error ' + e.code + ': ' + e.message);
  });
  $('drop').onclick = () => {
    client.reconnect();
  };

  // ---- board: state document {cells: {"x,y": "#hex"}} ---------------------------------------
  var myColour = COLOURS[Math.floor(Math.random() * COLOURS.length)];
  var cells = [];
  var boardEl = $('board');
  for (var y = 0; y < ROWS; y++) {
    for (var x = 0; x < COLS; x++) {
      var cell = document.createElement('div');
      cell.className = 'cell';
      cell.dataset.key = x + ',' + y;
      cell.setAttribute('role', 'gridcell');
      boardEl.appendChild(cell);
      cells.push(cell);
    }
  }
  COLOURS.forEach((c) => {
    var b = document.createElement('button');
    b.className = 'swatch';
    b.style.background = c;
    b.setAttribute('role', 'radio');
    b.setAttribute('aria-label', c);
    b.setAttribute('aria-checked', String(c === myColour));
    b.onclick = () => {
      myColour = c;
      document.querySelectorAll('.swatch').forEach((s) => {
        s.setAttribute('aria-checked', String(s === b));
      });
    };
    $('palette').appendChild(b);
  });

  // A tiny duck-typed schema: anything with parse() works (zod too, but it is not bundled).
  var BoardSchema = {
    parse: (v) => {
      var out = { cells: {} };
      var src = v && typeof v === 'object' && v.cells && typeof v.cells === 'object' ? v.cells : {};
      Object.keys(src).forEach((k) => {
        if (/^\d+,\d+$/.test(k) && typeof src[k] === 'string' && /^#[0-9a-f]{3,8}$/i.test(src[k])) out.cells[k] = src[k];
      });
      return out;
    },
  };

  var board = client.subscribe('demo.board', {
    schema: BoardSchema,
    onChange: render,
    onStatus: (e) => {
      badge($('board-sub'), e.newState);
    },
    onSubscribed: (i) => {
      flags('board', i);
      render();
    },
  });

  function render() {
    var state = board.state || { cells: {} };
    cells.forEach((cell) => {
      cell.style.background = state.cells[cell.dataset.key] || '';
    });
    var pos = board.position;
    var how = !board.wasRecovering ? 'fresh snapshot' : board.recovered ? 'resumed, nothing lost' : 'resumed from a fresh snapshot (messages were missed)';
    $('board-info').textContent = pos ? Object.keys(state.cells).length + ' painted · seq ' + pos.seq + ' · ' + how : '';
  }

  boardEl.addEventListener('click', (ev) => {
    var key = ev.target && ev.target.dataset && ev.target.dataset.key;
    if (!key) return;
    var current = board.state && board.state.cells[key];
    var patch = { cells: {} };
    patch.cells[key] = current === myColour ? null : myColour; // null deletes (JSON Merge Patch)
    client.publish('demo.board', patch, { kind: 'patch' }).catch((e) => {
      log('paint failed: ' + e.message);
    });
  });
  $('clear').onclick = () => {
    client.publish('demo.board', { cells: {} }, { kind: 'set' }).catch((e) => {
      log('clear failed: ' + e.message);
    });
  };

  // ---- chat: events {from, text} ------------------------------------------------------------
  var nameEl = $('name');
  nameEl.value = sessionStorage.getItem('symphonic-demo-name') || 'guest-' + Math.floor(Math.random() * 9000 + 1000);
  nameEl.onchange = () => {
    sessionStorage.setItem('symphonic-demo-name', nameEl.value);
  };
  var shown = {};

  var ChatSchema = (v) => {
    if (!v || typeof v.from !== 'string' || typeof v.text !== 'string') throw new Error('not a chat message');
    return { from: v.from.slice(0, 20), text: v.text.slice(0, 200) };
  };
  var _chat = client.subscribe('demo.chat', {
    events: ChatSchema,
    onMessage: (m) => {
      if (m.kind === 'event') addChat(m.seq, m.data, false);
    },
    onStatus: (e) => {
      badge($('chat-sub'), e.newState);
    },
    onSubscribed: (i) => {
      flags('chat', i);
      if (!i.wasRecovering) loadHistory(i.position.seq);
    },
  });

  function loadHistory(seq) {
    client.history('demo.chat', { since: Math.max(0, seq - 20), limit: 20 }).then(
      (h) => {
        h.messages.forEach((m) => {
          try {
            addChat(m.seq, ChatSchema(m.data), true);
          } catch (_e) {
            /* skip invalid */
          }
        });
      },
      (e) => {
        log('history failed: ' + e.message);
      },
    );
  }

  function addChat(seq, data, old) {
    if (shown[seq]) return;
    shown[seq] = true;
    var list = $('chat');
    var li = document.createElement('li');
    li.dataset.seq = seq;
    if (old) li.className = 'history';
    var b = document.createElement('b');
    b.textContent = data.from;
    li.appendChild(b);
    li.appendChild(document.createTextNode(data.text));
    // keep seq order even when history arrives after live messages
    var next = Array.prototype.find.call(list.children, (el) => Number(el.dataset.seq) > seq);
    list.insertBefore(li, next || null);
    while (list.children.length > 100) list.removeChild(list.firstChild);
    list.scrollTop = list.scrollHeight;
  }

  $('chat-form').onsubmit = (ev) => {
    ev.preventDefault();
    var text = $('text').value.trim();
    if (!text) return;
    $('text').value = '';
    client.publish('demo.chat', { from: nameEl.value || 'guest', text: text }).catch((e) => {
      log('send failed: ' + e.message);
    });
  };

  // ---- helpers --------------------------------------------------------------------------------
  function badge(el, state) {
    el.dataset.state = state;
    el.textContent = state;
  }
  function flags(what, i) {
    log(
      what +
        ' subscribed at ' +
        i.position.seq +
        (i.wasRecovering ? (i.recovered ? ' · resumed, nothing lost' : ' · resumed, MISSED messages: fresh snapshot') : ''),
    );
  }
  function log(text) {
    var list = $('log');
    var li = document.createElement('li');
    li.textContent = new Date().toLocaleTimeString() + '  ' + text;
    list.insertBefore(li, list.firstChild);
    while (list.children.length > 50) list.removeChild(list.lastChild);
  }

  client.connect();
})();
