// The web page: verify a receipt in the browser (the package's own verifyReceipt, no server
// trust), and see usage, epochs and anchoring. Every value from a receipt or the server is
// written with textContent, never as HTML.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { parseVerifierKey } from '../checkpoint/index.ts';
import { bytesToHex } from '../encoding/hex.ts';
import { type CorrectionFields, leafHash, leafHashV2 } from '../event/leaf.ts';
import {
  auditPeriod,
  correctionMismatch,
  readReceiptEvent,
  verifyProofBundle,
  verifyReceipt,
  type AuditReport,
  type AuditTotals,
  type VerifyResult,
} from '../verify/index.ts';
import { checkPin, isBundle, parseWitnessKeys, writePin, type PinState } from './trust.ts';
import {
  formatIn,
  formatLocal,
  isZone,
  nextWindowIn,
  offsetLabel,
  offsetMinutes,
  parseInputIn,
  readKey,
  type TimeGroup,
  type ZonedPlan,
  zoneChoices,
  zoneName,
  zonedPlan,
} from './time.ts';

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

/** An error answer of the service, with its stable code (e.g. log_off, not_in_log). */
class ApiFailure extends Error {
  readonly code: string | undefined;
  constructor(message: string, code: string | undefined) {
    super(message);
    this.code = code;
  }
}

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
  if (!res.ok) {
    const error = (body as { error?: { message?: string; code?: string } }).error;
    throw new ApiFailure(error?.message ?? `HTTP ${res.status}`, error?.code);
  }
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

// ---- what results are checked against: the pinned log key and the witnesses given
const SERVER = location.origin;

type LogView = { kind: 'off' } | { kind: 'error'; message: string } | { kind: 'key'; pin: PinState };

/** Reads the log's verifier key (GET /v1/log, no API key needed), pins it the first time, and says so. */
async function refreshLog(): Promise<LogView> {
  let view: LogView;
  try {
    const res = await fetch('/v1/log');
    const body = (await res.json().catch(() => ({}))) as { vkey?: unknown; error?: { code?: string; message?: string } };
    if (res.status === 404 && body.error?.code === 'log_off') view = { kind: 'off' };
    else if (!res.ok) view = { kind: 'error', message: body.error?.message ?? `HTTP ${res.status}` };
    else if (typeof body.vkey !== 'string') view = { kind: 'error', message: 'the answer has no vkey' };
    else {
      try {
        parseVerifierKey(body.vkey);
        view = { kind: 'key', pin: checkPin(localStorage, SERVER, body.vkey, Date.now()) };
      } catch (err) {
        view = { kind: 'error', message: `its vkey is not a verifier key: ${(err as Error).message}` };
      }
    }
  } catch (err) {
    view = { kind: 'error', message: (err as Error).message };
  }
  showLog(view);
  return view;
}

function showLog(view: LogView): void {
  const status = $('log-key-status');
  const warning = $('key-warning');
  warning.hidden = !(view.kind === 'key' && view.pin.state === 'changed');
  status.dataset.state = view.kind === 'key' ? view.pin.state : view.kind;
  if (view.kind === 'off') {
    status.textContent =
      "This server keeps no signed epoch log: a result can be checked against the server's own root only (and the Sui registry where anchoring runs).";
    return;
  }
  if (view.kind === 'error') {
    status.textContent = `The log key of this server could not be read (${view.message}): results are not shown as signed.`;
    return;
  }
  const { pin } = view;
  status.replaceChildren(
    pin.state === 'first'
      ? 'Log key pinned in this browser for this server just now: '
      : 'Log key pinned in this browser for this server: ',
    el('code', pin.pin.vkey, 'hash'),
    ` (first seen ${formatLocal(pin.pin.since)}). Signed results are checked against this key, never against one the server names later.`,
  );
  if (pin.state !== 'changed') return;
  const trustNew = el('button', 'Trust the new key');
  trustNew.type = 'button';
  trustNew.id = 'trust-new-key';
  trustNew.addEventListener('click', () => {
    writePin(localStorage, SERVER, pin.seen, Date.now());
    void refreshLog().then(() => {
      if (!$('verify-view').hidden && receiptInput.value.trim()) void verifyNow();
    });
  });
  const keys = el('p');
  keys.append(
    'Pinned since ',
    formatLocal(pin.pin.since),
    ': ',
    el('code', pin.pin.vkey, 'hash'),
    el('br'),
    'The server now names: ',
    el('code', pin.seen, 'hash'),
  );
  warning.replaceChildren(
    el('strong', "Warning: this server's log key has changed. Results are not shown as signed."),
    keys,
    el(
      'p',
      'A log keeps one key for life: a different key can mean the server, or someone between you and it, is showing you another log. What to do: ask the operator, through a channel other than this page (their documentation, a signed announcement, support), whether the log key was replaced and what the new verifier key is. Only if it is exactly the new key below, press "Trust the new key". Otherwise keep the pinned key and report the change to them.',
    ),
  );
  warning.append(trustNew);
}

const witnessInput = $<HTMLTextAreaElement>('witness-keys');
const WITNESS_STORE = `receipts-witnesses ${SERVER}`;
witnessInput.value = localStorage.getItem(WITNESS_STORE) ?? '';

/** The witness keys of the settings field; each bad line is said beside the field, by number. */
function witnesses(): ReturnType<typeof parseWitnessKeys> {
  const parsed = parseWitnessKeys(witnessInput.value);
  $('witness-problems').textContent = parsed.problems.length ? `Not used: ${parsed.problems.join('; ')}` : '';
  witnessInput.setAttribute('aria-invalid', String(parsed.problems.length > 0));
  return parsed;
}
if (witnessInput.value.trim()) $<HTMLDetailsElement>('trust-settings').open = true;
witnessInput.addEventListener('change', () => {
  localStorage.setItem(WITNESS_STORE, witnessInput.value);
  witnesses();
  if (!$('verify-view').hidden && receiptInput.value.trim()) void verifyNow();
});
witnesses();

