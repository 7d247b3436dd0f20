// The web page: verify a receipt in the browser (the package's own verifyReceipt, no server
// trust), and see usage, epochs and anchoring. Every value from a receipt or the server is
// written with textContent, never as HTML.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { verifyReceipt, type VerifyResult } from '../verify/index.ts';
import { chartPlan, formatLocal, parseLocalInput, utcOffset, zoneName, type Bucket, type ChartPlan } from './time.ts';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const keyInput = $<HTMLInputElement>('api-key');
keyInput.value = sessionStorage.getItem('receipts-key') ?? '';
keyInput.addEventListener('change', () => {
  sessionStorage.setItem('receipts-key', keyInput.value.trim());
  keyInput.closest('.key')!.classList.remove('needs-key');
  // Retry what waited for a key.
  if (!$('usage-view').hidden && $<HTMLInputElement>('namespace').value) void loadUsage();
  const id = $<HTMLInputElement>('event-id').value.trim();
  if (!$('verify-view').hidden && $('verdict').dataset.needsKey === 'true' && id) void fetchReceipt(id);
});

/** The service refused the key (401): the fix is in the key box on this page, not in a header. */
class KeyError extends Error {}

async function api<T>(path: string): Promise<T> {
  const key = keyInput.value.trim();
  const res = await fetch(path, { headers: key ? { authorization: `Bearer ${key}` } : {} });
  const body = await res.json().catch(() => ({}));
  if (res.status === 401) {
    keyInput.closest('.key')!.classList.add('needs-key');
    throw new KeyError(
      key
        ? 'The API key in the "API key" box at the top of this page was not accepted. Check it (keys start with sr_), or ask the operator for a new one.'
        : 'Enter your API key in the "API key" box at the top of this page: this service answers only with a key.',
    );
  }
  if (!res.ok) throw new Error((body as { error?: { message?: string } }).error?.message ?? `HTTP ${res.status}`);
  return body as T;
}

