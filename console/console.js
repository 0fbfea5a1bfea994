// mailroom's web console: served by mailroomd (docs/HTTP.md, "Console"),
// no build step, no library. It reads /v1/status, /v1/lag, /v1/actors,
// /v1/topics and /v1/dlq/{topic} every few seconds and changes things (replay, purge,
// resume) only with the bearer token, which it keeps for the tab
// (sessionStorage) and takes from the page's #token=... once.
'use strict';

const POLL_MS = 2000;
const WINDOW_S = 300;
const COLORS = ['#2f6fde', '#1a9a5a', '#c4320a', '#7a5af8', '#b54708',
                '#0e9384', '#dd2590', '#475467'];

const state = {
  token: sessionStorage.getItem('mailroom.token') || '',
  prev: null,          // the last status, for rates
  pub: [], ack: [],    // [{t, v}] messages per second
  lag: new Map(),      // group -> [{t, v}] total lag
  restarts: new Map(), // supervisor -> [{t, v}] its total, over WINDOW_S
  dlqTopic: '',
  readFailed: false,
};

function $(id) { return document.getElementById(id); }

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function notice(text, error) {
  const n = $('notice');
  n.hidden = !text;
  n.textContent = text || '';
  n.className = error ? 'error' : '';
}

// A call to the HTTP API: the JSON answer, or an Error with .status.
async function api(method, path, body) {
  const headers = {};
  if (state.token) headers.Authorization = 'Bearer ' + state.token;
  const opt = {method, headers};
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    opt.body = JSON.stringify(body);
  }
  const r = await fetch(path, opt);
  let j;
  try { j = await r.json(); } catch (e) { j = {message: r.statusText}; }
  if (!r.ok || j.ok === false) {
    const err = new Error((j.error || r.status) + ': ' + (j.message || ''));
    err.status = r.status;
    throw err;
  }
  return j;
}

function wantToken(why) {
  $('token-form').classList.add('want');
  $('token').focus();
  notice(why + ': enter mailroomd\'s token (http.token or the first line ' +
         'of http.token_file) above.', true);
}

function failed(what, e) {
  if (e.status === 401 || e.status === 403) wantToken(what + ' needs the token');
  else notice(what + ' failed: ' + e.message, true);
}

function push(series, t, v) {
  series.push({t, v});
  while (series.length && series[0].t < t - WINDOW_S) series.shift();
}

// Lines of [{name, color, points}] on a canvas, time along the last
// WINDOW_S seconds, the largest value at the top.
function plot(canvas, lines) {
  const ctx = canvas.getContext('2d');
  const w = canvas.width, h = canvas.height, pad = 34;
  const now = Date.now() / 1000;
  let max = 1;
  for (const l of lines) for (const p of l.points) max = Math.max(max, p.v);
  ctx.clearRect(0, 0, w, h);
  ctx.strokeStyle = '#d0d5dd';
  ctx.fillStyle = '#667085';
  ctx.font = '11px system-ui, sans-serif';
  ctx.beginPath();
  ctx.moveTo(pad, 6); ctx.lineTo(pad, h - 16); ctx.lineTo(w - 6, h - 16);
  ctx.stroke();
  ctx.fillText(max >= 100 ? max.toFixed(0) : max.toPrecision(3), 2, 14);
  ctx.fillText('0', 2, h - 18);
  ctx.fillText('-' + WINDOW_S + ' s', pad, h - 3);
  ctx.fillText('now', w - 28, h - 3);
  for (const l of lines) {
    ctx.strokeStyle = l.color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    l.points.forEach((p, i) => {
      const x = pad + (w - pad - 6) * (1 - (now - p.t) / WINDOW_S);
      const y = (h - 16) - (h - 22) * (p.v / max);
      if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    });
    ctx.stroke();
  }
}

function row(tbody, cells) {
  const tr = el('tr');
  for (const c of cells) {
    if (c instanceof Node) { const td = el('td'); td.appendChild(c); tr.appendChild(td); }
    else tr.appendChild(el('td', c, typeof c === 'number' ? 'num' : ''));
  }
  tbody.appendChild(tr);
  return tr;
}

function button(text, fn) {
  const b = el('button', text);
  b.type = 'button';
  b.addEventListener('click', fn);
  return b;
}

function fmtMs(ms) {
  if (ms === null || ms === undefined || ms < 0) return '—';
  return ms < 1000 ? ms + ' ms' : (ms / 1000).toFixed(1) + ' s';
}