// ---- verify
const STEP_NAMES: Record<string, string> = {
  format: 'Receipt read',
  leaf: 'Leaf rebuilt from the event fields, leaf hash compared',
  path: 'Audit path walked, level by level',
  root: 'Root compared',
  header: "Epoch header compared with the receipt's epoch, root and size",
  log: 'Epoch header found in the epoch log at the checkpoint',
  checkpoint: 'Checkpoint signature checked against the pinned log key',
};

/** Which step a bundle failure (an audit code) belongs to. */
const BUNDLE_STEP: Record<string, string> = {
  server_error: 'header',
  unsigned_root: 'log',
  wrong_log_key: 'checkpoint',
  bad_checkpoint: 'checkpoint',
  too_few_witnesses: 'checkpoint',
};

const receiptInput = $<HTMLTextAreaElement>('receipt-input');
/** A pasted or dropped text larger than this is refused before it is parsed. */
const MAX_INPUT_CHARS = 1_000_000;

function stepItem(s: { step: string; ok: boolean; detail: string }, hash: boolean): HTMLLIElement {
  const li = el('li', undefined, s.ok ? 'ok' : 'bad');
  li.dataset.step = s.step;
  li.append(el('strong', `${s.ok ? '✓' : '✗'} ${STEP_NAMES[s.step]}: `), el('span', s.detail, s.ok && hash ? 'hash' : ''));
  return li;
}

