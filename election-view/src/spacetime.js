'use strict';
// Draws the embedded run (see spacetime.rs for the data layout). Only the visible time window is
// drawn, on every scroll or zoom; items are found by binary search on time.
(function () {
  const D = JSON.parse(document.getElementById('run-data').textContent);
  const S = D.strings;
  const STATES = ['Down', 'Election', 'Reorganization', 'Normal'];
  const STATE_COLOR = ['#b8bec8', '#f0a030', '#9577d6', '#2f9e62'];
  const KIND_COLOR = ['#1f6fb4', '#d6452f', '#1a9c8c', '#8e5bc4', '#c27c0e', '#d43f8d',
    '#4f7a28', '#5b6b82', '#0e8fc2', '#a0522d', '#6d4bd8', '#b8860b'];
  const SIDE_TINT = ['#e8f1fd', '#fdf0e3', '#e9f7ef', '#f4ecfb', '#fdeef3', '#eef6f6'];
  const MARK_COLOR = { partition: '#d92d20', block: '#e0591f', heal: '#2f9e62', network: '#4a6fa5',
    link: '#4a6fa5', drift: '#8e5bc4', calm: '#0e8f86', settled: '#2f9e62', note: '#8a94a6' };
  const GUTTER = 66, PAD = 28, MIN_LANE = 58, MAX_ARROWS = 2500, MAX_POINTS = 4000;
  const MAX_HEIGHT = 15e6;

  const $ = (id) => document.getElementById(id);
  const scroll = $('scroll'), spacer = $('spacer'), svg = $('diagram');
  const head = $('lanes-head'), overview = $('overview'), tip = $('tip');
  const slider = $('slider');
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
  const start = D.start, end = Math.max(D.end, D.start + 1);
  const nodes = D.nodes;
  const kindColor = {};
  D.kinds.forEach((k, i) => { kindColor[k] = KIND_COLOR[i % KIND_COLOR.length]; });
  const colorOf = (k) => kindColor[k] || '#667085';
  const shortNames = shorten(nodes);

  // Arrows by send time; the longest one bounds how far back a window must look.
  const A = D.arrows;
  let maxSpan = 0;
  for (const a of A) maxSpan = Math.max(maxSpan, a[1] - a[0]);
  const sendTimes = A.map((a) => a[0]);
  const timerTimes = D.timers.map((x) => x[0]);
  const statusTimes = D.status.map((list) => list.map((r) => r[0]));
  const firstSeen = nodes.map((_, n) => {
    const s = D.status[n][0], l = D.life.find((x) => x[1] === n);
    return Math.min(s ? s[0] : Infinity, l ? l[0] : Infinity);
  });

  // Connectivity over time: partition sides (replaced by the next partition) and blocked links,
  // both cleared by a heal or the calm.
  const regions = [];
  {
    let open = null;
    const close = (t) => { if (open) { open.to = t; regions.push(open); open = null; } };
    for (const m of D.marks) {
      const [t, kind, , , sides] = m;
      if (kind === 'partition') { close(t); open = { from: t, to: end, sides }; }
      if (kind === 'heal' || kind === 'calm') close(t);
    }
    close(end);
  }

  // Instants at which the cluster changes, for stepping with the arrow keys.
  const changes = [...new Set([].concat(
    ...D.status.map((l) => l.map((r) => r[0])), D.life.map((x) => x[0]), D.marks.map((m) => m[0]),
    D.violation ? [D.violation.time] : []))].sort((a, b) => a - b);

  let visible = nodes.map(() => true);
  let hiddenKinds = new Set();
  let showTimers = true, showLabels = true;
  let k = 1;            // pixels per µs
  let cursor = start;
  let lanes = [];       // visible node indices
  let laneW = MIN_LANE;
  let drawn = [];       // hover targets of the last draw
  let drawnArrows = 0;
  let win = [start, end];
  let hot = -1;
  let focus = -1;       // the node whose messages stand out (click its lane name)
  let labelBoxes = [];  // text already placed in this draw, so that labels do not overprint

  // Claims the box of a label of `text` at (x, y) (baseline, start anchored) if no placed label
  // overlaps it; returns whether it is free.
  function claim(x, y, text, size) {
    const w = text.length * size * 0.56, b = { x0: x, x1: x + w, y0: y - size, y1: y + 2 };
    if (labelBoxes.some((o) => o.x0 < b.x1 && b.x0 < o.x1 && o.y0 < b.y1 && b.y0 < o.y1)) return false;
    labelBoxes.push(b);
    return true;
  }

  function lowerBound(arr, x) {
    let lo = 0, hi = arr.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (arr[mid] < x) lo = mid + 1; else hi = mid; }
    return lo;
  }
  function shorten(names) {
    // Real runs name nodes ip:port; when they share the ip, lanes show :port.
    const hosts = names.map((n) => { const i = n.lastIndexOf(':'); return i > 0 ? n.slice(0, i) : null; });
    if (names.length > 1 && hosts.every((h) => h !== null && h === hosts[0])) {
      return names.map((n) => n.slice(n.lastIndexOf(':')));
    }
    return names.slice();
  }
  function fmt(us) {
    const a = Math.abs(us);
    if (a < 1000) return Math.round(us) + ' µs';
    if (a < 10e6) return (us / 1000).toFixed(3).replace(/\.?0+$/, '') + ' ms';
    return (us / 1e6).toFixed(3).replace(/\.?0+$/, '') + ' s';
  }
  function niceStep(span) {
    const raw = span / 7, p = Math.pow(10, Math.floor(Math.log10(Math.max(raw, 1))));
    for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
    return 10 * p;
  }
  function statusAt(n, t) {
    const i = lowerBound(statusTimes[n], t + 1) - 1;
    return i >= 0 ? D.status[n][i] : null;
  }
  function regionAt(t) {
    return regions.find((r) => r.from <= t && t < r.to) || null;
  }
  function blocksAt(t) {
    const cut = new Set();
    for (const m of D.marks) {
      if (m[0] > t) break;
      if (m[1] === 'heal' || m[1] === 'calm') cut.clear();
      if (m[1] === 'block') for (const [a, b] of m[5]) cut.add(a + '>' + b);
    }
    return cut;
  }
  function sideOf(region, n) {
    return region ? region.sides.findIndex((s) => s.includes(n)) : -1;
  }
  function bandText(n, r) {
    const [, st, coord, group, , term, phase] = r;
    const parts = [];
    if (st === 3 && coord === n) parts.push('★ leader');
    else if ((st === 3 || st === 2) && coord !== null) parts.push('→' + shortNames[coord]);
    else parts.push(st === 0 ? 'down' : S[phase]);
    if (group !== null) parts.push(S[group]);
    if (term !== null) parts.push('t' + term);
    return parts.join(' · ');
  }
  function statusTip(n, r, until) {
    const [t, st, coord, group, inc, term, phase] = r;
    let h = '<b>' + esc(nodes[n]) + '</b> · ' + STATES[st] + ' <span class="k">(phase ' + esc(S[phase]) + ')</span>';
    if (coord !== null) h += '<br>' + (coord === n ? 'leads' : 'follows ' + esc(nodes[coord]));
    if (group !== null) h += ' · group ' + esc(S[group]);
    if (term !== null) h += ' · term ' + term;
    if (inc !== null) h += ' · incarnation ' + inc;
    h += '<br><span class="k">from</span> ' + fmt(t) + ' <span class="k">to</span> ' + fmt(until) + ' (' + fmt(until - t) + ')';
    return h;
  }

  // ---- layout ----------------------------------------------------------------------------
  function layout() {
    lanes = nodes.map((_, i) => i).filter((i) => visible[i]);
    const avail = scroll.clientWidth - GUTTER - 12;
    laneW = Math.max(MIN_LANE, lanes.length ? avail / lanes.length : avail);
    laneXs = [];
    lanes.forEach((n, i) => { laneXs[n] = GUTTER + (i + 0.5) * laneW; });
    const width = GUTTER + laneW * lanes.length + 12;
    svg.setAttribute('width', width);
    spacer.style.width = width + 'px';
    const hasBad = new Set(D.violation ? D.violation.nodes : []);
    head.innerHTML = lanes.map((n, i) => '<div class="lane-name' + (hasBad.has(n) ? ' bad' : '') + (focus === n ? ' focus' : '') +
      '" data-node="' + n + '" title="' + esc(nodes[n]) + ' — click to highlight its messages" style="left:' + (GUTTER + (i + 0.5) * laneW) + 'px;max-width:' + (laneW - 4) +
      'px"><span class="dot" data-node="' + n + '"></span>' + esc(shortNames[n]) + '</div>').join('');
    setScale(k, cursorCentre());
  }
  let laneXs = [];
  function laneX(n) {
    const x = laneXs[n];
    return x === undefined ? null : x;
  }
  function cursorCentre() { return (win[0] + win[1]) / 2; }
  function setScale(newK, centre) {
    const h = scroll.clientHeight || 400;
    k = Math.min(Math.max(newK, h / (end - start) / 1.02, 1e-9), 2);
    if ((end - start) * k > MAX_HEIGHT) k = MAX_HEIGHT / (end - start);
    spacer.style.height = ((end - start) * k + 2 * PAD) + 'px';
    scroll.scrollTop = PAD + (centre - start) * k - h / 2;
    draw();
  }
  function setWindow(t0, t1) {
    if (!(t1 > t0)) return;
    const h = scroll.clientHeight || 400;
    setScale((h - 2) / (t1 - t0), (t0 + t1) / 2);
  }
  const yOf = (t) => (t - start) * k + PAD - scroll.scrollTop;

  // ---- drawing ---------------------------------------------------------------------------
  let drawnAt = [NaN, NaN, NaN];  // scrollTop, scrollLeft and scale of the last drawing
  function draw() {
    const h = scroll.clientHeight, top = scroll.scrollTop;
    drawnAt = [top, scroll.scrollLeft, k];
    svg.style.top = top + 'px';
    svg.setAttribute('height', h);
    head.scrollLeft = scroll.scrollLeft;
    const t0 = start + (top - PAD) / k, t1 = start + (top + h - PAD) / k;
    win = [t0, t1];
    $('from').value = (Math.max(t0, start) / 1000).toFixed(3);
    $('to').value = (Math.min(t1, end) / 1000).toFixed(3);
    const out = [];
    drawn = [];
    labelBoxes = [];
    const x0 = GUTTER, x1 = GUTTER + laneW * lanes.length;

    // Partition regions: lanes tinted by side.
    for (const r of regions) {
      if (r.to < t0 || r.from > t1) continue;
      const ya = Math.max(yOf(r.from), -2), yb = Math.min(yOf(r.to), h + 2);
      for (const n of lanes) {
        const side = sideOf(r, n);
        out.push('<rect x="' + (laneX(n) - laneW / 2) + '" y="' + ya + '" width="' + laneW + '" height="' + (yb - ya) +
          '" fill="' + (side < 0 ? '#eceef2' : SIDE_TINT[side % SIDE_TINT.length]) + '"/>');
      }
    }
    // Time grid.
    const step = niceStep(t1 - t0);
    for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
      if (t < start || t > end) continue;
      const y = yOf(t);
      out.push('<line class="grid" x1="' + x0 + '" x2="' + x1 + '" y1="' + y + '" y2="' + y + '"/>');
      out.push('<text class="axis" x="' + (GUTTER - 6) + '" y="' + (y + 3) + '" text-anchor="end">' + fmt(t - start) + '</text>');
    }
    // Lanes and status bands.
    const yEnd = yOf(end), yStart = yOf(start);
    for (const n of lanes) {
      const x = laneX(n), born = firstSeen[n];
      const yb = Math.max(yOf(Math.min(born, end)), -2);
      if (born > start) out.push('<line class="lane unborn" x1="' + x + '" x2="' + x + '" y1="' + Math.max(yStart, -2) + '" y2="' + Math.min(yb, h) + '"/>');
      out.push('<line class="lane" x1="' + x + '" x2="' + x + '" y1="' + yb + '" y2="' + Math.min(yEnd, h + 2) + '"/>');
      const list = D.status[n];
      let i = Math.max(0, lowerBound(statusTimes[n], t0 + 1) - 1);
      for (; i < list.length && list[i][0] <= t1; i++) {
        const r = list[i], until = i + 1 < list.length ? list[i + 1][0] : end;
        if (until < t0) continue;
        const ya = Math.max(yOf(r[0]), -2), yb2 = Math.min(yOf(until), h + 2);
        out.push('<rect x="' + (x - 4) + '" y="' + ya + '" width="8" height="' + Math.max(yb2 - ya, 0.5) + '" fill="' + STATE_COLOR[r[1]] + '"' +
          (r[1] === 3 && r[2] === n ? ' stroke="#1b5e3a" stroke-width="1.5"' : '') + '/>');
        drawn.push({ type: 'band', x: x - 5, w: 10, ya, yb: yb2, tip: statusTip(n, r, until) });
        if (showLabels && r[1] !== 0 && yb2 - Math.max(ya, 0) > 13) {
          const ly = Math.max(ya, 0) + 11;
          let text = bandText(n, r);
          const fits = Math.floor((laneW - 12) / 5.6);
          if (text.length > fits) text = text.slice(0, Math.max(fits - 1, 1)) + '…';
          claim(x + 7, ly, text, 10);
          out.push('<text class="band-label" x="' + (x + 7) + '" y="' + ly + '">' + esc(text) + '</text>');
        }
      }
    }
    // Marks: a dashed line across the lanes they concern, labelled on the left.
    for (const m of D.marks) {
      const [t, kind, label, mnodes] = m;
      if (t < t0 || t > t1) continue;
      const y = yOf(t), c = MARK_COLOR[kind] || '#667085';
      const xs = (mnodes.length ? mnodes : lanes).map(laneX).filter((v) => v !== null);
      if (!xs.length) continue;
      const xa = mnodes.length ? Math.min(...xs) - 10 : x0, xb = mnodes.length ? Math.max(...xs) + 10 : x1;
      if (kind === 'note') {
        out.push('<rect x="' + (xa + 4) + '" y="' + (y - 1.5) + '" width="' + (xb - xa - 8) + '" height="3" fill="' + c + '"/>');
      } else {
        out.push('<line class="mark" stroke="' + c + '" x1="' + xa + '" x2="' + xb + '" y1="' + y + '" y2="' + y + '"/>');
        if (showLabels) {
          // Marks of one instant (a heal and the calm) go side by side.
          let lx = xa + 4;
          while (!claim(lx, y - 4, label, 10) && lx < x1) lx += 40;
          out.push('<text class="mark-label" fill="' + c + '" x="' + lx + '" y="' + (y - 4) + '">' + esc(label) + '</text>');
        }
      }
      drawn.push({ type: 'hline', xa, xb, y, tip: '<b>' + esc(label) + '</b><br>at ' + fmt(t) });
    }
    // Messages.
    const lo = lowerBound(sendTimes, t0 - maxSpan);
    const hi = lowerBound(sendTimes, Math.floor(t1) + 1);
    const show = [];
    for (let i = lo; i < hi; i++) {
      const a = A[i];
      if (a[1] < t0 || hiddenKinds.has(a[4]) || !visible[a[2]] || !visible[a[3]]) continue;
      show.push(i);
    }
    const note = $('density-note');
    drawnArrows = 0;
    if (show.length > MAX_ARROWS) {
      note.hidden = false;
      note.textContent = show.length.toLocaleString('en') + ' messages in view: showing their density — zoom in (+) to see arrows';
      drawDensity(out, show, h);
    } else {
      note.hidden = true;
      const labels = showLabels && show.length <= 80;
      for (const i of show) drawArrow(out, i, labels);
    }
    // Timers.
    if (showTimers) {
      const ta = lowerBound(timerTimes, t0), tb = lowerBound(timerTimes, Math.floor(t1) + 1);
      if (tb - ta <= MAX_POINTS) {
        for (let i = ta; i < tb; i++) {
          const [t, n, kind, content] = D.timers[i];
          const x = laneX(n);
          if (x === null) continue;
          const y = yOf(t);
          out.push('<path class="timer" d="M' + (x - 12) + ' ' + y + 'h6"/><circle class="timer" cx="' + (x - 9) + '" cy="' + y + '" r="2.6"/>');
          drawn.push({ type: 'point', x: x - 9, y, tip: '<b>' + esc(nodes[n]) + '</b> timer <b>' + esc(S[kind]) + '</b> fires at ' + fmt(t) +
            (content !== null ? '<code>' + esc(S[content]) + '</code>' : '') });
        }
      }
    }
    // Lifecycle glyphs.
    for (const [t, n, what] of D.life) {
      if (t < t0 || t > t1) continue;
      const x = laneX(n);
      if (x === null) continue;
      const y = yOf(t);
      out.push(glyph(what, x, y));
      drawn.push({ type: 'point', x, y, tip: '<b>' + esc(nodes[n]) + '</b> ' + ({ start: 'boots', crash: 'crashes', recover: 'is recovered', join: 'joins', leave: 'leaves' }[what]) + ' at ' + fmt(t) });
    }
    // Messages never delivered: a short stub at the sender.
    for (const [t, from, to, kind, id, content] of D.unsent) {
      if (t < t0 || t > t1 || !visible[from] || hiddenKinds.has(kind)) continue;
      const x = laneX(from), y = yOf(t), xt = laneX(to);
      const dx = xt === null ? 12 : Math.sign(xt - x) * 14;
      out.push('<path class="pending" stroke="' + colorOf(kind) + '" stroke-dasharray="2 2" fill="none" d="M' + x + ' ' + y + 'l' + dx + ' 8"/>');
      drawn.push({ type: 'point', x: x + dx / 2, y: y + 4, tip: '<b>#' + id + ' ' + esc(S[kind]) + '</b> ' + esc(nodes[from]) + ' → ' + esc(nodes[to]) +
        '<br>sent ' + fmt(t) + ', still in flight when the run ended' + (content !== null ? '<code>' + esc(S[content]) + '</code>' : '') });
    }
    // The violation.
    const v = D.violation;
    if (v && v.time >= t0 - 1 && v.time <= t1 + 1) {
      const y = yOf(v.time);
      out.push('<rect class="violation-glow" x="' + x0 + '" y="' + (y - 9) + '" width="' + (x1 - x0) + '" height="18"/>');
      out.push('<rect class="violation-bar" id="violation-bar" x="' + x0 + '" y="' + (y - 1.5) + '" width="' + (x1 - x0) + '" height="3"/>');
      for (const n of v.nodes) {
        const x = laneX(n);
        if (x !== null) out.push('<circle cx="' + x + '" cy="' + y + '" r="8" fill="none" stroke="#d92d20" stroke-width="2.5"/>');
      }
      out.push('<text class="violation-label" x="' + (x0 + 4) + '" y="' + (y + 20) + '">✖ ' + esc(v.invariant) + ' violated: ' +
        esc(v.nodes.map((n) => nodes[n]).join(', ')) + '</text>');
      drawn.push({ type: 'hline', xa: x0, xb: x1, y, tip: violationTip() });
    }
    // The slider's instant.
    if (cursor >= t0 && cursor <= t1) {
      const y = yOf(cursor);
      out.push('<line class="cursor" x1="' + 4 + '" x2="' + x1 + '" y1="' + y + '" y2="' + y + '"/>');
      out.push('<text class="cursor-label" x="4" y="' + (y - 3) + '">' + fmt(cursor - start) + '</text>');
    }
    svg.innerHTML = out.join('');
    hot = -1;
    drawOverviewWindow();
  }

  function drawArrow(out, i, label) {
    const [ts, te, from, to, kind, id, reason, flags] = A[i];
    const xa = laneX(from), xt = laneX(to);
    let ya = yOf(ts), xb = xt, yb = yOf(te);
    if (flags & 2) ya = Math.max(ya, -4);
    const dropped = reason !== null;
    // A message dropped at its send has no flight time: a stub a third of the way.
    if (dropped && yb - ya < 6) { xb = xa + (xt - xa) * 0.33; yb = ya + 9; }
    const c = colorOf(kind);
    const dx = xb - xa, dy = yb - ya, len = Math.hypot(dx, dy) || 1, ux = dx / len, uy = dy / len;
    let d = 'M' + xa.toFixed(1) + ' ' + ya.toFixed(1) + 'L' + xb.toFixed(1) + ' ' + yb.toFixed(1);
    if (!dropped) {
      const hx = xb - ux * 7, hy = yb - uy * 7;
      d += 'M' + (hx - uy * 3.5).toFixed(1) + ' ' + (hy + ux * 3.5).toFixed(1) + 'L' + xb.toFixed(1) + ' ' + yb.toFixed(1) +
        'L' + (hx + uy * 3.5).toFixed(1) + ' ' + (hy - ux * 3.5).toFixed(1);
    }
    const cls = 'msg' + (flags & 1 ? ' dup' : '') + (flags & 2 ? ' orphan' : '') +
      (focus >= 0 && from !== focus && to !== focus ? ' dim' : '');
    out.push('<path class="' + cls + '" data-i="' + i + '" data-id="' + id + '" data-kind="' + esc(S[kind]) + '" data-from="' + from +
      '" data-to="' + to + '" stroke="' + c + '" d="' + d + '"/>');
    if (dropped) {
      out.push('<path class="x" d="M' + (xb - 4) + ' ' + (yb - 4) + 'l8 8M' + (xb + 4) + ' ' + (yb - 4) + 'l-8 8"/>');
    }
    const lx = (xa + xb) / 2 + 3, ly = (ya + yb) / 2 - 3;
    if (label && claim(lx, ly, S[kind], 9)) {
      out.push('<text class="msg-label" fill="' + c + '" x="' + lx + '" y="' + ly + '">' + esc(S[kind]) + '</text>');
    }
    drawn.push({ type: 'arrow', i, xa, ya, xb, yb });
    drawnArrows++;
  }

  function drawDensity(out, show, h) {
    // Per lane, how many messages leave it in each 4-pixel slice of the window.
    const bucket = 4, rows = Math.ceil(h / bucket) + 1;
    const counts = new Map();
    let max = 1;
    for (const i of show) {
      const a = A[i], y = yOf(a[0]);
      if (y < 0 || y > h) continue;
      const key = a[2] * rows + Math.floor(y / bucket);
      const c = (counts.get(key) || 0) + 1;
      counts.set(key, c);
      if (c > max) max = c;
    }
    for (const [key, c] of counts) {
      const n = Math.floor(key / rows), row = key % rows, x = laneX(n);
      const w = 4 + (laneW * 0.7 - 4) * (c / max);
      out.push('<rect class="density" x="' + (x - w / 2) + '" y="' + (row * bucket) + '" width="' + w + '" height="' + (bucket - 0.5) +
        '" opacity="' + (0.25 + 0.6 * c / max).toFixed(2) + '"/>');
    }
  }

  function glyph(what, x, y) {
    switch (what) {
      case 'crash':
        return '<path d="M' + (x - 7) + ' ' + (y - 7) + 'l14 14M' + (x + 7) + ' ' + (y - 7) + 'l-14 14" stroke="#d92d20" stroke-width="3.2" stroke-linecap="round"/>' +
          '<text class="glyph-label" fill="#d92d20" x="' + (x + 10) + '" y="' + (y + 4) + '">crash</text>';
      case 'recover':
        return '<circle cx="' + x + '" cy="' + y + '" r="6" fill="#fff" stroke="#2f9e62" stroke-width="2.5"/>' +
          '<text class="glyph-label" fill="#2f9e62" x="' + (x + 10) + '" y="' + (y + 4) + '">recover</text>';
      case 'join':
        return '<path d="M' + (x - 7) + ' ' + y + 'h14M' + x + ' ' + (y - 7) + 'v14" stroke="#2563eb" stroke-width="3" stroke-linecap="round"/>' +
          '<text class="glyph-label" fill="#2563eb" x="' + (x + 10) + '" y="' + (y + 4) + '">join</text>';
      case 'leave':
        return '<rect x="' + (x - 6) + '" y="' + (y - 6) + '" width="12" height="12" fill="#fff" stroke="#667085" stroke-width="2.5"/>' +
          '<text class="glyph-label" fill="#667085" x="' + (x + 10) + '" y="' + (y + 4) + '">leave</text>';
      default:
        return '<circle cx="' + x + '" cy="' + y + '" r="4" fill="#2f9e62" stroke="#fff" stroke-width="1.5"/>';
    }
  }

  function violationTip() {
    const v = D.violation;
    return '<b>' + esc(v.invariant) + ' violated</b> at ' + fmt(v.time) + ' by ' + esc(v.nodes.map((n) => nodes[n]).join(', ')) +
      '<code>' + esc(v.detail) + '</code>';
  }

  function arrowTip(i) {
    const [ts, te, from, to, kind, id, reason, flags, content] = A[i];
    let h = '<b>#' + id + ' ' + esc(S[kind]) + '</b> ' + esc(nodes[from]) + ' → ' + esc(nodes[to]) + '<br>';
    h += (flags & 2) ? 'sent before the recorded events' : 'sent ' + fmt(ts);
    if (reason === null) h += ', delivered ' + fmt(te) + ' (after ' + fmt(te - ts) + ')';
    else h += ', <b>dropped</b> (' + esc(S[reason]) + ') at ' + fmt(te);
    if (flags & 1) {
      const copies = A.filter((a) => a[5] === id).length;
      h += '<br>duplicated by the network: ' + copies + ' copies';
    }
    if (content !== null) h += '<code>' + esc(S[content]) + '</code>';
    return h;
  }

  // ---- hover -----------------------------------------------------------------------------
  function segDist(px, py, d) {
    const dx = d.xb - d.xa, dy = d.yb - d.ya, l2 = dx * dx + dy * dy;
    const u = l2 ? Math.max(0, Math.min(1, ((px - d.xa) * dx + (py - d.ya) * dy) / l2)) : 0;
    return Math.hypot(px - d.xa - u * dx, py - d.ya - u * dy);
  }
  function targetAt(px, py) {
    // Points and arrows within 6 px win (the last drawn on a tie, as it is painted on top);
    // then marks and the violation within 5 px; then the band under the pointer.
    let best = null, bestD = 6.01;
    for (const d of drawn) {
      let dist = Infinity;
      if (d.type === 'arrow') dist = segDist(px, py, d);
      else if (d.type === 'point') dist = Math.hypot(px - d.x, py - d.y);
      if (dist <= bestD) { best = d; bestD = dist; }
    }
    if (best) return best;
    for (const d of drawn) if (d.type === 'hline' && px >= d.xa && px <= d.xb && Math.abs(py - d.y) <= 5) return d;
    for (const d of drawn) if (d.type === 'band' && px >= d.x && px <= d.x + d.w && py >= d.ya && py <= d.yb) return d;
    return null;
  }
  function setHot(i) {
    if (hot === i) return;
    const old = hot >= 0 && svg.querySelector('.msg[data-i="' + hot + '"]');
    if (old) old.classList.remove('hot');
    hot = i;
    const el = i >= 0 && svg.querySelector('.msg[data-i="' + i + '"]');
    if (el) el.classList.add('hot');
  }
  svg.addEventListener('mousemove', (e) => {
    const r = svg.getBoundingClientRect();
    const d = targetAt(e.clientX - r.left, e.clientY - r.top);
    if (!d) { tip.hidden = true; setHot(-1); return; }
    setHot(d.type === 'arrow' ? d.i : -1);
    tip.innerHTML = d.type === 'arrow' ? arrowTip(d.i) : d.tip;
    tip.dataset.id = d.type === 'arrow' ? A[d.i][5] : '';
    tip.hidden = false;
    const w = tip.offsetWidth, th = tip.offsetHeight;
    tip.style.left = Math.min(e.clientX + 14, window.innerWidth - w - 8) + 'px';
    tip.style.top = (e.clientY + 16 + th > window.innerHeight ? e.clientY - th - 10 : e.clientY + 16) + 'px';
  });
  svg.addEventListener('mouseleave', () => { tip.hidden = true; setHot(-1); });
  svg.addEventListener('click', (e) => {
    const r = svg.getBoundingClientRect();
    setTime(start + (e.clientY - r.top + scroll.scrollTop - PAD) / k, false);
  });

  // ---- overview --------------------------------------------------------------------------
  let overviewH = 0;
  function drawOverview() {
    overviewH = overview.clientHeight || 400;
    const w = 46, rows = Math.max(1, Math.floor(overviewH / 2)), counts = new Array(rows).fill(0);
    const row = (t) => Math.min(rows - 1, Math.floor((t - start) / (end - start) * rows));
    for (const a of A) counts[row(a[0])]++;
    for (const t of timerTimes) counts[row(t)] += 0.3;
    const max = Math.max(1, ...counts);
    const out = ['<title>Whole run: message density; click to go there</title>'];
    for (const r of regions) {
      out.push('<rect x="0" width="' + w + '" y="' + (row(r.from) * 2) + '" height="' + Math.max(2, (row(r.to) - row(r.from)) * 2) + '" fill="#fde4e1"/>');
    }
    counts.forEach((c, i) => {
      if (c > 0) out.push('<rect x="2" y="' + (i * 2) + '" height="2" width="' + (2 + (w - 8) * c / max).toFixed(1) + '" fill="#667085"/>');
    });
    for (const [t, , what] of D.life) {
      if (what === 'crash' || what === 'leave') out.push('<rect x="' + (w - 9) + '" y="' + (row(t) * 2 - 1) + '" width="9" height="3" fill="#d92d20"/>');
    }
    if (D.violation) out.push('<rect x="0" y="' + (row(D.violation.time) * 2 - 2) + '" width="' + w + '" height="4" fill="#d92d20"/>');
    out.push('<rect id="overview-window" x="0.5" width="' + (w - 1) + '" fill="rgba(37,99,235,.12)" stroke="#2563eb"/>');
    out.push('<line id="overview-cursor" x1="0" x2="' + w + '" stroke="#2563eb" stroke-width="1.5"/>');
    overview.innerHTML = out.join('');
    drawOverviewWindow();
  }
  function drawOverviewWindow() {
    const r = document.getElementById('overview-window');
    if (!r) return;
    const y = (t) => (Math.min(Math.max(t, start), end) - start) / (end - start) * overviewH;
    r.setAttribute('y', y(win[0]));
    r.setAttribute('height', Math.max(2, y(win[1]) - y(win[0])));
    const c = document.getElementById('overview-cursor');
    c.setAttribute('y1', y(cursor));
    c.setAttribute('y2', y(cursor));
  }
  let dragging = false;
  const overviewJump = (e) => {
    const r = overview.getBoundingClientRect();
    const t = start + (e.clientY - r.top) / r.height * (end - start);
    scroll.scrollTop = PAD + (t - start) * k - scroll.clientHeight / 2;
  };
  overview.addEventListener('mousedown', (e) => { dragging = true; overviewJump(e); e.preventDefault(); });
  window.addEventListener('mousemove', (e) => { if (dragging) overviewJump(e); });
  window.addEventListener('mouseup', () => { dragging = false; });

  // ---- the cluster at one instant ---------------------------------------------------------
  function setTime(t, follow) {
    cursor = Math.min(Math.max(Math.round(t), start), end);
    slider.value = cursor;
    $('slider-time').textContent = 't = ' + fmt(cursor - start);
    $('at').textContent = fmt(cursor - start);
    if (follow && (cursor < win[0] || cursor > win[1])) {
      scroll.scrollTop = PAD + (cursor - start) * k - scroll.clientHeight / 3;
    }
    draw();
    drawCluster();
  }

  function drawCluster() {
    const t = cursor, n = nodes.length;
    const st = nodes.map((_, i) => statusAt(i, t));
    const region = regionAt(t), cut = blocksAt(t);
    const W = 280, H = 250, cx = W / 2, cy = H / 2 + 4, R = n > 1 ? 92 : 0;
    const r = Math.max(7, Math.min(17, n > 1 ? R * Math.sin(Math.PI / n) * 0.62 : 17));
    const pos = nodes.map((_, i) => [cx + R * Math.sin(2 * Math.PI * i / n), cy - R * Math.cos(2 * Math.PI * i / n)]);
    const out = ['<defs><marker id="head" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse">' +
      '<path d="M0 0L10 5L0 10z" fill="#475467"/></marker></defs>'];
    // Cut links, one line per pair of nodes (dotted when only one direction is cut).
    for (const key of cut) {
      const [a, b] = key.split('>').map(Number);
      const both = cut.has(b + '>' + a);
      if (!pos[a] || !pos[b] || (both && a > b)) continue;
      out.push('<line class="cut" x1="' + pos[a][0] + '" y1="' + pos[a][1] + '" x2="' + pos[b][0] + '" y2="' + pos[b][1] + '" stroke="#d92d20" stroke-dasharray="' + (both ? '4 3' : '1 3') + '" stroke-width="1.5"/>');
    }
    // Who follows whom.
    for (let i = 0; i < n; i++) {
      const s = st[i];
      if (!s || s[2] === null || s[2] === i || s[1] === 0 || !pos[s[2]]) continue;
      const [x1, y1] = pos[i], [x2, y2] = pos[s[2]];
      const d = Math.hypot(x2 - x1, y2 - y1) || 1;
      out.push('<line x1="' + (x1 + (x2 - x1) * r / d) + '" y1="' + (y1 + (y2 - y1) * r / d) + '" x2="' + (x2 - (x2 - x1) * (r + 2) / d) + '" y2="' + (y2 - (y2 - y1) * (r + 2) / d) +
        '" stroke="' + STATE_COLOR[s[1]] + '" stroke-width="2" marker-end="url(#head)"/>');
    }
    // Messages in flight, RaftScope-style, as dots between sender and receiver.
    const lo = lowerBound(sendTimes, t - maxSpan), hi = lowerBound(sendTimes, t + 1);
    let flying = 0;
    for (let i = lo; i < hi; i++) {
      const a = A[i];
      if (a[1] <= t || a[0] > t || a[6] !== null && a[1] - a[0] < 1) continue;
      const f = (t - a[0]) / (a[1] - a[0]), p = pos[a[2]], q = pos[a[3]];
      if (!p || !q) continue;
      flying++;
      if (flying <= 400) out.push('<circle cx="' + (p[0] + (q[0] - p[0]) * f) + '" cy="' + (p[1] + (q[1] - p[1]) * f) + '" r="3" fill="' + colorOf(a[4]) + '"/>');
    }
    // Nodes.
    for (let i = 0; i < n; i++) {
      const s = st[i], [x, y] = pos[i];
      const side = sideOf(region, i);
      const fill = s ? STATE_COLOR[s[1]] : '#fff';
      const leader = s && s[1] === 3 && s[2] === i;
      if (region) out.push('<circle cx="' + x + '" cy="' + y + '" r="' + (r + 6) + '" fill="' + (side < 0 ? '#e4e7ec' : SIDE_TINT[side % SIDE_TINT.length]) + '" stroke="' + (side < 0 ? '#98a2b3' : '#c9d3e1') + '"/>');
      const ring = leader ? '#1b5e3a' : s ? '#fff' : '#98a2b3';
      out.push('<circle class="gnode" data-node="' + i + '" data-state="' + (s ? STATES[s[1]] : 'none') + '" cx="' + x + '" cy="' + y + '" r="' + r + '" fill="' + fill + '" stroke="' + ring +
        '" stroke-width="' + (leader ? 3 : 1.5) + '"' + (s ? '' : ' stroke-dasharray="3 2"') + '/>');
      out.push('<text x="' + x + '" y="' + (y + 3.5) + '" text-anchor="middle" font-size="' + (r > 12 ? 10 : 8) + '" font-weight="700" fill="' + (s && s[1] !== 0 ? '#fff' : '#475467') + '">' + esc(shortNames[i].slice(-4)) + '</text>');
      if (leader) out.push('<text x="' + x + '" y="' + (y - r - 3) + '" text-anchor="middle" font-size="12" fill="#b7791f">★</text>');
    }
    $('graph').innerHTML = out.join('');
    // The agreement line and the table.
    const live = st.map((s, i) => [s, i]).filter(([s]) => s && s[1] !== 0);
    const leaders = live.filter(([s, i]) => s[1] === 3 && s[2] === i).map(([, i]) => i);
    const first = live[0] && live[0][0];
    const agreed = first && first[2] !== null && live.every(([s]) => s[1] === 3 && s[2] === first[2] && s[3] === first[3]) &&
      st[first[2]] && st[first[2]][1] === 3 && st[first[2]][2] === first[2];
    const ag = $('agreement');
    ag.className = agreed ? '' : 'no';
    ag.textContent = agreed ? 'Agreed leader: ' + nodes[first[2]] + ' (all ' + live.length + ' live nodes follow it)'
      : 'No agreed leader' + (leaders.length ? ' — leading: ' + leaders.map((i) => nodes[i]).join(', ') : '') +
        (live.length ? '' : ' — no live node');
    ag.dataset.leader = agreed ? first[2] : '';
    const rows = st.map((s, i) => {
      if (!visible[i] && nodes.length > 16) return '';
      const name = esc(shortNames[i]);
      if (!s) return '<tr data-node="' + i + '"><td>' + name + '</td><td class="state">—</td><td></td><td></td><td></td></tr>';
      const lead = s[1] === 3 && s[2] === i;
      return '<tr data-node="' + i + '"' + (lead ? ' class="leader"' : '') + '><td>' + name + '</td><td class="state"><span class="dot" style="background:' + STATE_COLOR[s[1]] + '"></span>' + STATES[s[1]] +
        '</td><td>' + (s[2] === null ? '' : lead ? '★ itself' : esc(shortNames[s[2]])) + '</td><td>' + (s[3] === null ? '' : esc(S[s[3]])) +
        (s[5] === null ? '' : ' t' + s[5]) + '</td><td>' + (S[s[6]] === STATES[s[1]] ? '' : esc(S[s[6]])) + '</td></tr>';
    });
    document.querySelector('#states tbody').innerHTML = rows.join('');
    for (const el of head.querySelectorAll('.dot')) {
      const s = st[Number(el.dataset.node)];
      el.style.background = s ? STATE_COLOR[s[1]] : '#fff';
      el.style.border = s ? 'none' : '1px dashed #98a2b3';
    }
    drawOverviewWindow();
  }

  // ---- controls --------------------------------------------------------------------------
  function buildControls() {
    const details = D.details.map(([k2, v]) => '<span class="chip">' + esc(k2) + ' <b>' + esc(v) + '</b></span>');
    details.push('<span class="chip">duration <b>' + esc(fmt(end - start)) + '</b></span>');
    details.push('<span class="chip">messages <b>' + A.length.toLocaleString('en') + '</b></span>');
    if (D.omitted) details.push('<span class="chip">omitted <b>' + D.omitted.toLocaleString('en') + ' events</b> (bounded)</span>');
    $('details').innerHTML = details.join('');
    if (D.violation) {
      const box = $('violation');
      box.hidden = false;
      box.innerHTML = '<b>✖ ' + esc(D.violation.invariant) + ' violated</b> at ' + fmt(D.violation.time - start) + ' by ' +
        esc(D.violation.nodes.map((n) => nodes[n]).join(', ')) + ': ' + esc(D.violation.detail) + ' <button id="goto-violation">Show</button>';
      $('goto-violation').addEventListener('click', showViolation);
    }
    const nf = $('node-filter');
    nf.insertAdjacentHTML('beforeend', nodes.map((name, i) => '<label title="' + esc(name) + '"><input type="checkbox" data-node="' + i + '" checked>' + esc(shortNames[i]) + '</label>').join(''));
    nf.addEventListener('change', (e) => {
      const i = Number(e.target.dataset.node);
      visible[i] = e.target.checked;
      layout();
      drawCluster();
    });
    head.addEventListener('click', (e) => {
      const el = e.target.closest('.lane-name');
      if (!el) return;
      const n = Number(el.dataset.node);
      focus = focus === n ? -1 : n;
      layout();
      drawCluster();
    });
    const kf = $('kind-filter');
    kf.insertAdjacentHTML('beforeend', D.kinds.map((kd) => '<label><input type="checkbox" data-kind="' + kd + '" checked><span class="swatch" style="background:' + colorOf(kd) + '"></span>' + esc(S[kd]) + '</label>').join(''));
    kf.addEventListener('change', (e) => {
      const kd = Number(e.target.dataset.kind);
      if (e.target.checked) hiddenKinds.delete(kd); else hiddenKinds.add(kd);
      draw();
    });
    $('show-timers').addEventListener('change', (e) => { showTimers = e.target.checked; draw(); });
    $('show-labels').addEventListener('change', (e) => { showLabels = e.target.checked; draw(); });
    $('zoom-in').addEventListener('click', () => setScale(k * 2, cursorCentre()));
    $('zoom-out').addEventListener('click', () => setScale(k / 2, cursorCentre()));
    $('fit').addEventListener('click', () => setWindow(start, end));
    $('show').addEventListener('click', () => setWindow(Number($('from').value) * 1000, Number($('to').value) * 1000));
    slider.min = start;
    slider.max = end;
    slider.step = 1;
    slider.addEventListener('input', () => setTime(Number(slider.value), true));
    // Arrow keys step from one change of the cluster (status, fault, mark) to the next.
    slider.addEventListener('keydown', (e) => {
      if (e.key !== 'ArrowRight' && e.key !== 'ArrowLeft') return;
      e.preventDefault();
      const i = lowerBound(changes, cursor + (e.key === 'ArrowRight' ? 1 : 0));
      const t = e.key === 'ArrowRight' ? changes[i] : changes[i - 1];
      if (t !== undefined) setTime(t, true);
    });
    // A scroll redraws once per frame, unless a zoom already drew this very view.
    scroll.addEventListener('scroll', () => requestAnimationFrame(() => {
      if (scroll.scrollTop !== drawnAt[0] || scroll.scrollLeft !== drawnAt[1] || k !== drawnAt[2]) draw();
    }));
    scroll.addEventListener('wheel', (e) => {
      if (!e.ctrlKey) return;
      e.preventDefault();
      const r = svg.getBoundingClientRect();
      const t = start + (e.clientY - r.top + scroll.scrollTop - PAD) / k;
      const f = e.deltaY < 0 ? 1.25 : 0.8;
      const newK = k * f, h = scroll.clientHeight;
      setScale(newK, t + ((h / 2) - (e.clientY - r.top)) / newK);
    }, { passive: false });
    window.addEventListener('keydown', (e) => {
      if (e.target.tagName === 'INPUT' && e.target.type !== 'range' && e.target.type !== 'checkbox') return;
      if (e.key === '+' || e.key === '=') setScale(k * 2, cursorCentre());
      if (e.key === '-') setScale(k / 2, cursorCentre());
    });
    window.addEventListener('resize', () => { layout(); drawOverview(); });
    const sw = (c) => '<span class="swatch" style="background:' + c + '"></span>';
    $('legend').innerHTML = STATES.map((s, i) => '<span>' + sw(STATE_COLOR[i]) + s + '</span>').join('') +
      '<span><svg width="22" height="10"><path d="M1 5H15M11 2L15 5L11 8" stroke="#1f6fb4" fill="none"/></svg>delivered</span>' +
      '<span><svg width="22" height="10"><path d="M1 5H13" stroke="#1f6fb4"/><path d="M12 1l6 8M18 1l-6 8" stroke="#d92d20" stroke-width="2"/></svg>dropped</span>' +
      '<span><svg width="22" height="10"><path d="M1 5H19" stroke="#1f6fb4" stroke-dasharray="5 3"/></svg>duplicated</span>' +
      '<span><svg width="22" height="10"><path d="M4 5h6" stroke="#8a94a6"/><circle cx="7" cy="5" r="2.6" fill="#fff" stroke="#8a94a6"/></svg>timer</span>' +
      '<span><svg width="22" height="10"><rect x="2" y="0" width="18" height="10" fill="#e8f1fd"/><rect x="12" y="0" width="8" height="10" fill="#fdf0e3"/></svg>partition sides</span>' +
      '<span>★ leader · →n follows n</span>';
  }

  function initialWindow() {
    // Open at the violation (a little above the middle, as the run stops there) or at the start,
    // zoomed in until about 120 messages fill the view and a message of median latency drops
    // 18 pixels, but no further than three median latencies per view.
    const h = scroll.clientHeight || 400;
    const from = D.violation ? D.violation.time : start;
    const i = Math.max(0, lowerBound(sendTimes, from) - (D.violation ? 60 : 0));
    const j = Math.min(A.length - 1, i + 120);
    let span = A.length ? Math.max(A[j][0] - A[i][0], 2000) : end - start;
    span = Math.min(span * 1.15, end - start);
    const lat = [];
    for (const a of A) if (a[6] === null && !(a[7] & 2)) lat.push(a[1] - a[0]);
    lat.sort((x, y) => x - y);
    const median = lat.length ? Math.max(lat[lat.length >> 1], 20) : 0;
    k = Math.max(h / span, median ? 18 / median : 0);
    if (median) k = Math.min(k, h / (3 * median));
    const centre = D.violation ? D.violation.time - 0.2 * h / k : start + h / k / 2;
    setScale(k, centre);
  }
  function showViolation() {
    if (!D.violation) return;
    setScale(k, D.violation.time);
    setTime(D.violation.time, true);
  }

  buildControls();
  layout();
  drawOverview();
  initialWindow();
  setTime(D.violation ? D.violation.time : start, false);

  window.spacetime = {
    ready: true,
    readyMs: performance.now(),
    window: () => win.slice(),
    setWindow,
    setTime: (t) => setTime(t, true),
    arrowsDrawn: () => drawnArrows,
  };
})();