// ---- status: header, throughput, breakers ----

function renderStatus(st) {
  $('version').textContent = 'mailroomd ' + st.version;
  const k = $('kafka');
  k.textContent = 'Kafka: ' + (st.kafka.reachable ? 'reachable' : 'unreachable') +
                  (st.kafka.embedded ? ' (embedded)' : '');
  k.className = 'pill ' + (st.kafka.reachable ? 'ok' : 'bad');
  $('uptime').textContent = 'up ' + st.uptime_s + ' s';

  const now = Date.now() / 1000;
  const groups = (st.consume && st.consume.groups) || [];
  const acked = groups.reduce((a, g) => a + g.acked, 0);
  if (state.prev) {
    const dt = Math.max(0.001, now - state.prev.t);
    push(state.pub, now, Math.max(0, (st.publish.confirmed - state.prev.pub) / dt));
    push(state.ack, now, Math.max(0, (acked - state.prev.ack) / dt));
  }
  state.prev = {t: now, pub: st.publish.confirmed, ack: acked};
  plot($('throughput-plot'), [{color: '#2f6fde', points: state.pub},
                              {color: '#1a9a5a', points: state.ack}]);

  const tb = $('breaker-table').tBodies[0];
  tb.replaceChildren();
  for (const g of groups) {
    const d = g.dead_letter || {};
    const tr = row(tb, [g.group, g.mode, g.sessions, g.buffered, g.inflight,
                        d.breaker || '—', d.trips || 0, d.quarantined || 0,
                        d.reason || '']);
    tr.children[5].className = d.breaker || '';
    tr.appendChild(el('td')).appendChild(
      button('Resume', () => resume(g.group))).disabled = d.breaker === 'closed';
  }
}

async function resume(group) {
  try {
    const r = await api('POST', '/v1/groups/' + encodeURIComponent(group) + '/resume');
    notice('Resumed ' + r.resumed + ' of ' + r.subscriptions + ' subscriptions of ' + group + '.');
  } catch (e) { failed('Resuming ' + group, e); }
}

// ---- lag ----

function renderLag(l) {
  const tb = $('lag-table').tBodies[0];
  const now = Date.now() / 1000;
  const sums = new Map();
  tb.replaceChildren();
  for (const p of l.partitions) {
    const b = p.bound;
    const throttled = p.throttle && p.throttle !== 'open';
    const tr = row(tb, [p.group, p.topic, p.partition, p.lag, fmtMs(p.time_lag_ms),
                        p.committed === null ? '—' : p.committed, p.end,
                        b ? [b.max_lag ? b.max_lag + ' records' : '',
                             b.max_time_lag_ms ? fmtMs(b.max_time_lag_ms) : '',
                             b.policy].filter(Boolean).join(', ') : '—',
                        p.throttle || '—']);
    if (throttled) tr.className = 'throttled';
    if (p.lag >= 0) sums.set(p.group, (sums.get(p.group) || 0) + p.lag);
  }
  for (const [g, v] of sums) {
    if (!state.lag.has(g)) state.lag.set(g, []);
    push(state.lag.get(g), now, v);
  }
  const lines = [], legend = $('lag-legend');
  legend.replaceChildren();
  let i = 0;
  for (const [g, pts] of state.lag) {
    const color = COLORS[i++ % COLORS.length];
    lines.push({color, points: pts});
    const sw = el('span', null, 'sw');
    sw.style.background = color;
    legend.appendChild(sw);
    legend.appendChild(document.createTextNode(g));
  }
  plot($('lag-plot'), lines);
}

// ---- the dead-letter queue ----

async function listDlq() {
  const t = state.dlqTopic;
  const tb = $('dlq-table').tBodies[0];
  if (!t) return;
  try {
    const r = await api('GET', '/v1/dlq/' + encodeURIComponent(t));
    tb.replaceChildren();
    for (const g of r.groups) {
      row(tb, [g.fingerprint, g.count, g.reason, (g.sources || []).join(', '),
               (g.groups || []).join(', '), g.first_seen || '—', g.last_seen || '—',
               actions(t, g)]);
    }
    $('dlq-result').textContent = r.matched + ' records in ' + r.groups_total +
      ' groups' + (r.complete ? '' : ' (cut: ' + r.cut + ')');
  } catch (e) { failed('Listing ' + t, e); }
}