function showResult(result: VerifyResult, stepsList: HTMLOListElement, verdict: HTMLElement): void {
  stepsList.replaceChildren();
  for (const s of result.steps) {
    const li = stepItem(s, s.step !== 'format');
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
  if (!result.ok) showInvalid(verdict, STEP_NAMES[result.steps.at(-1)!.step]!, result.reason, result.code, result.steps.at(-1)!.step);
}

function showInvalid(verdict: HTMLElement, stepName: string, reason: string, code: string, step: string): void {
  verdict.className = 'bad';
  verdict.textContent = `Invalid at step "${stepName}": ${reason}`;
  // The stable code next to the sentence, for people to quote and programs to read.
  verdict.append(' ', el('code', code, 'failure-code'));
  verdict.dataset.ok = 'false';
  verdict.dataset.code = code;
  verdict.dataset.failedStep = step;
  verdict.dataset.trust = '';
  $('checked-against').replaceChildren();
}

/** What a valid result was checked against, beyond its own root. */
interface Trust {
  log?: { vkey: string; size: number; cosigners: string[] };
  /** Why the log key was not checked, when it was not. */
  logWhy?: string;
  witnessesGiven: number;
  sui?: { epoch: number };
  suiWhy?: string;
}

/**
 * The verdict in words, by what the result was checked against: the server's own root only is
 * amber, never a green "valid"; signed by the pinned log key, cosigned by witnesses, anchored on
 * Sui are green and say which. `data-trust` holds the bases (e.g. "log-key witnesses sui").
 */
function showTrusted(result: Extract<VerifyResult, { ok: true }>, t: Trust): void {
  const verdict = $('verdict');
  const bases: string[] = [];
  if (t.log) bases.push('log-key');
  if (t.log?.cosigners.length) bases.push('witnesses');
  if (t.sui) bases.push('sui');
  const k = t.log?.cosigners.length ?? 0;
  let headline = '';
  if (k)
    headline = `Signed and cosigned by ${k} witness${k === 1 ? '' : 'es'} (the log key ${t.log!.vkey} signed; ${t.log!.cosigners.join(', ')} cosigned)`;
  else if (t.log) headline = `Signed by the log key ${t.log.vkey}`;
  if (t.sui) headline = headline ? `${headline}, and anchored on Sui` : 'Anchored on Sui';
  verdict.className = bases.length ? 'ok' : 'server-only';
  verdict.dataset.ok = 'true';
  verdict.dataset.code = '';
  verdict.dataset.failedStep = '';
  verdict.dataset.trust = bases.length ? bases.join(' ') : 'server-root';
  verdict.replaceChildren(
    bases.length
      ? `${headline}: ${result.reason}.`
      : `Matches the server's own root only: ${result.reason}. Nothing outside this server vouches for that root.`,
  );

  const list = $('checked-against');
  const item = (basis: string, ok: boolean | 'neutral', text: string) => {
    const li = el('li', `${ok === true ? '✓' : '–'} ${text}`, ok === true ? 'ok' : 'neutral');
    li.dataset.basis = basis;
    li.dataset.checked = String(ok === true);
    return li;
  };
  list.replaceChildren(
    item('server-root', true, `The receipt's own root, as the server gave it (${result.root}).`),
    t.log
      ? item(
          'log-key',
          true,
          `Signed by the log key ${t.log.vkey}: epoch ${result.epoch} is in the log's checkpoint of size ${t.log.size}.`,
        )
      : item('log-key', 'neutral', `Not checked against a log key: ${t.logWhy ?? 'no proof bundle'}.`),
    t.log && t.witnessesGiven
      ? item(
          'witnesses',
          k > 0 ? true : 'neutral',
          `Cosigned by ${k} of the ${t.witnessesGiven} witnesses given${k ? ` (${t.log.cosigners.join(', ')})` : ''}.`,
        )
      : item(
          'witnesses',
          'neutral',
          t.witnessesGiven
            ? 'Witnesses not checked: they cosign the signed checkpoint, which was not checked.'
            : 'No witness keys given (Witness keys, above).',
        ),
    t.sui
      ? item('sui', true, `Anchored on Sui: the registry holds this root and size for epoch ${t.sui.epoch} (read by this server).`)
      : item('sui', 'neutral', `Not checked on Sui: ${t.suiWhy ?? 'the receipt is not anchored'}.`),
  );
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
  $('checked-against').replaceChildren();
  verdict.className = 'pending';
  verdict.dataset.ok = 'pending';
  verdict.dataset.failedStep = '';
  verdict.dataset.trust = '';
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

/** Each verification has a number: an older one still under way never writes over a newer one. */
let verification = 0;

async function verifyNow(known?: LogView): Promise<void> {
  const run = ++verification;
  const verdict = $('verdict');
  const chain = $('chain-check');
  chain.replaceChildren();
  clearTimeout(recheck);
  verdict.dataset.needsKey = 'false';
  let input: unknown;
  try {
    if (receiptInput.value.length > MAX_INPUT_CHARS)
      throw new Error(`the text is ${receiptInput.value.length} characters, more than the ${MAX_INPUT_CHARS} a receipt or bundle can be`);
    input = JSON.parse(receiptInput.value);
  } catch (err) {
    verdict.className = 'bad';
    verdict.dataset.ok = 'false';
    verdict.dataset.trust = '';
    verdict.textContent = `Invalid: the text is not JSON (${(err as Error).message})`;
    $<HTMLOListElement>('steps').replaceChildren();
    $('checked-against').replaceChildren();
    return;
  }
  const bundle = isBundle(input) ? input : undefined;
  const receipt = bundle ? bundle.receipt : input;
  void showCorrections(receipt, run);
  if (isPending(receipt)) return showPending(receipt);
  const steps = $<HTMLOListElement>('steps');
  const result = verifyReceipt(receipt);
  showResult(result, steps, verdict);
  if (!result.ok) return;

  const given = witnesses();
  const trust: Trust = { witnessesGiven: given.keys.length };
  const view = known ?? (await refreshLog());
  if (run !== verification) return;
  if (!bundle)
    trust.logWhy =
      'a receipt alone carries no signature; fetch it by event id, or paste its proof bundle (GET /v1/events/<id>/proof), to check it against the signed epoch log';
  else if (view.kind === 'off') trust.logWhy = 'this server keeps no signed epoch log, so no key was pinned';
  else if (view.kind === 'error') trust.logWhy = `the log key could not be read (${view.message})`;
  else if (view.pin.state === 'changed') trust.logWhy = "the server's log key changed (see the warning above)";
  else {
    // The bundle is checked by the package's one bundle verifier (as `receipts verify`), against
    // the pinned key only; witnesses given are counted, not required (the verdict says how many).
    const checked = verifyProofBundle(bundle, { logKeys: [view.pin.pin.vkey], witnesses: given.vkeys, minWitnesses: 0 });
    if (!checked.ok) {
      const step = BUNDLE_STEP[checked.code] ?? 'log';
      steps.append(stepItem({ step, ok: false, detail: checked.reason }, false));
      return showInvalid(verdict, STEP_NAMES[step]!, checked.reason, checked.code, step);
    }
    const h = checked.checkpoint;
    steps.append(
      stepItem({ step: 'header', ok: true, detail: `epoch ${checked.epoch}: root ${checked.root}, ${checked.tree_size} leaves` }, true),
      stepItem({ step: 'log', ok: true, detail: `epoch ${checked.epoch} is in the epoch log of size ${h.size}, root ${h.root}` }, true),
      stepItem(
        {
          step: 'checkpoint',
          ok: true,
          detail:
            `signed by the log key ${view.pin.pin.vkey}` +
            (given.keys.length ? `; cosigned by ${checked.cosigned_by.length} of the ${given.keys.length} witnesses given` : ''),
        },
        false,
      ),
    );
    const checkedSize = h.size;
    const cosigners = checked.cosigned_by;
    trust.log = { vkey: view.pin.pin.vkey, size: checkedSize, cosigners };
  }
  const r = receipt as {
    anchor?: { network: string; registry_id: string; tx_digest: string | null; checkpoint: string | null } | null;
    epoch?: number;
  };
  if (!r.anchor) trust.suiWhy = 'the receipt is not anchored (anchoring is off, or its epoch is not on chain yet)';
  else trust.suiWhy = 'reading the registry…';
  showTrusted(result, trust);
  if (r.anchor && typeof r.epoch === 'number') {
    const onChain = await chainCheck(receipt, r.epoch, r.anchor, chain);
    if (run !== verification) return;
    if (onChain) trust.sui = { epoch: r.epoch };
    else trust.suiWhy = 'the registry could not be read, or does not match (see below)';
    showTrusted(result, trust);
  }
}

// ---- corrections: a corrected event's chain, each link checked here

interface ChainVersion {
  id: number;
  kind: 'event' | 'void' | 'amend';
  caller: string;
  action: string;
  units: number;
  leaf_hash: string;
  receipt: string;
}
interface ChainView {
  chain_id: number;
  head_id: number;
  chain: ChainVersion[];
}
/** Versions shown at most (a chain is an event and its corrections: a handful). */
const MAX_VERSIONS = 50;

/**
 * Why `next` is not a correction of `prev` (both receipts, of any status), or undefined: it is a
 * receipt v2 whose `corrects` is the leaf hash rebuilt here from prev's fields, with what never
 * changes unchanged (the verifier's own rule, so a pending version is checked too).
 */
function linkProblem(next: unknown, prev: unknown): string | undefined {
  const n = readReceiptEvent(next);
  if (!n.ok) return `its receipt: ${n.reason}`;
  const p = readReceiptEvent(prev);
  if (!p.ok) return `the receipt before it: ${p.reason}`;
  if (n.version !== 2) return 'its receipt is v1: it corrects nothing';
  const prevHash = bytesToHex(p.version === 2 ? leafHashV2(p.event as CorrectionFields) : leafHash(p.event));
  return correctionMismatch(n.event as CorrectionFields, p.event, prevHash);
}

/**
 * For a corrected event (its receipt says corrected_by) or a correction (a receipt v2) that has an
 * id: its chain from GET /v1/events/:id, every version's receipt fetched and verified in this
 * browser, and each link checked (the correction's `corrects` is the leaf of the version before).
 */
async function showCorrections(receipt: unknown, run: number): Promise<void> {
  const out = $('correction-chain');
  out.replaceChildren();
  delete out.dataset.ok;
  const r = receipt as { id?: unknown; version?: unknown; corrected_by?: unknown } | null;
  if (!r || typeof r !== 'object' || !Number.isSafeInteger(r.id) || (r.version !== 2 && r.corrected_by === undefined)) return;
  out.append(el('h3', 'Corrections'));
  try {
    const view = await api<ChainView>(`/v1/events/${r.id as number}`);
    const versions = view.chain.slice(0, MAX_VERSIONS);
    const receipts = await Promise.all(versions.map((v) => api<unknown>(`/v1/events/${v.id}/receipt`)));
    if (run !== verification) return;
    const head = versions.at(-1)!;
    out.append(
      el(
        'p',
        `Event ${view.chain_id} has ${view.chain.length} versions; the current one is ${view.head_id}` +
          (head.kind === 'void' ? ', a void: it counts nothing in totals.' : `: ${head.units} units of ${head.action} by ${head.caller}.`),
      ),
    );
    const list = el('ol');
    list.id = 'chain-versions';
    let allOk = true;
    versions.forEach((v, i) => {
      const li = el('li');
      li.dataset.versionId = String(v.id);
      const what = v.kind === 'event' ? 'original' : `${v.kind} of ${versions[i - 1]?.id ?? '?'}`;
      li.append(el('strong', `${v.id} (${what})`), ` ${v.action} by ${v.caller}, ${v.units} units. `);
      const proof = verifyReceipt(receipts[i]);
      li.dataset.proof = proof.ok ? 'ok' : isPending(receipts[i]) ? 'pending' : 'bad';
      li.append(
        el(
          'span',
          proof.ok
            ? `✓ included in epoch ${proof.epoch} (leaf ${proof.leaf_index} of ${proof.tree_size}). `
            : isPending(receipts[i])
              ? '… pending: its epoch is not sealed yet. '
              : `✗ its receipt does not verify: ${proof.reason}. `,
          proof.ok ? 'ok-text' : isPending(receipts[i]) ? 'muted' : 'bad-text',
        ),
      );
      if (i > 0) {
        const problem = linkProblem(receipts[i], receipts[i - 1]);
        li.dataset.link = problem === undefined ? 'ok' : 'bad';
        li.append(
          el(
            'span',
            problem === undefined
              ? `✓ corrects ${versions[i - 1]!.id}: its corrects is the leaf hash rebuilt from that version's fields.`
              : `✗ does not correct ${versions[i - 1]!.id}: ${problem}.`,
            problem === undefined ? 'ok-text' : 'bad-text',
          ),
        );
        if (problem !== undefined) allOk = false;
      }
      if (li.dataset.proof === 'bad') allOk = false;
      li.className = li.dataset.proof === 'bad' || li.dataset.link === 'bad' ? 'bad' : '';
      list.append(li);
    });
    out.append(list);
    if (view.chain.length > versions.length) out.append(el('p', `Only the first ${MAX_VERSIONS} versions are shown.`, 'muted'));
    out.dataset.ok = String(allOk);
  } catch (err) {
    if (run !== verification) return;
    const p = el('p');
    showError(p, 'Could not load the chain of corrections', err);
    out.append(p);
    out.dataset.ok = 'false';
  }
}

/** The epoch's root and size as the registry holds them, read by this server (labelled so). True when they match. */
async function chainCheck(
  receipt: unknown,
  epoch: number,
  anchor: { network: string; registry_id: string; tx_digest: string | null; checkpoint: string | null },
  out: HTMLElement,
): Promise<boolean> {
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
    return check.ok;
  } catch (err) {
    out.append(el('p', `The chain could not be read through this service: ${(err as Error).message}`));
    return false;
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

/**
 * The event's proof bundle (receipt, epoch header, its place in the epoch log, the signed
 * checkpoint); its plain receipt where the server keeps no log, or the epoch is not in a
 * checkpoint yet (pending, or sealed after the latest one).
 */
async function fetchReceipt(id: string): Promise<void> {
  if (!/^\d{1,16}$/.test(id)) {
    $('verdict').className = 'bad';
    $('verdict').dataset.ok = '';
    $('verdict').textContent = 'Enter an event id (a number).';
    return;
  }
  try {
    let fetched = await api<unknown>(`/v1/events/${id}/receipt`);
    const view = await refreshLog();
    // The bundle only where there is one: a sealed event of a server that keeps a log.
    if (view.kind === 'key' && !isPending(fetched)) {
      try {
        fetched = await api<unknown>(`/v1/events/${id}/proof`);
      } catch (err) {
        // Sealed after the latest checkpoint (the next seal signs it): the receipt alone, said so.
        if (!(err instanceof ApiFailure && err.code === 'not_in_log')) throw err;
      }
    }
    receiptInput.value = JSON.stringify(fetched, null, 2);
    await verifyNow(view);
  } catch (err) {
    $('verdict').className = err instanceof KeyError ? 'note' : 'bad';
    $('verdict').dataset.ok = '';
    showError($('verdict'), `Could not fetch receipt ${id}`, err);
  }
}

// ---- usage
let refresh: ReturnType<typeof setInterval> | undefined;
let chart: uPlot | undefined;
let plan: ZonedPlan | undefined;
/** The zone uPlot's axis was made for (its tzDate is fixed when it is created). */
let chartZone: string | undefined;

// ---- the usage view's time zone: the viewer's own by default, switchable, kept per server.
const BROWSER_ZONE = zoneName();
const TZ_STORE = `receipts-tz ${SERVER}`;
const GROUP_STORE = `receipts-group-by ${SERVER}`;
const tzInput = $<HTMLInputElement>('tz');
const groupSelect = $<HTMLSelectElement>('group-by');
let zone = 'UTC';

/** A zone that cannot be used is said on the page, never replaced by UTC silently. */
function zoneProblem(text: string): void {
  const p = $('zone-problem');
  p.textContent = text;
  p.hidden = !text;
}

/** Shown as a name, bounded: the stored value may be anything a script put there. */
const quoted = (v: string) => JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}…` : v);

function chooseZone(): void {
  const stored = localStorage.getItem(TZ_STORE);
  if (stored !== null && isZone(stored)) zone = stored;
  else if (stored !== null) {
    zone = 'UTC';
    zoneProblem(
      `The time zone saved in this browser for this server, ${quoted(stored)}, is not one this browser knows: showing UTC. Choose a zone under "Time zone".`,
    );
  } else if (isZone(BROWSER_ZONE)) zone = BROWSER_ZONE;
  else {
    zone = 'UTC';
    zoneProblem(`This browser's time zone, ${quoted(BROWSER_ZONE)}, is not an IANA zone it knows: showing UTC.`);
  }
  $('tz-list').replaceChildren(...zoneChoices(zone).map((z) => Object.assign(el('option'), { value: z })));
  tzInput.value = zone;
  const group = localStorage.getItem(GROUP_STORE);
  if (group === 'auto' || group === 'hour' || group === 'day' || group === 'month') groupSelect.value = group;
}
chooseZone();

