// The demo page: controls, drawing, PNG saving. The engine runs in worker.js; this file only talks to it.
// window.demo.last holds the last finished sample (engine.info and the SHA-256 of x_0's float32 bytes),
// which test/runtimes-browser.test.ts compares with Node's bits for the same seed and build.
const $ = (id) => document.getElementById(id);
const SCALE = 3;
const GAP = 2;
window.demo = { last: null, trained: null };

$('isolation').textContent = self.crossOriginIsolated
  ? 'This page is cross-origin isolated (COOP/COEP): the engine’s Worker can run several threads.'
  : 'This page is not cross-origin isolated (no COOP/COEP headers), so the engine runs one thread; `npm run demo` serves it isolated.';

// Digits grid: N×1×28×28 floats in [-1, 1] → a canvas of ⌈√N⌉ columns.
function drawDigits(x, n) {
  const cols = Math.ceil(Math.sqrt(n));
  const rows = Math.ceil(n / cols);
  const cell = 28 * SCALE + GAP;
  const c = $('digits');
  if (c.width !== cols * cell + GAP || c.height !== rows * cell + GAP) {
    c.width = cols * cell + GAP;
    c.height = rows * cell + GAP;
  }
  const ctx = c.getContext('2d');
  ctx.fillStyle = '#111';
  ctx.fillRect(0, 0, c.width, c.height);
  const img = new ImageData(28, 28);
  const tile = new OffscreenCanvas(28, 28);
  const tctx = tile.getContext('2d');
  ctx.imageSmoothingEnabled = false;
  for (let k = 0; k < n; k++) {
    for (let i = 0; i < 784; i++) {
      const v = Math.round(((Math.max(-1, Math.min(1, x[k * 784 + i])) + 1) / 2) * 255);
      img.data.set([v, v, v, 255], 4 * i);
    }
    tctx.putImageData(img, 0, 0);
    ctx.drawImage(tile, GAP + (k % cols) * cell, GAP + Math.floor(k / cols) * cell, 28 * SCALE, 28 * SCALE);
  }
}

async function sha256(f32) {
  const d = await crypto.subtle.digest('SHA-256', f32);
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, '0')).join('');
}

// One worker for sampling and one for training, so both can run at once; Stop terminates one.
const workers = {};
function startWorker(kind, onMessage) {
  workers[kind]?.terminate();
  const w = (workers[kind] = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' }));
  w.onmessage = (e) => onMessage(e.data);
  w.onerror = (e) => onMessage({ type: 'error', message: e.message || 'the worker failed to start' });
  return w;
}
function stopWorker(kind) {
  workers[kind]?.terminate();
  delete workers[kind];
}

function setStatus(id, text, error = false) {
  $(id).textContent = text;
  $(id).classList.toggle('error', error);
}

// ---- sampling ----
// The sampler menu lists what the library's pipeline knows (SCHEDULER_NAMES), asked of a worker once.
{
  const probe = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
  probe.onmessage = (e) => {
    if (e.data.type !== 'hello') return;
    probe.terminate();
    const select = document.querySelector('select[name=sampler]');
    const current = select.value;
    select.replaceChildren(
      ...e.data.schedulers.map((name) => new Option(name.toUpperCase(), name, false, name === current)),
    );
    window.demo.schedulers = e.data.schedulers;
  };
}
$('sample-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  const opts = {
    type: 'sample',
    sampler: f.get('sampler'),
    steps: Number(f.get('steps')),
    seed: Number(f.get('seed')),
    count: Number(f.get('count')),
    threads: f.get('threads'),
    simd: f.get('simd'),
  };
  window.demo.last = null;
  $('sample').disabled = true;
  $('stop').disabled = false;
  $('save').disabled = true;
  $('hash').textContent = '';
  setStatus('status', 'starting the engine…');
  startWorker('sample', async (m) => {
    if (m.type === 'hello') {
      // the worker's own list; the menu was filled by the first worker
    } else if (m.type === 'info') {
      $('info').textContent = JSON.stringify(m.info, null, 2);
    } else if (m.type === 'step') {
      drawDigits(m.x0, opts.count);
      setStatus('status', `step ${m.i} / ${m.n} (t = ${m.t}) — ${(m.ms / 1000).toFixed(1)} s`);
    } else if (m.type === 'done') {
      drawDigits(m.x0, opts.count);
      lastPng = m.png; // made by the library's toPng in the worker
      const hash = await sha256(m.x0);
      $('hash').textContent = `sha256(x_0 as float32) = ${hash}`;
      setStatus(
        'status',
        `done: ${opts.count} digits, ${opts.steps} ${opts.sampler.toUpperCase()} steps in ${(m.ms / 1000).toFixed(2)} s on ${m.info.threads} thread(s), ${m.info.build} build`,
      );
      window.demo.last = { ...opts, info: m.info, sha256: hash, first: Array.from(m.x0.subarray(300, 304)) };
      $('sample').disabled = false;
      $('stop').disabled = true;
      $('save').disabled = false;
    } else if (m.type === 'error') {
      setStatus('status', m.message, true);
      window.demo.last = { error: m.message };
      $('sample').disabled = false;
      $('stop').disabled = true;
    }
  }).postMessage(opts);
});