function actions(topic, g) {
  const span = el('span');
  span.appendChild(button('Show', () => showDlq(topic, g.first)));
  span.appendChild(button('Replay', () => replayDlq(topic, g)));
  span.appendChild(button('Purge', () => purgeDlq(topic, g)));
  return span;
}

async function showDlq(topic, pos) {
  try {
    const r = await api('GET', '/v1/dlq/' + encodeURIComponent(topic) + '/records/' +
                        pos.partition + '/' + pos.offset);
    const pre = $('dlq-record');
    pre.hidden = false;
    pre.textContent = JSON.stringify(r, null, 2);
  } catch (e) { failed('Showing a record', e); }
}

async function replayDlq(topic, g) {
  if (!state.token) { wantToken('Replaying'); return; }
  try {
    const r = await api('POST', '/v1/dlq/' + encodeURIComponent(topic) + '/replay',
                        {fingerprint: g.fingerprint, max: Math.min(g.count, 100000)});
    notice('Replayed ' + r.moved + ' of ' + g.count + ' (' + g.fingerprint + ')' +
           (r.failed_count ? ', ' + r.failed_count + ' failed' : '') + '.');
    listDlq();
  } catch (e) { failed('Replaying', e); }
}

async function purgeDlq(topic, g) {
  if (!state.token) { wantToken('Purging'); return; }
  if (!window.confirm('Purge ' + g.count + ' records of ' + g.fingerprint + '?')) return;
  try {
    const r = await api('POST', '/v1/dlq/' + encodeURIComponent(topic) + '/purge',
                        {fingerprint: g.fingerprint, max: Math.min(g.count, 100000)});
    notice('Purged ' + r.resolved + ' of ' + g.count + ' (' + g.fingerprint + ').');
    listDlq();
  } catch (e) { failed('Purging', e); }
}

async function dlqTopics() {
  try {
    const r = await api('GET', '/v1/topics');
    const dl = $('dlq-topics');
    dl.replaceChildren();
    for (const t of r.topics) {
      if (t.name.endsWith('.dlq')) dl.appendChild(el('option', t.name));
    }
    if (!state.dlqTopic && dl.options.length) {
      state.dlqTopic = dl.options[0].value;
      $('dlq-topic').value = state.dlqTopic;
      listDlq();
    }
  } catch (e) { failed('Listing topics', e); }
}

// ---- supervision ----

function ago(ms) {
  if (!ms) return '—';
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  return s < 120 ? s + ' s ago' : Math.round(s / 60) + ' min ago';
}

function renderActors(a) {
  const now = Date.now() / 1000;
  const sb = $('sup-table').tBodies[0], pb = $('proc-table').tBodies[0];
  sb.replaceChildren();
  pb.replaceChildren();
  for (const s of a.supervisors) {
    if (!state.restarts.has(s.name)) state.restarts.set(s.name, []);
    const h = state.restarts.get(s.name);
    push(h, now, s.restarts);
    const recent = s.restarts - h[0].v;
    const tr = row(sb, [s.name, s.restarts, recent, ago(s.last_report_ms)]);
    if (recent > 0) tr.className = 'warn';
  }
  for (const p of a.processes) {
    const sups = Object.entries(p.supervisors).map(([k, v]) => k + ' ' + v);
    row(pb, [p.process, p.instance, sups.join(', '), ago(p.last_report_ms)]);
  }
  $('sup-none').hidden = a.supervisors.length > 0;
}

// ---- the loop ----

// A failed read's notice goes at the next good one; an action's stays.
async function poll() {
  try {
    renderStatus(await api('GET', '/v1/status'));
    renderLag(await api('GET', '/v1/lag'));
    renderActors(await api('GET', '/v1/actors'));
    if (state.readFailed) notice('');
    state.readFailed = false;
  } catch (e) {
    state.readFailed = true;
    failed('Reading mailroomd', e);
  }
}

function start() {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    try { state.token = decodeURIComponent(m[1]); } catch (e) { state.token = m[1]; }
    sessionStorage.setItem('mailroom.token', state.token);
    history.replaceState(null, '', location.pathname);
  }
  $('token').value = state.token;
  $('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    state.token = $('token').value.trim();
    sessionStorage.setItem('mailroom.token', state.token);
    $('token-form').classList.remove('want');
    notice('');
    poll();
    dlqTopics();
  });
  $('dlq-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    state.dlqTopic = $('dlq-topic').value.trim();
    listDlq();
  });
  poll();
  dlqTopics();
  setInterval(poll, POLL_MS);
  setInterval(dlqTopics, 10 * POLL_MS);
}

start();