/** The zone typed or picked, when it is one: kept for this server. False when it is not. */
function applyZone(): boolean {
  const typed = tzInput.value.trim();
  if (typed === zone) return true;
  if (!isZone(typed)) {
    zoneProblem(
      `Time zone: ${quoted(typed)} is not a time zone this browser knows (an IANA name such as Europe/Berlin, or UTC): still showing ${zone}.`,
    );
    tzInput.setAttribute('aria-invalid', 'true');
    return false;
  }
  zone = typed;
  localStorage.setItem(TZ_STORE, zone);
  tzInput.removeAttribute('aria-invalid');
  zoneProblem('');
  labelZone();
  return true;
}
tzInput.addEventListener('change', () => {
  if (applyZone() && $<HTMLInputElement>('namespace').value.trim()) void loadUsage();
});
groupSelect.addEventListener('change', () => {
  localStorage.setItem(GROUP_STORE, groupSelect.value);
  if ($<HTMLInputElement>('namespace').value.trim()) void loadUsage();
});

const DAY_MS = 86_400_000;

/**
 * The grouping of the time groups: the one chosen, or "by range": hours up to 3 days, days up to
 * 92, months beyond, so the chart has enough bars to show a shape and few enough to read. An
 * open From is measured from the first group (asked by day first).
 */