$('stop').addEventListener('click', () => {
  stopWorker('sample');
  setStatus('status', 'stopped');
  $('sample').disabled = false;
  $('stop').disabled = true;
});

let lastPng = null;
$('save').addEventListener('click', () => {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([lastPng], { type: 'image/png' }));
  a.download = 'ddpm-digits.png';
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
});

// ---- two moons ----
const lossHistory = [];
function drawMoons(data, points) {
  const c = $('moons');
  const ctx = c.getContext('2d');
  ctx.clearRect(0, 0, c.width, c.height);
  // one scale for both axes, from the training data's extent plus a margin
  const b = moonsBox;
  const s = Math.min(c.width / (b.x1 - b.x0), c.height / (b.y1 - b.y0));
  const px = (v) => (v - (b.x0 + b.x1) / 2) * s + c.width / 2;
  const py = (v) => c.height / 2 - (v - (b.y0 + b.y1) / 2) * s;
  const dots = (xy, color, r) => {
    ctx.fillStyle = color;
    for (let i = 0; i < xy.length; i += 2) ctx.fillRect(px(xy[i]) - r / 2, py(xy[i + 1]) - r / 2, r, r);
  };
  if (data) dots(data, 'rgba(0,0,0,0.15)', 2);
  if (points) dots(points, '#1f6fd6', 3);
}
function drawLoss() {
  const c = $('loss');
  const ctx = c.getContext('2d');
  ctx.clearRect(0, 0, c.width, c.height);
  if (lossHistory.length < 2) return;
  const max = Math.max(...lossHistory);
  ctx.strokeStyle = '#d6531f';
  ctx.beginPath();
  lossHistory.forEach((l, i) => {
    const x = (i / (lossHistory.length - 1)) * (c.width - 10) + 5;
    const y = c.height - 5 - (l / max) * (c.height - 20);
    i ? ctx.lineTo(x, y) : ctx.moveTo(x, y);
  });
  ctx.stroke();
  ctx.fillStyle = '#666';
  ctx.fillText(`loss (max ${max.toFixed(3)})`, 6, 12);
}

let moonsData = null;
let moonsBox = { x0: -2.5, x1: 2.5, y0: -2.5, y1: 2.5 };
function boxOf(xy, margin = 0.35) {
  let x0 = Infinity,
    x1 = -Infinity,
    y0 = Infinity,
    y1 = -Infinity;
  for (let i = 0; i < xy.length; i += 2) {
    x0 = Math.min(x0, xy[i]);
    x1 = Math.max(x1, xy[i]);
    y0 = Math.min(y0, xy[i + 1]);
    y1 = Math.max(y1, xy[i + 1]);
  }
  return { x0: x0 - margin, x1: x1 + margin, y0: y0 - margin, y1: y1 + margin };
}
$('train-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const steps = Number(new FormData(e.target).get('steps'));
  lossHistory.length = 0;
  window.demo.trained = null;
  $('train').disabled = true;
  $('train-stop').disabled = false;
  setStatus('train-status', 'starting…');
  startWorker('train', (m) => {
    if (m.type === 'train-data') {
      moonsData = m.points;
      moonsBox = boxOf(moonsData);
      drawMoons(moonsData, null);
    } else if (m.type === 'train-progress') {
      lossHistory.push(m.loss);
      drawMoons(moonsData, m.points);
      drawLoss();
      setStatus('train-status', `step ${m.step} / ${m.steps}: loss ${m.loss.toFixed(4)}`);
      if (m.step === m.steps) {
        window.demo.trained = { step: m.step, loss: lossHistory.slice(), points: Array.from(m.points) };
        $('train').disabled = false;
        $('train-stop').disabled = true;
      }
    } else if (m.type === 'error') {
      setStatus('train-status', m.message, true);
      window.demo.trained = { error: m.message };
      $('train').disabled = false;
    }
  }).postMessage({ type: 'train', steps });
});
$('train-stop').addEventListener('click', () => {
  stopWorker('train');
  setStatus('train-status', 'stopped');
  $('train').disabled = false;
  $('train-stop').disabled = true;
});
