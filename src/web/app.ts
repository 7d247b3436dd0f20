// The web page: verify a receipt in the browser (the package's own verifyReceipt, no server
// trust), and see usage, epochs and anchoring. Every value from a receipt or the server is
// written with textContent, never as HTML.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { verifyReceipt, type VerifyResult } from '../verify/index.ts';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const keyInput = $<HTMLInputElement>('api-key');
keyInput.value = sessionStorage.getItem('receipts-key') ?? '';
keyInput.addEventListener('change', () => sessionStorage.setItem('receipts-key', keyInput.value.trim()));

async function api<T>(path: string): Promise<T> {
  const key = keyInput.value.trim();
  const res = await fetch(path, { headers: key ? { authorization: `Bearer ${key}` } : {} });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error((body as { error?: { message?: string } }).error?.message ?? `HTTP ${res.status}`);
  return body as T;
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, cls?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

// ---- routing: /verify and /usage (and / → usage when a key is set, else verify)
function route(): void {
  const path = location.pathname;
  const view = path === '/usage' || (path === '/' && keyInput.value) ? 'usage' : 'verify';
  $('verify-view').hidden = view !== 'verify';
  $('usage-view').hidden = view !== 'usage';
  for (const [id, active] of [['nav-verify', view === 'verify'], ['nav-usage', view === 'usage']] as const) {
    if (active) $(id).setAttribute('aria-current', 'page');
    else $(id).removeAttribute('aria-current');
  }
  document.title = view === 'verify' ? 'Verify a receipt · sui-receipts' : 'Usage · sui-receipts';
  if (view === 'usage') startUsage();
  else stopUsage();
}

// ---- verify
const STEP_NAMES: Record<string, string> = {
  format: 'Receipt read',
  leaf: 'Leaf rebuilt from the event fields, leaf hash compared',
  path: 'Audit path walked, level by level',
  root: 'Root compared',
};

const receiptInput = $<HTMLTextAreaElement>('receipt-input');

function showResult(result: VerifyResult, stepsList: HTMLOListElement, verdict: HTMLElement): void {
  stepsList.replaceChildren();
  for (const s of result.steps) {
    const li = el('li', undefined, s.ok ? 'ok' : 'bad');
    li.dataset.step = s.step;
    li.append(el('strong', `${s.ok ? '✓' : '✗'} ${STEP_NAMES[s.step]}: `), el('span', s.detail, s.ok && s.step !== 'format' ? 'hash' : ''));
    if (s.levels?.length) {
      const ol = el('ol', undefined, 'levels');
      s.levels.forEach((l, i) => {
        const item = el('li', undefined, 'hash');
        item.textContent = `level ${i}: sibling on the ${l.side} ${l.sibling} → ${l.hash}`;
        ol.append(item);
      });
      li.append(ol);
    }
    stepsList.append(li);
  }
  verdict.className = result.ok ? 'ok' : 'bad';
  verdict.textContent = result.ok ? `Valid: ${result.reason}` : `Invalid at step "${STEP_NAMES[result.steps.at(-1)!.step]}": ${result.reason}`;
  verdict.dataset.ok = String(result.ok);
  verdict.dataset.failedStep = result.ok ? '' : result.steps.at(-1)!.step;
}

async function verifyNow(): Promise<void> {
  const verdict = $('verdict');
  const chain = $('chain-check');
  chain.replaceChildren();
  let receipt: unknown;
  try {
    receipt = JSON.parse(receiptInput.value);
  } catch (err) {
    verdict.className = 'bad';
    verdict.textContent = `Invalid: the text is not JSON (${(err as Error).message})`;
    $<HTMLOListElement>('steps').replaceChildren();
    return;
  }
  const result = verifyReceipt(receipt);
  showResult(result, $<HTMLOListElement>('steps'), verdict);
  const r = receipt as { anchor?: { network: string; registry_id: string; tx_digest: string | null; checkpoint: string | null } | null; epoch?: number };
  if (result.ok && r.anchor && typeof r.epoch === 'number') await chainCheck(receipt, r.epoch, r.anchor, chain);
}

/** The epoch's root and size as the registry holds them, read by this server (labelled so). */
async function chainCheck(receipt: unknown, epoch: number, anchor: { network: string; registry_id: string; tx_digest: string | null; checkpoint: string | null }, out: HTMLElement): Promise<void> {
  out.append(el('h3', 'On chain'));
  out.append(el('p', `Anchored on ${anchor.network} in registry ${anchor.registry_id}, transaction ${anchor.tx_digest ?? '(unknown)'}, checkpoint ${anchor.checkpoint ?? '(pending)'}.`, 'hash'));
  try {
    const onChain = await api<{ root: string; size: number }>(`/v1/epochs/${epoch}/chain`);
    const check = verifyReceipt(receipt, { root: onChain.root, size: onChain.size });
    const p = el('p', undefined, check.ok ? 'ok' : 'bad');
    p.textContent = check.ok
      ? `✓ Matches the root and size the registry holds for epoch ${epoch} (${onChain.root}, ${onChain.size} leaves).`
      : `✗ Does not match the registry: ${check.reason}`;
    out.append(p);
    out.append(el('p', 'The root was read from the chain by this service (a server-side read). For a check that trusts no server, run: receipts verify receipt.json --rpc <full node URL>'));
  } catch (err) {
    out.append(el('p', `The chain could not be read through this service: ${(err as Error).message}`));
  }
}

$('verify-form').addEventListener('submit', (e) => {
  e.preventDefault();
  void verifyNow();
});
$('fetch-receipt').addEventListener('click', () => void fetchReceipt($<HTMLInputElement>('event-id').value.trim()));
receiptInput.addEventListener('dragover', (e) => e.preventDefault());
receiptInput.addEventListener('drop', (e) => {
  e.preventDefault();
  const file = e.dataTransfer?.files[0];
  if (file) void file.text().then((t) => {
    receiptInput.value = t;
    void verifyNow();
  });
});

async function fetchReceipt(id: string): Promise<void> {
  if (!/^\d+$/.test(id)) {
    $('verdict').className = 'bad';
    $('verdict').textContent = 'Enter an event id (a number).';
    return;
  }
  try {
    const receipt = await api<unknown>(`/v1/events/${id}/receipt`);
    receiptInput.value = JSON.stringify(receipt, null, 2);
    await verifyNow();
  } catch (err) {
    $('verdict').className = 'bad';
    $('verdict').textContent = `Could not fetch receipt ${id}: ${(err as Error).message}`;
  }
}

// ---- usage
let refresh: ReturnType<typeof setInterval> | undefined;
let chart: uPlot | undefined;

function startUsage(): void {
  const ns = $<HTMLInputElement>('namespace');
  ns.value ||= sessionStorage.getItem('receipts-namespace') ?? '';
  if (ns.value) void loadUsage();
  refresh ??= setInterval(() => {
    if (ns.value && !$('usage-view').hidden) void loadUsage();
  }, 5000);
}

function stopUsage(): void {
  clearInterval(refresh);
  refresh = undefined;
}

function instant(id: string): string {
  const v = $<HTMLInputElement>(id).value;
  return v ? String(Date.parse(`${v}:00Z`)) : '';
}

async function loadUsage(): Promise<void> {
  const ns = $<HTMLInputElement>('namespace').value.trim();
  sessionStorage.setItem('receipts-namespace', ns);
  const range = new URLSearchParams({ namespace: ns });
  if (instant('from')) range.set('from', instant('from'));
  if (instant('to')) range.set('to', instant('to'));
  const status = $('usage-status');
  try {
    type Usage = { groups: Array<{ key: string; events: number; units: number | string }>; totals: { events: number; units: number | string } };
    const [byAction, byHour, page, epochs, health] = await Promise.all([
      api<Usage>(`/v1/usage?${range}`),
      api<Usage>(`/v1/usage?${range}&group_by=hour`),
      api<{ events: Array<{ id: number; status: string; epoch: number | null; event: { action: string; caller: string; units: number; ts_ms: number } }> }>(`/v1/usage?${range}&receipts=true&limit=50`),
      api<{ epochs: Array<{ epoch: number; size: number; root: string; anchor: unknown }> }>('/v1/epochs?limit=1000'),
      fetch('/healthz').then((r) => r.json() as Promise<{ checks: { anchoring: string } }>),
    ]);
    fillTotals(byAction);
    drawChart(byHour.groups);
    fillEpochs(epochs.epochs.slice(-20).reverse(), health.checks.anchoring);
    fillEvents(page.events.slice(-50).reverse());
    status.textContent = `${byAction.totals.events} events, ${byAction.totals.units} units in ${ns} · refreshed ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    status.textContent = `Could not load usage: ${(err as Error).message}`;
  }
}

function row(cells: Array<string | number | Node>, numeric: number[] = []): HTMLTableRowElement {
  const tr = el('tr');
  cells.forEach((c, i) => {
    const td = el('td', undefined, numeric.includes(i) ? 'num' : '');
    if (c instanceof Node) td.append(c);
    else td.textContent = String(c);
    tr.append(td);
  });
  return tr;
}

function fillTotals(u: { groups: Array<{ key: string; events: number; units: number | string }>; totals: { events: number; units: number | string } }): void {
  const body = $('totals').querySelector('tbody')!;
  body.replaceChildren(...u.groups.map((g) => row([g.key, g.events, g.units], [1, 2])), row(['Total', u.totals.events, u.totals.units], [1, 2]));
  body.lastElementChild!.classList.add('total');
}

function drawChart(groups: Array<{ key: string; units: number | string }>): void {
  const box = $('chart');
  const data: uPlot.AlignedData = [groups.map((g) => Date.parse(g.key) / 1000), groups.map((g) => Number(g.units))];
  const width = Math.max(280, box.clientWidth || 600);
  if (chart) {
    chart.setData(data);
    chart.setSize({ width, height: 220 });
    return;
  }
  chart = new uPlot({ width, height: 220, series: [{}, { label: 'units', stroke: '#0b57d0', fill: 'rgba(11,87,208,0.12)' }], axes: [{}, { label: 'units' }] }, data, box);
}

function fillEpochs(epochs: Array<{ epoch: number; size: number; root: string; anchor: unknown }>, anchoring: string): void {
  $('epochs').querySelector('tbody')!.replaceChildren(
    ...epochs.map((e) => {
      const status = e.anchor ? 'anchored' : anchoring.startsWith('failed') ? 'failed (anchoring stopped)' : 'sealed';
      return row([e.epoch, e.size, status, el('span', e.root, 'hash')], [0, 1]);
    }),
  );
}

function fillEvents(events: Array<{ id: number; status: string; event: { action: string; caller: string; units: number; ts_ms: number } }>): void {
  $('events').querySelector('tbody')!.replaceChildren(
    ...events.map((r) => {
      const link = el('a', `${r.status} receipt`);
      link.href = `/verify?event=${r.id}`;
      return row([r.id, r.event.action, r.event.caller, r.event.units, new Date(r.event.ts_ms).toISOString().replace('T', ' ').slice(0, 19), link], [0, 3]);
    }),
  );
}

$('usage-form').addEventListener('submit', (e) => {
  e.preventDefault();
  void loadUsage();
});

// /verify?event=<id> fetches and verifies at once (with the key of this tab)
route();
const wanted = new URLSearchParams(location.search).get('event');
if (location.pathname === '/verify' && wanted) {
  $<HTMLInputElement>('event-id').value = wanted;
  void fetchReceipt(wanted);
}