function timeGroup(from: number | undefined, to: number | undefined, firstKey?: number): TimeGroup {
  const chosen = groupSelect.value;
  if (chosen === 'hour' || chosen === 'day' || chosen === 'month') return chosen;
  const start = from ?? firstKey;
  if (start === undefined) return 'day';
  const span = (to ?? Date.now()) - start;
  return span <= 3 * DAY_MS ? 'hour' : span <= 92 * DAY_MS ? 'day' : 'month';
}

/** One rule for time on the usage view: the zone chosen, named on the page with its offset. */
function labelZone(): string {
  const own = zone === BROWSER_ZONE ? ", this browser's own" : `; this browser's own is ${BROWSER_ZONE}`;
  $('zone-note').textContent =
    `Times on this page (the From/To range, the chart, the time groups and the events) are in the time zone: ${zone} (${offsetLabel(offsetMinutes(zone, Date.now()))} now)${own}.`;
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

/** A From/To field as epoch ms in the chosen zone; undefined when empty; NaN when unreadable. */
function instant(id: string): number | undefined {
  const v = $<HTMLInputElement>(id).value;
  return v ? (parseInputIn(zone, v) ?? NaN) : undefined;
}

type EventReceipt = {
  id: number;
  status: string;
  epoch: number | null;
  tree_size?: number | null;
  root?: string | null;
  event: { action: string; caller: string; units: number; ts_ms: number; kind?: 'void' | 'amend' };
  corrected_by?: { id: number; kind: 'void' | 'amend' };
};

/** The events the server counts in the range shown: the audit's progress bar runs to it. */
let lastTotal: number | undefined;

/** Events listed, and counted per epoch, per refresh: the newest of the range. */
const LATEST = 50;

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
  let group = timeGroup(from, to);
  const chosen = groupSelect.value;
  const asked = zone;
  // UTC is asked without tz: its keys are exactly what they were before tz existed.
  const inZone = asked === 'UTC' ? '' : `&tz=${encodeURIComponent(asked)}`;
  const timeGroups = (g: TimeGroup) =>
    allGroups(`${range}&group_by=${g}${inZone}`, several).catch((err: unknown) => {
      // A zone this browser knows and the server does not (older tz data): UTC, said aloud.
      if (asked !== 'UTC' && err instanceof ApiFailure && err.code === 'invalid_query' && /\btz\b/.test(err.message)) return undefined;
      throw err;
    });
  try {
    const [byAction, byDefault, page, health] = await Promise.all([
      allGroups(`${range}`, several),
      timeGroups(group),
      // Newest first: the latest 50 events of the range (the API pages one namespace at a time).
      several
        ? Promise.resolve({ events: [] as EventReceipt[], next_cursor: null })
        : api<{ events: EventReceipt[]; next_cursor?: string | null }>(`/v1/usage?${range}&receipts=true&order=desc&limit=${LATEST}`),
      fetch('/healthz').then((r) => r.json() as Promise<{ checks: { anchoring: string } }>),
    ]);
    let byTime = byDefault;
    // "By range" with an open From: the first day with events says how long the range is.
    const first = byTime?.groups[0] && Date.parse(byTime.groups[0].key);
    const refined = timeGroup(from, to, Number.isNaN(first) ? undefined : first);
    if (byTime && refined !== group) {
      group = refined;
      byTime = await timeGroups(group);
    }
    if (!byTime) {
      if (zone === asked) {
        zone = 'UTC';
        tzInput.value = 'UTC';
        zoneProblem(`The server does not know the time zone ${quoted(asked)}: showing UTC.`);
      }
      return void (await loadUsage());
    }
    // The zone was switched while this answer was on its way: the newer load draws.
    if (zone !== asked || groupSelect.value !== chosen) return;
    labelZone();
    fillTotals(byAction);
    void fillLimits(several ? undefined : ns);
    lastTotal = byAction.totals.events;
    drawChart(byTime.groups, group, { from, to });
    fillTimeGroups(byTime.groups, group);
    fillEpochs(page.events, Boolean(page.next_cursor), health.checks.anchoring, several);
    fillEvents(page.events);
    const cut =
      byAction.complete && byTime.complete ? '' : ` · only the first ${MAX_GROUP_PAGES} pages of groups are shown: narrow From/To`;
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

interface LimitUsage {
  id: string;
  meter: string | null;
  actions: string[] | null;
  measure: string;
  period: string;
  tz: string;
  from: string;
  to: string | null;
  hard: number | null;
  used: number | string;
  remaining: number | string | null;
  thresholds: Array<{
    name: string;
    at: number;
    crossed: boolean;
    /** When the crossing was seen and alerted (older servers: absent). */
    alerted_at?: string | null;
    alerts?: { sent_to: number; delivered: number } | null;
  }>;
}

/**
 * Each limit of one namespace with its usage this period (GET /v1/limits/usage). Hidden when the
 * namespace has none, or when the server or key cannot say (an older server, a key without read):
 * limits are an addition to the page, never a reason for it to fail.
 */
async function fillLimits(ns: string | undefined): Promise<void> {
  const section = $('limits');
  if (ns === undefined) return void (section.hidden = true);
  let answer: { as_of: number; limits: LimitUsage[] };
  try {
    answer = await api(`/v1/limits/usage?namespace=${encodeURIComponent(ns)}`);
  } catch {
    section.hidden = true;
    section.dataset.loaded = ns;
    return;
  }
  section.hidden = answer.limits.length === 0;
  // Which namespace the section was last drawn for (tests wait on it).
  section.dataset.loaded = ns;
  const when = (iso: string) => new Date(iso).toLocaleString();
  $('limits-table')
    .querySelector('tbody')!
    .replaceChildren(
      ...answer.limits.map((l) => {
        const counts = l.meter !== null ? `meter ${l.meter}` : `${l.measure} of ${l.actions?.join(', ') ?? 'every action'}`;
        const period = l.period === 'total' ? 'all time' : `this ${l.period} (${l.tz}), until ${when(l.to!)}`;
        const label = (name: string) =>
          name === 'hard' ? 'hard limit' : name.replace('soft:', '') + (name.startsWith('soft:') ? ' %' : '');
        // Each threshold reached, when it was seen, and the alert sent for it (webhooks delivered / to).
        const reached = l.thresholds
          .filter((t) => t.crossed || t.alerted_at)
          .map((t) => {
            const at = t.alerted_at ? ` at ${when(t.alerted_at)}` : '';
            const sent = t.alerts
              ? t.alerts.sent_to === 0
                ? ', no webhook'
                : `, alert delivered to ${t.alerts.delivered} of ${t.alerts.sent_to} webhook${t.alerts.sent_to === 1 ? '' : 's'}`
              : '';
            return `${label(t.name)}${at}${sent}`;
          });
        const tr = row([l.id, counts, period, l.used, l.hard ?? '—', l.remaining ?? '—', reached.join('; ') || 'none'], [3, 4, 5]);
        if (l.thresholds.some((t) => t.name === 'hard' && t.crossed)) tr.classList.add('over');
        return tr;
      }),
    );
  $('limits-note').textContent = `Exact as of ledger position ${answer.as_of}.`;
}

function fillTotals(u: { groups: Array<Sums & { key: string }>; totals: Sums }): void {
  const body = $('totals').querySelector('tbody')!;
  // Units arrive as strings beyond 2^53: shown as given, never through a float.
  const cells = (key: string, g: Sums) => row([key, g.events, g.units, g.billable_events ?? '', g.billable_units ?? ''], [1, 2, 3, 4]);
  body.replaceChildren(...u.groups.map((g) => cells(g.key, g)), cells('Total', u.totals));
  body.lastElementChild!.classList.add('total');
}

const BUCKET_TITLE: Record<TimeGroup, string> = {
  hour: 'Units per hour',
  day: 'Units per day',
  month: 'Units per month',
};

function drawChart(
  groups: Array<{ key: string; units: number | string }>,
  group: TimeGroup,
  range: { from?: number | undefined; to?: number | undefined },
): void {
  const box = $('chart');
  plan = zonedPlan(
    zone,
    group,
    groups.map((g) => ({ t: Date.parse(g.key), units: Number(g.units) })),
    { ...(range.from !== undefined && { from: range.from }), ...(range.to !== undefined && { to: range.to }) },
    Date.now(),
  );
  $('chart-title').textContent = BUCKET_TITLE[group];
  box.setAttribute('aria-label', `${BUCKET_TITLE[group]} from ${formatIn(zone, plan.min)} to ${formatIn(zone, plan.max)} (${zone})`);
  // For tests and for anyone reading the DOM: what the axis spans.
  Object.assign(box.dataset, { bucket: group, tz: zone, xMin: String(plan.min), xMax: String(plan.max), bars: String(plan.starts.length) });
  const data: uPlot.AlignedData = [plan.starts.map((t) => t / 1000), plan.units];
  const width = Math.max(280, box.clientWidth || 600);
  if (chart && chartZone !== zone) {
    chart.destroy();
    chart = undefined;
  }
  if (chart) {
    chart.setData(data);
    chart.setSize({ width, height: 220 });
    return;
  }
  chartZone = zone;
  const axisZone = zone;
  chart = new uPlot(
    {
      width,
      height: 220,
      // The axis labels in the chosen zone, not the browser's.
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), axisZone),
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

/** Time groups listed in the table; beyond, the latest are listed and the rest said. */
const MAX_GROUP_ROWS = 2000;
const WINDOW_NAME: Record<TimeGroup, string> = { hour: 'Hour', day: 'Day', month: 'Month' };
const GROUP_NOTE: Record<TimeGroup, string> = {
  hour: 'Each hour is a local hour',
  day: 'Each day runs from local midnight to the next (23 or 25 hours across a daylight-saving change)',
  month: 'Each month runs from local midnight of its first day',
};
const NOMINAL: Partial<Record<TimeGroup, number>> = { hour: 3_600_000, day: 86_400_000 };

/**
 * The time groups as the server keyed them: each label is the key's own local time and offset
 * (so it reads the same in any browser), with a day's length when daylight saving changed it.
 */
function fillTimeGroups(groups: Array<Sums & { key: string }>, group: TimeGroup): void {
  $('groups-title').textContent = `Usage per ${group} (${zone})`;
  $('groups-window').textContent = `${WINDOW_NAME[group]} (local start, UTC offset)`;
  const shown = groups.slice(-MAX_GROUP_ROWS);
  const rows = shown.map((g) => {
    const k = readKey(g.key, group);
    let label = k?.label ?? g.key;
    const nominal = NOMINAL[group];
    if (k && nominal) {
      const hours = (nextWindowIn(zone, group, k.t) - k.t) / 3_600_000;
      if (hours * 3_600_000 !== nominal) label += ` · ${hours} h`;
    }
    const tr = row([label, g.events, g.units, g.billable_events ?? '', g.billable_units ?? ''], [1, 2, 3, 4]);
    tr.dataset.key = g.key;
    return tr;
  });
  $('time-groups')
    .querySelector('tbody')!
    .replaceChildren(...rows);
  $('groups-note').textContent =
    (groups.length > shown.length
      ? `The latest ${MAX_GROUP_ROWS} of ${groups.length} ${group}s are listed: narrow From/To or group by a longer window. `
      : '') + `${GROUP_NOTE[group]} in ${zone}; ${group}s without events are not listed.`;
}

/**
 * The customer's own events per epoch, counted from the receipts fetched (the newest of the
 * range), not the epoch's size, which counts every customer's events. When older events exist
 * beyond those fetched, the oldest epoch listed may hold more of them: shown as "≥ n" unless its
 * receipts say the whole epoch was counted.
 */
function fillEpochs(events: EventReceipt[], more: boolean, anchoring: string, several: boolean): void {
  const perEpoch = new Map<number | null, { n: number; status: string; root: string; size: number | null }>();
  for (const r of events) {
    const e = perEpoch.get(r.epoch) ?? { n: 0, status: r.status, root: r.root ?? '', size: r.tree_size ?? null };
    e.n++;
    // One receipt anchored means the epoch is (another fetched a moment earlier may say sealed).
    if (r.status === 'anchored') e.status = 'anchored';
    perEpoch.set(r.epoch, e);
  }
  const sealed = [...perEpoch.keys()].filter((k): k is number => k !== null).sort((a, b) => b - a);
  const oldest = sealed.at(-1);
  const rows = sealed.map((epoch) => {
    const e = perEpoch.get(epoch)!;
    const partial = more && epoch === oldest && e.n !== e.size;
    const status = e.status === 'anchored' ? 'anchored' : anchoring.startsWith('failed') ? 'failed (anchoring stopped)' : e.status;
    const tr = row([epoch, partial ? `≥ ${e.n}` : e.n, status, el('span', e.root, 'hash')], [0, 1]);
    tr.dataset.epoch = String(epoch);
    tr.lastElementChild!.classList.add('hash-cell');
    return tr;
  });
  const pending = perEpoch.get(null);
  if (pending) {
    const tr = row(['–', pending.n, 'not sealed yet', ''], [0, 1]);
    tr.dataset.epoch = 'pending';
    rows.unshift(tr);
  }
  $('epochs')
    .querySelector('tbody')!
    .replaceChildren(...rows);
  $('epochs-note').textContent = several
    ? 'Epochs are listed for one namespace at a time: enter a single namespace to see them.'
    : `Your events in each epoch, counted from the ${events.length === LATEST ? `${LATEST} newest` : events.length} events of this range listed below (an epoch's size counts every customer's events, not only yours).` +
      (more
        ? ' "≥" marks the oldest epoch listed: it may hold more of your events than those listed. Audit this period checks every event of the range.'
        : '');
}

function fillEvents(events: EventReceipt[]): void {
  $('events')
    .querySelector('tbody')!
    .replaceChildren(
      ...events.map((r) => {
        const link = el('a', `${r.status} receipt`);
        link.href = `/verify?event=${r.id}`;
        // A correction and a corrected version say so: the totals count only a chain's head.
        const action = el('span', r.event.action);
        if (r.event.kind) action.append(' ', el('em', `(${r.event.kind})`, 'muted'));
        if (r.corrected_by)
          action.append(' ', el('em', `(${r.corrected_by.kind === 'void' ? 'voided' : 'amended'} by ${r.corrected_by.id})`, 'muted'));
        return row([r.id, action, r.event.caller, r.event.units, formatIn(zone, r.event.ts_ms), link], [0, 3]);
      }),
    );
}

// ---- audit this period: every receipt checked here, the totals added up again

/** The period the usage page shows: an open end is the API's own default (0, 2^53 − 1). */
function period(): { from: number; to: number } | string {
  const from = instant('from');
  const to = instant('to');
  if (Number.isNaN(from) || Number.isNaN(to)) return 'From and To must be dates and times.';
  const p = { from: from ?? 0, to: to ?? Number.MAX_SAFE_INTEGER };
  return p.from < p.to ? p : 'From must be before To (the range includes From and excludes To).';
}

let auditing = false;

async function audit(): Promise<void> {
  if (auditing) return;
  const ns = $<HTMLInputElement>('namespace').value.trim();
  const result = $('audit-result');
  const problems = $('audit-problems');
  const table = $('audit-totals');
  problems.replaceChildren();
  table.hidden = true;
  result.className = '';
  result.dataset.state = '';
  const p = period();
  if (!ns || ns.includes(','))
    return void (result.textContent = 'Enter one namespace to audit (a period is audited one namespace at a time).');
  if (typeof p === 'string') return void (result.textContent = p);
  if (!keyInput.value.trim()) {
    keyInput.closest('.key')!.classList.add('needs-key');
    return void (result.textContent =
      'Enter your API key in the "API key" box at the top of this page: the audit reads every receipt with it.');
  }
  const view = await refreshLog();
  const given = witnesses();
  // Without a signed log there is nothing but the server's own roots: the audit says so loudly.
  const trustServer = view.kind !== 'key';
  const logKeys = view.kind === 'key' ? [view.pin.pin.vkey] : [];
  auditing = true;
  const button = $<HTMLButtonElement>('audit-button');
  button.disabled = true;
  const progress = $<HTMLProgressElement>('audit-progress');
  const count = $('audit-count');
  $('audit-run').hidden = false;
  const expected = lastTotal;
  // Determinate when the server's count is known (the usage shown), else an indeterminate bar.
  if (expected !== undefined && expected > 0) {
    progress.max = expected;
    progress.value = 0;
  } else progress.removeAttribute('value');
  count.textContent = 'starting…';
  result.textContent = '';
  try {
    const report = await auditPeriod({
      url: location.origin,
      key: keyInput.value.trim(),
      namespace: ns,
      from: p.from,
      to: p.to,
      logKeys,
      witnesses: given.vkeys,
      trustServer,
      fetch: (input, init) => fetch(input, init),
      onProgress: ({ pages, events }) => {
        if (expected !== undefined && expected > 0) progress.value = Math.min(events, expected);
        count.textContent = `${events}${expected !== undefined ? ` of ${expected}` : ''} receipts (${pages} page${pages === 1 ? '' : 's'})`;
      },
    });
    if (expected !== undefined && expected > 0) progress.value = expected;
    count.textContent = `${report.events} receipts checked (${report.pages} page${report.pages === 1 ? '' : 's'})`;
    showAudit(report, view);
  } catch (err) {
    result.className = 'bad';
    result.dataset.state = 'error';
    result.textContent = `The audit could not run: ${(err as Error).message}`;
  } finally {
    auditing = false;
    button.disabled = false;
  }
}

function showAudit(r: AuditReport, view: LogView): void {
  const result = $('audit-result');
  const against =
    r.trust === 'server'
      ? "against the server's own roots only (this server keeps no signed epoch log): nothing outside the server was checked"
      : `against checkpoints signed by the log key ${r.log_key ?? (view.kind === 'key' ? view.pin.pin.vkey : '')}${r.witnesses ? `, cosigned by ${r.witnesses} witness${r.witnesses === 1 ? '' : 'es'}` : ''}`;
  const summary = `${r.events} events, ${r.units} units (${r.billable_units} billable) in ${r.epochs} epoch${r.epochs === 1 ? '' : 's'}, ${r.checkpoints} checkpoint${r.checkpoints === 1 ? '' : 's'}`;
  result.dataset.state = r.ok ? (r.trust === 'server' ? 'server-only' : 'backed') : 'problems';
  result.className = !r.ok ? 'bad' : r.trust === 'server' ? 'server-only' : 'ok';
  result.textContent = r.ok
    ? r.trust === 'server'
      ? `Every receipt matches the server's own roots only, and the totals add up: ${summary}; checked ${against}.`
      : `Every unit is backed: ${summary}; checked ${against}.`
    : `${r.problems.length + r.problems_left_off} problem${r.problems.length + r.problems_left_off === 1 ? '' : 's'} found: ${summary}; checked ${against}.`;
  for (const w of r.warnings) result.append(el('br'), `⚠ ${w}`);

  const table = $('audit-totals');
  const server = r.server_totals;
  const line = (label: string, field: keyof AuditTotals, server: AuditTotals | null | undefined, mine: AuditTotals | undefined) => {
    const a = server ? String(server[field]) : '(none)';
    const b = mine ? String(mine[field]) : '0';
    const tr = row([label, a, b, a === b ? '✓ matches' : '✗ differs'], [1, 2]);
    tr.dataset.match = String(a === b);
    tr.lastElementChild!.className = a === b ? 'ok-text' : 'bad-text';
    return tr;
  };
  const rows = [
    line('Events', 'events', server, r.recomputed_totals),
    line('Units', 'units', server, r.recomputed_totals),
    line('Billable events', 'billable_events', server, r.recomputed_totals),
    line('Billable units', 'billable_units', server, r.recomputed_totals),
  ];
  const actions = [...new Set([...Object.keys(r.server_by_action ?? {}), ...Object.keys(r.by_action)])].sort();
  for (const a of actions) rows.push(line(`Units of ${a}`, 'units', r.server_by_action?.[a], r.by_action[a]));
  table.querySelector('tbody')!.replaceChildren(...rows);
  table.hidden = false;
  $('audit-problems').replaceChildren(
    ...r.problems.map((p) => {
      const li = el('li', undefined, 'bad-text');
      li.dataset.code = p.code;
      li.append(el('code', p.code, 'failure-code'), ` ${p.message}`);
      return li;
    }),
    ...(r.problems_left_off ? [el('li', `… and ${r.problems_left_off} more problems not listed`, 'bad-text')] : []),
  );
}

$('audit-button').addEventListener('click', () => void audit());

$('usage-form').addEventListener('submit', (e) => {
  e.preventDefault();
  if (applyZone()) void loadUsage();
});

// /verify?event=<id> fetches and verifies at once (with the key of this tab)
route();
// The log key is pinned the first time the page sees it, whichever view opened first.
if (location.pathname !== '/verify' || !new URLSearchParams(location.search).get('event')) void refreshLog();
const wanted = new URLSearchParams(location.search).get('event');
if (location.pathname === '/verify' && wanted) {
  $<HTMLInputElement>('event-id').value = wanted;
  void fetchReceipt(wanted);
}