/** An error in `out`, with a button to the key box when the key is what is missing. */
function showError(out: HTMLElement, text: string, err: unknown): void {
  out.replaceChildren(`${text}: ${(err as Error).message}`);
  out.dataset.needsKey = String(err instanceof KeyError);
  if (err instanceof KeyError) {
    const go = el('button', 'Go to the API key box', 'link');
    go.type = 'button';
    go.addEventListener('click', () => keyInput.focus());
    out.append(' ', go);
  }
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
  for (const [id, active] of [
    ['nav-verify', view === 'verify'],
    ['nav-usage', view === 'usage'],
  ] as const) {
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
  verdict.textContent = result.ok
    ? `Valid: ${result.reason}`
    : `Invalid at step "${STEP_NAMES[result.steps.at(-1)!.step]}": ${result.reason}`;
  // The stable code next to the sentence, for people to quote and programs to read.
  if (!result.ok) verdict.append(' ', el('code', result.code, 'failure-code'));
  verdict.dataset.ok = String(result.ok);
  verdict.dataset.code = result.ok ? '' : result.code;
  verdict.dataset.failedStep = result.ok ? '' : result.steps.at(-1)!.step;
}

type ReceiptLike = { id?: unknown; status?: unknown; epoch?: unknown; proof?: unknown; root?: unknown };

/** Pending: recorded, its epoch not sealed yet, so no proof exists. Not a failure. */
function isPending(r: unknown): r is ReceiptLike {
  const x = r as ReceiptLike | null;
  return typeof x === 'object' && x !== null && x.status === 'pending' && x.proof == null && x.root == null && x.epoch == null;
}

const RECHECK_MS = 5000;
let recheck: ReturnType<typeof setTimeout> | undefined;

function showPending(r: ReceiptLike): void {
  const verdict = $('verdict');
  $<HTMLOListElement>('steps').replaceChildren();
  verdict.className = 'pending';
  verdict.dataset.ok = 'pending';
  verdict.dataset.failedStep = '';
  verdict.dataset.needsKey = 'false';
  const id = typeof r.id === 'number' && Number.isSafeInteger(r.id) ? r.id : undefined;
  verdict.replaceChildren(
    el(
      'span',
      `Not sealed yet: ${id === undefined ? 'this event' : `event ${id}`} is recorded, but the epoch that will hold it is not sealed yet, so there is no proof to check. This is not a failure.`,
    ),
  );
  if (id === undefined) {
    verdict.append(' Fetch it again by its event id once it is sealed.');
    return;
  }
  verdict.append(` This page checks again every ${RECHECK_MS / 1000} s. `);
  const again = el('button', 'Check again');
  again.type = 'button';
  again.id = 'check-again';
  again.addEventListener('click', () => void fetchReceipt(String(id)));
  verdict.append(again);
  recheck = setTimeout(() => {
    if (!$('verify-view').hidden && verdict.dataset.ok === 'pending') void fetchReceipt(String(id));
  }, RECHECK_MS);
}

async function verifyNow(): Promise<void> {
  const verdict = $('verdict');
  const chain = $('chain-check');
  chain.replaceChildren();
  clearTimeout(recheck);
  verdict.dataset.needsKey = 'false';
  let receipt: unknown;
  try {
    receipt = JSON.parse(receiptInput.value);
  } catch (err) {
    verdict.className = 'bad';
    verdict.textContent = `Invalid: the text is not JSON (${(err as Error).message})`;
    $<HTMLOListElement>('steps').replaceChildren();
    return;
  }
  if (isPending(receipt)) return showPending(receipt);
  const result = verifyReceipt(receipt);
  showResult(result, $<HTMLOListElement>('steps'), verdict);
  const r = receipt as {
    anchor?: { network: string; registry_id: string; tx_digest: string | null; checkpoint: string | null } | null;
    epoch?: number;
  };
  if (result.ok && r.anchor && typeof r.epoch === 'number') await chainCheck(receipt, r.epoch, r.anchor, chain);
}

/** The epoch's root and size as the registry holds them, read by this server (labelled so). */
async function chainCheck(
  receipt: unknown,
  epoch: number,
  anchor: { network: string; registry_id: string; tx_digest: string | null; checkpoint: string | null },
  out: HTMLElement,
): Promise<void> {
  out.append(el('h3', 'On chain'));
  out.append(
    el(
      'p',
      `Anchored on ${anchor.network} in registry ${anchor.registry_id}, transaction ${anchor.tx_digest ?? '(unknown)'}, checkpoint ${anchor.checkpoint ?? '(pending)'}.`,
      'hash',
    ),
  );
  try {
    const onChain = await api<{ root: string; size: number }>(`/v1/epochs/${epoch}/chain`);
    const check = verifyReceipt(receipt, { root: onChain.root, size: onChain.size });
    const p = el('p', undefined, check.ok ? 'ok' : 'bad');
    p.textContent = check.ok
      ? `✓ Matches the root and size the registry holds for epoch ${epoch} (${onChain.root}, ${onChain.size} leaves).`
      : `✗ Does not match the registry: ${check.reason}`;
    if (!check.ok) p.append(' ', el('code', check.code, 'failure-code'));
    out.append(p);
    out.append(
      el(
        'p',
        'The root was read from the chain by this service (a server-side read). For a check that trusts no server, run: receipts verify receipt.json --rpc <full node URL>',
      ),
    );
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
  if (file)
    void file.text().then((t) => {
      receiptInput.value = t;
      void verifyNow();
    });
});

async function fetchReceipt(id: string): Promise<void> {
  if (!/^\d+$/.test(id)) {
    $('verdict').className = 'bad';
    $('verdict').dataset.ok = '';
    $('verdict').textContent = 'Enter an event id (a number).';
    return;
  }
  try {
    const receipt = await api<unknown>(`/v1/events/${id}/receipt`);
    receiptInput.value = JSON.stringify(receipt, null, 2);
    await verifyNow();
  } catch (err) {
    $('verdict').className = err instanceof KeyError ? 'note' : 'bad';
    $('verdict').dataset.ok = '';
    showError($('verdict'), `Could not fetch receipt ${id}`, err);
  }
}

// ---- usage
let refresh: ReturnType<typeof setInterval> | undefined;
let chart: uPlot | undefined;
let plan: ChartPlan | undefined;

/** One rule for time: the browser's zone, named on the page with its offset. */
function labelZone(): string {
  const zone = zoneName();
  $('zone-note').textContent =
    `Times on this page (the From/To range, the chart and the events) are in this browser's time zone: ${zone} (${utcOffset(Date.now())} now).`;
  $('events-time').textContent = `Time (${zone})`;
  return zone;
}

function startUsage(): void {
  labelZone();
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

/** A From/To field as epoch ms in the browser's zone; undefined when empty; NaN when unreadable. */
function instant(id: string): number | undefined {
  const v = $<HTMLInputElement>(id).value;
  return v ? (parseLocalInput(v) ?? NaN) : undefined;
}

type EventReceipt = {
  id: number;
  status: string;
  epoch: number | null;
  event: { action: string; caller: string; units: number; ts_ms: number };
};

async function loadUsage(): Promise<void> {
  const ns = $<HTMLInputElement>('namespace').value.trim();
  sessionStorage.setItem('receipts-namespace', ns);
  const status = $('usage-status');
  const from = instant('from');
  const to = instant('to');
  if (Number.isNaN(from) || Number.isNaN(to)) return void (status.textContent = 'From and To must be dates and times.');
  if (from !== undefined && to !== undefined && from >= to)
    return void (status.textContent = 'From must be before To (the range includes From and excludes To).');
  const range = new URLSearchParams({ namespace: ns });
  const several = ns.includes(',');
  $('events-note').textContent = several
    ? 'Latest events are listed for one namespace at a time: enter a single namespace to see them.'
    : '';
  if (from !== undefined) range.set('from', String(from));
  if (to !== undefined) range.set('to', String(to));
  try {
    const [byAction, byHour, page, epochs, health] = await Promise.all([
      allGroups(`${range}`, several),
      allGroups(`${range}&group_by=hour`, several),
      // Newest first: the latest 50 events of the range (the API pages one namespace at a time).
      several
        ? Promise.resolve({ events: [] as EventReceipt[] })
        : api<{ events: EventReceipt[] }>(`/v1/usage?${range}&receipts=true&order=desc&limit=50`),
      api<{ epochs: Array<{ epoch: number; size: number; root: string; anchor: unknown }> }>('/v1/epochs?order=desc&limit=20'),
      fetch('/healthz').then((r) => r.json() as Promise<{ checks: { anchoring: string } }>),
    ]);
    labelZone();
    fillTotals(byAction);
    drawChart(byHour.groups, { from, to });
    fillEpochs(epochs.epochs, health.checks.anchoring);
    fillEvents(page.events);
    const cut =
      byAction.complete && byHour.complete ? '' : ` · only the first ${MAX_GROUP_PAGES} pages of groups are shown: narrow From/To`;
    status.textContent = `${byAction.totals.events} events, ${byAction.totals.units} units in ${ns}${cut} · refreshed ${new Date().toLocaleTimeString()}`;
    status.dataset.needsKey = 'false';
  } catch (err) {
    showError(status, 'Could not load usage', err);
  }
}

type Usage = { groups: Array<Sums & { key: string }>; totals: Sums; next_cursor?: string | null };
/** Pages of groups read per refresh (the API returns at most 10,000 groups a page). */
const MAX_GROUP_PAGES = 20;

/**
 * Every group of a usage query, following next_cursor: the API pages groups (an hour chart over
 * years has more than one page). `complete` is false when MAX_GROUP_PAGES did not reach the end.
 */
async function allGroups(query: string, several: boolean): Promise<Usage & { complete: boolean }> {
  // Several namespaces have a smaller page (each namespace's groups count too): their default.
  const size = several ? '' : '&limit=10000';
  const first = await api<Usage>(`/v1/usage?${query}${size}`);
  let next = first.next_cursor;
  for (let pages = 1; next && pages < MAX_GROUP_PAGES; pages++) {
    const more: Usage = await api<Usage>(`/v1/usage?${query}${size}&cursor=${encodeURIComponent(next)}`);
    first.groups.push(...more.groups);
    next = more.next_cursor;
  }
  return { ...first, complete: !next };
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

type Sums = { events: number; units: number | string; billable_events?: number; billable_units?: number | string };

function fillTotals(u: { groups: Array<Sums & { key: string }>; totals: Sums }): void {
  const body = $('totals').querySelector('tbody')!;
  // Units arrive as strings beyond 2^53: shown as given, never through a float.
  const cells = (key: string, g: Sums) => row([key, g.events, g.units, g.billable_events ?? '', g.billable_units ?? ''], [1, 2, 3, 4]);
  body.replaceChildren(...u.groups.map((g) => cells(g.key, g)), cells('Total', u.totals));
  body.lastElementChild!.classList.add('total');
}

const BUCKET_TITLE: Record<Bucket, string> = {
  hour: 'Units per hour',
  day: 'Units per day',
  week: 'Units per week (from Monday)',
  month: 'Units per month',
  year: 'Units per year',
};

function drawChart(
  groups: Array<{ key: string; units: number | string }>,
  range: { from?: number | undefined; to?: number | undefined },
): void {
  const box = $('chart');
  plan = chartPlan(
    groups.map((g) => ({ t: Date.parse(g.key), units: Number(g.units) })),
    { ...(range.from !== undefined && { from: range.from }), ...(range.to !== undefined && { to: range.to }) },
    Date.now(),
  );
  $('chart-title').textContent = BUCKET_TITLE[plan.bucket];
  box.setAttribute('aria-label', `${BUCKET_TITLE[plan.bucket]} from ${formatLocal(plan.min)} to ${formatLocal(plan.max)}`);
  // For tests and for anyone reading the DOM: what the axis spans.
  Object.assign(box.dataset, { bucket: plan.bucket, xMin: String(plan.min), xMax: String(plan.max), bars: String(plan.starts.length) });
  const data: uPlot.AlignedData = [plan.starts.map((t) => t / 1000), plan.units];
  const width = Math.max(280, box.clientWidth || 600);
  if (chart) {
    chart.setData(data);
    chart.setSize({ width, height: 220 });
    return;
  }
  chart = new uPlot(
    {
      width,
      height: 220,
      // The axis is the plan's range, not uPlot's guess (which spans years around a single point).
      scales: {
        x: { time: true, range: () => [plan!.min / 1000, plan!.max / 1000] },
        y: { range: (_u, _min, max) => [0, Math.max(1, max) * 1.1] },
      },
      series: [
        {},
        {
          label: 'units',
          stroke: '#0b57d0',
          fill: 'rgba(11,87,208,0.35)',
          paths: uPlot.paths.bars!({ align: 1, size: [0.9, Infinity] }),
          points: { show: false },
        },
      ],
      axes: [{}, { label: 'units' }],
    },
    data,
    box,
  );
}

function fillEpochs(epochs: Array<{ epoch: number; size: number; root: string; anchor: unknown }>, anchoring: string): void {
  $('epochs')
    .querySelector('tbody')!
    .replaceChildren(
      ...epochs.map((e) => {
        const status = e.anchor ? 'anchored' : anchoring.startsWith('failed') ? 'failed (anchoring stopped)' : 'sealed';
        const tr = row([e.epoch, e.size, status, el('span', e.root, 'hash')], [0, 1]);
        tr.lastElementChild!.classList.add('hash-cell');
        return tr;
      }),
    );
}

function fillEvents(events: EventReceipt[]): void {
  $('events')
    .querySelector('tbody')!
    .replaceChildren(
      ...events.map((r) => {
        const link = el('a', `${r.status} receipt`);
        link.href = `/verify?event=${r.id}`;
        return row([r.id, r.event.action, r.event.caller, r.event.units, formatLocal(r.event.ts_ms), link], [0, 3]);
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
