// runs.js — the Runs view: one API page (100 experiments) at a time, filtered by the API
// (status, sweep, arch, norm_type, placement) and, on the loaded page, by free text on the name;
// sorted client-side by any column; rows updated in place from the live event stream.
//
// DOM hooks (for the browser test):
//   #runs-table                      the table; tbody rows are tr[data-id][data-status][data-step]
//   td[data-col=<key>]               cells: id name arch norm_type placement n_layer seed status step
//                                    loss val_loss diverged_step sweep_id
//   #filter-sweep #filter-status #filter-arch #filter-type #filter-placement #filter-text   filters
//   #runs-count                      "<n> runs" shown (data-count = n)
//   #runs-page                       page number text; #runs-prev / #runs-next the pager buttons
//   #compare-selected                → #/compare?ids=…    #compare-sweep → #/compare?sweep=N
//   #report-sweep                    → #/sweeps/N/report
//   input.row-select[data-id]        row checkboxes;  #select-all the page's select-all box
//   #runs-error                      where a failed request's alert (role=alert) appears
// The view's state lives in the hash (#/runs?sweep=&status=&arch=&type=&placement=&q=&sort=&dir=),
// updated with replaceState so a filter change does not re-render the whole view.

import { get } from './api.js';
import { onEvent } from './live.js';
import { el, setChildren, fmtNum, fmtInt, debounce, errorAlert, STATUSES, NORM_TYPES, PLACEMENTS, ARCHES } from './util.js';

const PAGE_SIZE = 100;

const STATUS_RANK = { running: 0, queued: 1, interrupted: 2, diverged: 3, dead: 4, failed: 5, cancelled: 6, succeeded: 7 };

// key: the item field (and data-col); num: numeric sort and right-aligned
const COLUMNS = [
	{ key: 'id', label: 'ID', num: true },
	{ key: 'name', label: 'Name' },
	{ key: 'arch', label: 'Arch', title: 'model.arch' },
	{ key: 'norm_type', label: 'Norm type' },
	{ key: 'placement', label: 'Placement' },
	{ key: 'n_layer', label: 'Depth', num: true, title: 'n_layer' },
	{ key: 'seed', label: 'Seed', num: true },
	{ key: 'status', label: 'Status' },
	{ key: 'step', label: 'Step', num: true },
	{ key: 'loss', label: 'Last loss', num: true },
	{ key: 'val_loss', label: 'Val loss', num: true },
	{ key: 'diverged_step', label: 'Diverged at', num: true, title: 'divergence step' },
	{ key: 'sweep_id', label: 'Sweep', num: true },
];
const SORT_KEYS = new Set(COLUMNS.map((c) => c.key));

// The selection survives page turns, filter changes and visits to other views.
const selected = new Set();

export async function renderRuns(root, params) {
	params = params || new URLSearchParams();
	const num = (v) => (/^\d+$/.test(v || '') && Number(v) > 0 ? v : '');
	const pick = (v, list) => (list.includes(v) ? v : '');
	const st = {
		sweep: num(params.get('sweep')),
		status: pick(params.get('status'), STATUSES),
		arch: pick(params.get('arch'), ARCHES),
		type: pick(params.get('type') || params.get('norm_type'), NORM_TYPES),
		placement: pick(params.get('placement'), PLACEMENTS),
		q: params.get('q') || '',
		sort: SORT_KEYS.has(params.get('sort')) ? params.get('sort') : 'id',
		dir: params.get('dir') === 'desc' ? 'desc' : 'asc',
		cur: null,          // page_token of the page shown (null: the first)
		prev: [],           // page tokens of the pages before it
		next: null,         // next_page_token of the page shown
		items: [],          // the page's experiments, API order
		loading: false,
	};
	const rows = new Map();  // id → {tr, item, cells: {key: td}, box}
	let seq = 0;             // request sequence: a late answer to an old query is dropped
	let disposed = false;

	// ---- filters ------------------------------------------------------------------------------
	const option = (v, label, cur) => el('option', { value: v, selected: v === cur }, label);
	const fSweep = el('input', { id: 'filter-sweep', type: 'number', min: '1', step: '1', inputmode: 'numeric',
		value: st.sweep, placeholder: 'any', class: 'f-sweep' });
	const fStatus = el('select', { id: 'filter-status' }, option('', 'all', st.status),
		STATUSES.map((s) => option(s, s, st.status)));
	const fArch = el('select', { id: 'filter-arch' }, option('', 'all', st.arch),
		ARCHES.map((s) => option(s, s, st.arch)));
	const fType = el('select', { id: 'filter-type' }, option('', 'all', st.type),
		NORM_TYPES.map((s) => option(s, s, st.type)));
	const fPlacement = el('select', { id: 'filter-placement' }, option('', 'all', st.placement),
		PLACEMENTS.map((s) => option(s, s, st.placement)));
	const fText = el('input', { id: 'filter-text', type: 'search', value: st.q, placeholder: 'name contains…',
		autocomplete: 'off', spellcheck: 'false' });
	const field = (input, label, hint) => el('div', { class: 'field' },
		el('label', { for: input.id }, label), input, hint || null);
	const sweepHint = el('span', { class: 'field-error', id: 'filter-sweep-error', role: 'status' });
	fSweep.setAttribute('aria-describedby', 'filter-sweep-error');
	const resetBtn = el('button', { type: 'button', id: 'filter-reset', class: 'btn-quiet' }, 'Reset filters');

	const filters = el('form', { class: 'filters', id: 'runs-filters', role: 'search', 'aria-label': 'Filter runs',
		on: { submit: (e) => e.preventDefault() } },
		field(fSweep, 'Sweep', sweepHint), field(fStatus, 'Status'), field(fArch, 'Arch'), field(fType, 'Norm type'),
		field(fPlacement, 'Placement'), field(fText, 'Name contains'),
		el('div', { class: 'field field-button' }, resetBtn));

	// ---- actions ------------------------------------------------------------------------------
	const selInfo = el('span', { id: 'selection-count', class: 'muted', 'aria-live': 'polite' });
	const compareBtn = el('button', { type: 'button', id: 'compare-selected', class: 'btn-primary' }, 'Compare selected');
	const clearSelBtn = el('button', { type: 'button', id: 'clear-selection', class: 'btn-quiet' }, 'Clear selection');
	const sweepBtn = el('button', { type: 'button', id: 'compare-sweep', hidden: true }, 'Compare whole sweep');
	const reportBtn = el('button', { type: 'button', id: 'report-sweep', hidden: true }, 'Report');
	const count = el('span', { id: 'runs-count', class: 'runs-count', 'aria-live': 'polite', 'data-count': '0' }, '');
	const actions = el('div', { class: 'toolbar' }, count, el('span', { class: 'spacer' }),
		selInfo, clearSelBtn, compareBtn, sweepBtn, reportBtn);

	// ---- table --------------------------------------------------------------------------------
	const selectAll = el('input', { type: 'checkbox', id: 'select-all', 'aria-label': 'Select all runs on this page' });
	const headRow = el('tr', null, el('th', { scope: 'col', class: 'col-select' }, selectAll));
	const headers = new Map();
	for (const c of COLUMNS) {
		const btn = el('button', { type: 'button', class: 'sort-btn', 'data-sort': c.key, title: c.title ? `Sort by ${c.title}` : null },
			c.label, el('span', { class: 'sort-ind', 'aria-hidden': 'true' }));
		const th = el('th', { scope: 'col', class: ['col-' + c.key, c.num ? 'num' : ''], 'aria-sort': 'none' }, btn);
		headers.set(c.key, th);
		headRow.appendChild(th);
		btn.addEventListener('click', () => {
			if (st.sort === c.key) st.dir = st.dir === 'asc' ? 'desc' : 'asc';
			else { st.sort = c.key; st.dir = 'asc'; }
			syncHash();
			renderBody();
		});
	}
	const tbody = el('tbody');
	const table = el('table', { id: 'runs-table', class: 'runs-table' },
		el('caption', { class: 'visually-hidden' }, 'Experiments; column headers sort the loaded page'),
		el('thead', null, headRow), tbody);
	const wrap = el('div', { class: 'table-wrap', id: 'runs-table-wrap' }, table);
	const empty = el('p', { class: 'empty', id: 'runs-empty', hidden: true }, '');

	const prevBtn = el('button', { type: 'button', id: 'runs-prev' }, '← Previous page');
	const nextBtn = el('button', { type: 'button', id: 'runs-next' }, 'Next page →');
	const pageInfo = el('span', { id: 'runs-page', class: 'muted', 'aria-live': 'polite' });
	const pager = el('nav', { class: 'pager', 'aria-label': 'Pages' }, prevBtn, pageInfo, nextBtn);
	const errBox = el('div', { id: 'runs-error' });

	setChildren(root,
		el('div', { class: 'view-head' }, el('h1', null, 'Runs'),
			el('a', { href: '#/submit', class: 'btn-link' }, 'Submit a run or sweep')),
		filters, actions, errBox, wrap, empty, pager);

	// ---- state → URL --------------------------------------------------------------------------
	function syncHash() {
		// only while this view is on screen: after the user navigates away, rewriting the address
		// would pull them back to the runs list
		if (disposed || !location.hash.startsWith('#/runs') && location.hash !== '' && location.hash !== '#/') return;
		const p = new URLSearchParams();
		if (st.sweep) p.set('sweep', st.sweep);
		if (st.status) p.set('status', st.status);
		if (st.arch) p.set('arch', st.arch);
		if (st.type) p.set('type', st.type);
		if (st.placement) p.set('placement', st.placement);
		if (st.q) p.set('q', st.q);
		if (st.sort !== 'id' || st.dir !== 'asc') { p.set('sort', st.sort); p.set('dir', st.dir); }
		const qs = p.toString();
		const h = '#/runs' + (qs ? '?' + qs : '');
		if (location.hash !== h) history.replaceState(history.state, '', h);
	}

	// ---- loading ------------------------------------------------------------------------------
	async function load({ keepFocus = false } = {}) {
		const my = ++seq;
		st.loading = true;
		table.setAttribute('aria-busy', 'true');
		prevBtn.disabled = nextBtn.disabled = true;
		try {
			const page = await get('/experiments', {
				page_size: PAGE_SIZE, page_token: st.cur || undefined,
				status: st.status, sweep: st.sweep, arch: st.arch, norm_type: st.type, placement: st.placement,
			});
			if (my !== seq || disposed) return;
			st.loading = false;
			errBox.replaceChildren();
			st.items = Array.isArray(page && page.items) ? page.items : [];
			st.next = page && page.next_page_token ? page.next_page_token : null;
			renderBody({ keepFocus });
		} catch (err) {
			if (my !== seq || disposed) return;
			st.loading = false;
			errBox.replaceChildren(errorAlert(err));
			st.items = [];
			st.next = null;
			renderBody();
		} finally {
			if (my === seq && !disposed) {
				st.loading = false;
				table.removeAttribute('aria-busy');
				updatePager();
			}
		}
	}

	function requery() {
		st.cur = null;
		st.prev = [];
		syncHash();
		updateSweepButton();
		load();
	}

	// A refetch of the page shown (new runs arrived): debounced so a sweep of 500 cells
	// queued at once costs one request.
	const refetch = debounce(() => {
		if (disposed) return;
		if (st.loading) refetch();          // a load is in flight: look again after it
		else load({ keepFocus: true });
	}, 800);

	function updatePager() {
		prevBtn.disabled = st.prev.length === 0;
		nextBtn.disabled = !st.next;
		pageInfo.textContent = `Page ${st.prev.length + 1}`;
	}

	// ---- rendering ----------------------------------------------------------------------------
	function cmp(a, b) {
		const k = st.sort;
		let x = a[k], y = b[k];
		if (k === 'status') { x = STATUS_RANK[x] ?? 99; y = STATUS_RANK[y] ?? 99; }
		const nx = x === null || x === undefined || (typeof x === 'number' && Number.isNaN(x));
		const ny = y === null || y === undefined || (typeof y === 'number' && Number.isNaN(y));
		if (nx || ny) return nx && ny ? a.id - b.id : nx ? 1 : -1;     // missing values last, both ways
		let r;
		if (typeof x === 'number' && typeof y === 'number') r = x - y;
		else r = String(x).localeCompare(String(y), undefined, { numeric: true, sensitivity: 'base' });
		if (r === 0) r = a.id - b.id;
		return st.dir === 'asc' ? r : -r;
	}

	function visibleItems() {
		const q = st.q.trim().toLowerCase();
		const list = q ? st.items.filter((it) => String(it.name || '').toLowerCase().includes(q)) : st.items.slice();
		return list.sort(cmp);
	}

	function renderBody({ keepFocus = false } = {}) {
		// keep focus on the same control of the same run across a rebuild
		let focusId = null, focusCol = null;
		const ae = document.activeElement;
		if (keepFocus && ae && tbody.contains(ae)) {
			const tr = ae.closest('tr[data-id]');
			const td = ae.closest('td[data-col]');
			focusId = tr && tr.dataset.id;
			focusCol = td && td.dataset.col;
		}
		for (const [key, th] of headers) {
			const on = key === st.sort;
			th.setAttribute('aria-sort', on ? (st.dir === 'asc' ? 'ascending' : 'descending') : 'none');
			th.querySelector('.sort-ind').textContent = on ? (st.dir === 'asc' ? '▲' : '▼') : '';
		}
		rows.clear();
		const list = visibleItems();
		const frag = document.createDocumentFragment();
		for (const it of list) frag.appendChild(buildRow(it));
		tbody.replaceChildren(frag);
		const n = list.length;
		count.dataset.count = String(n);
		count.textContent = `${n} run${n === 1 ? '' : 's'}` +
			(st.q.trim() && n !== st.items.length ? ` (of ${st.items.length} on this page)` : '');
		empty.hidden = n !== 0 || st.loading;
		empty.textContent = st.items.length === 0
			? (hasFilters() ? 'No runs match these filters.' : 'No runs yet. Submit one from the Submit page.')
			: 'No run on this page has a name containing that text.';
		updateSelection();
		if (focusId) {
			const tr = tbody.querySelector(`tr[data-id="${CSS.escape(focusId)}"]`);
			const target = tr && (tr.querySelector(`td[data-col="${CSS.escape(focusCol || '')}"] a, td[data-col="${CSS.escape(focusCol || '')}"] input`) ||
				tr.querySelector('input, a'));
			if (target) target.focus({ preventScroll: true });
		}
	}

	function hasFilters() { return !!(st.sweep || st.status || st.arch || st.type || st.placement); }

	function buildRow(it) {
		const id = String(it.id);
		const name = it.name || `run ${id}`;
		const box = el('input', { type: 'checkbox', class: 'row-select', 'data-id': id,
			checked: selected.has(Number(it.id)), 'aria-label': `Select run ${name} (#${id})` });
		const cells = {};
		const td = (key, ...kids) => (cells[key] = el('td', { 'data-col': key,
			class: COLUMNS.find((c) => c.key === key).num ? 'num' : null }, ...kids));
		const tr = el('tr', { 'data-id': id, 'data-status': it.status || '' },
			el('td', { class: 'col-select' }, box),
			td('id', id),
			td('name', el('a', { href: `#/run/${encodeURIComponent(id)}`, class: 'run-link' }, name)),
			td('arch', it.arch || '—'),
			td('norm_type', it.norm_type || '—'),
			td('placement', it.placement || '—'),
			td('n_layer', fmtInt(it.n_layer)),
			td('seed', it.seed === null || it.seed === undefined ? '—' : String(it.seed)),
			td('status'), td('step'), td('loss'), td('val_loss'), td('diverged_step'),
			td('sweep_id', it.sweep_id !== null && it.sweep_id !== undefined
				? [el('a', { href: `#/runs?sweep=${encodeURIComponent(it.sweep_id)}`, class: 'sweep-link',
					'aria-label': `Show the runs of sweep ${it.sweep_id}` }, String(it.sweep_id)),
				it.cell !== null && it.cell !== undefined ? el('span', { class: 'muted cell-no', title: 'cell' }, ` · ${it.cell}`) : null]
				: '—'));
		const ref = { tr, item: it, cells, box };
		rows.set(Number(it.id), ref);
		fillDynamic(ref);
		return tr;
	}

	// The cells a live event changes: status (+ progress bar), step, losses, divergence.
	function fillDynamic(ref) {
		const it = ref.item, c = ref.cells, s = it.status || 'unknown';
		ref.tr.dataset.status = s;
		ref.tr.dataset.step = String(Number(it.step) || 0);
		ref.tr.className = `status-row-${s}`;
		const steps = Number(it.steps) || 0, step = Number(it.step) || 0;
		const hl = it.health || {};
		const badge = el('span', { class: `badge status-${s}` },
			s === 'diverged' ? `diverged @ step ${fmtInt(it.diverged_step ?? it.step)}`
				: s === 'dead' && hl.step ? `dead @ step ${fmtInt(hl.step)}` : s);
		if ((s === 'failed' || s === 'dead') && it.error) badge.title = String(it.error);
		const kids = [badge];
		// run health (dead / stalled / spike) on a run whose status does not already say it:
		// a dead run under on_dead=continue, or a stalled one, must not pass for a good one
		if (hl.status && hl.status !== 'ok' && hl.status !== s) {
			kids.push(el('span', { class: `badge health health-${hl.status}`, title: hl.reason || '' },
				hl.step ? `${hl.status} @ step ${fmtInt(hl.step)}` : hl.status));
		}
		if (s === 'running' && steps > 0) {
			const pct = Math.max(0, Math.min(100, Math.round((100 * step) / steps)));
			kids.push(el('progress', { max: String(steps), value: String(Math.min(step, steps)), class: 'run-progress',
				'aria-label': `Progress of ${it.name || 'run ' + it.id}: step ${step} of ${steps}` }),
			el('span', { class: 'pct' }, `${pct}%`));
		}
		setChildren(c.status, el('div', { class: 'status-cell' }, kids));
		c.step.textContent = fmtInt(step);
		c.step.title = steps ? `step ${fmtInt(step)} of ${fmtInt(steps)}` : '';
		c.loss.textContent = fmtNum(it.loss);
		c.val_loss.textContent = fmtNum(it.val_loss);
		c.diverged_step.textContent = it.diverged_step !== null && it.diverged_step !== undefined && it.diverged_step > 0
			? fmtInt(it.diverged_step) : '—';
		c.diverged_step.classList.toggle('diverged', s === 'diverged');
	}

	// ---- selection ----------------------------------------------------------------------------
	function updateSelection() {
		const boxes = [...tbody.querySelectorAll('input.row-select')];
		const on = boxes.filter((b) => b.checked).length;
		selectAll.checked = boxes.length > 0 && on === boxes.length;
		selectAll.indeterminate = on > 0 && on < boxes.length;
		selectAll.disabled = boxes.length === 0;
		const n = selected.size;
		selInfo.textContent = n ? `${n} selected` : '';
		compareBtn.disabled = n === 0;
		compareBtn.textContent = n ? `Compare selected (${n})` : 'Compare selected';
		clearSelBtn.hidden = n === 0;
	}

	tbody.addEventListener('change', (e) => {
		const b = e.target;
		if (!(b instanceof HTMLInputElement) || !b.classList.contains('row-select')) return;
		const id = Number(b.dataset.id);
		if (b.checked) selected.add(id); else selected.delete(id);
		updateSelection();
	});
	selectAll.addEventListener('change', () => {
		for (const b of tbody.querySelectorAll('input.row-select')) {
			b.checked = selectAll.checked;
			const id = Number(b.dataset.id);
			if (b.checked) selected.add(id); else selected.delete(id);
		}
		updateSelection();
	});
	clearSelBtn.addEventListener('click', () => {
		selected.clear();
		for (const b of tbody.querySelectorAll('input.row-select')) b.checked = false;
		updateSelection();
		compareBtn.focus();
	});
	compareBtn.addEventListener('click', () => {
		if (!selected.size) return;
		const ids = [...selected].sort((a, b) => a - b);
		location.hash = `#/compare?ids=${ids.join(',')}`;
	});
	function updateSweepButton() {
		sweepBtn.hidden = !st.sweep;
		sweepBtn.textContent = st.sweep ? `Compare whole sweep ${st.sweep}` : 'Compare whole sweep';
		reportBtn.hidden = !st.sweep;
		reportBtn.textContent = st.sweep ? `Report of sweep ${st.sweep}` : 'Report';
	}
	reportBtn.addEventListener('click', () => {
		if (st.sweep) location.hash = `#/sweeps/${encodeURIComponent(st.sweep)}/report`;
	});
	sweepBtn.addEventListener('click', () => {
		if (st.sweep) location.hash = `#/compare?sweep=${encodeURIComponent(st.sweep)}`;
	});

	// ---- filter events ------------------------------------------------------------------------
	function sweepChanged() {
		const v = fSweep.value.trim();
		if (v !== '' && !/^\d+$/.test(v) || v === '0') {
			sweepHint.textContent = 'a sweep id is a whole number from 1';
			fSweep.setAttribute('aria-invalid', 'true');
			return;
		}
		sweepHint.textContent = '';
		fSweep.removeAttribute('aria-invalid');
		if (v === st.sweep) return;
		st.sweep = v;
		requery();
	}
	const sweepTyped = debounce(sweepChanged, 500);
	fSweep.addEventListener('input', sweepTyped);
	fSweep.addEventListener('change', () => { sweepTyped.cancel(); sweepChanged(); });
	fStatus.addEventListener('change', () => { st.status = fStatus.value; requery(); });
	fArch.addEventListener('change', () => { st.arch = fArch.value; requery(); });
	fType.addEventListener('change', () => { st.type = fType.value; requery(); });
	fPlacement.addEventListener('change', () => { st.placement = fPlacement.value; requery(); });
	const textTyped = debounce(() => { st.q = fText.value; syncHash(); renderBody(); }, 120);
	fText.addEventListener('input', textTyped);
	resetBtn.addEventListener('click', () => {
		fSweep.value = ''; fStatus.value = ''; fArch.value = ''; fType.value = ''; fPlacement.value = ''; fText.value = '';
		sweepHint.textContent = '';
		fSweep.removeAttribute('aria-invalid');
		st.sweep = st.status = st.arch = st.type = st.placement = st.q = '';
		requery();
	});
	prevBtn.addEventListener('click', () => {
		if (!st.prev.length) return;
		st.next = st.cur;
		st.cur = st.prev.pop();
		load();
		wrap.scrollTop = 0;
	});
	nextBtn.addEventListener('click', () => {
		if (!st.next) return;
		st.prev.push(st.cur);
		st.cur = st.next;
		load();
		wrap.scrollTop = 0;
	});

	// ---- live updates -------------------------------------------------------------------------
	// Progress events arrive often (every probe.every steps of every running run); they are
	// merged per run and applied once per animation frame.
	const pending = new Map();
	let frame = 0;
	function queueUpdate(id, patch) {
		const ref = rows.get(Number(id));
		if (!ref) return false;
		const p = pending.get(ref) || {};
		Object.assign(p, patch);
		pending.set(ref, p);
		if (!frame) frame = requestAnimationFrame(flush);
		return true;
	}
	function flush() {
		frame = 0;
		for (const [ref, p] of pending) {
			if (rows.get(Number(ref.item.id)) !== ref) continue;   // row rebuilt meanwhile
			Object.assign(ref.item, p);
			fillDynamic(ref);
		}
		pending.clear();
	}
	// New runs sort after existing ones (the API lists by id), so they can only appear on the
	// last page: refetch that one, never the others.
	const onLastPage = () => !st.next;
	const has = (v) => v !== null && v !== undefined;

	const unsub = [
		onEvent('experiment.progress', (d) => {
			const patch = { step: d.step };
			if (has(d.loss)) patch.loss = d.loss;
			if (has(d.val_loss)) patch.val_loss = d.val_loss;
			const ref = rows.get(Number(d.id));
			if (ref && ref.item.status === 'queued') patch.status = 'running';
			queueUpdate(d.id, patch);
		}),
		onEvent('experiment.started', (d) => {
			const patch = { status: 'running' };
			if (has(d.step)) patch.step = d.step;
			queueUpdate(d.id, patch);
		}),
		onEvent('experiment.finished', (d) => {
			const patch = { status: d.status || 'failed' };
			if (has(d.step)) patch.step = d.step;
			if (has(d.diverged_step) && d.diverged_step > 0) patch.diverged_step = d.diverged_step;
			if (has(d.error) && d.error !== '') patch.error = d.error;
			queueUpdate(d.id, patch);
		}),
		onEvent('experiment.health', (d) => {
			queueUpdate(d.id, { health: { status: d.health, step: d.step, reason: d.reason } });
		}),
		onEvent('experiment.queued', (d) => {
			const known = queueUpdate(d.id, { status: 'queued', step: 0, loss: null, val_loss: null,
				diverged_step: null, error: null, health: { status: 'ok', step: null, reason: null } });
			// a new single run (a sweep's cells come as sweep.queued): never in a sweep's list
			if (!known && onLastPage() && !st.sweep) refetch();
		}),
		onEvent('experiment.deleted', (d) => {
			const ref = rows.get(Number(d.id));
			if (!ref) return;
			rows.delete(Number(d.id));
			selected.delete(Number(d.id));
			st.items = st.items.filter((it) => it !== ref.item);
			ref.tr.remove();
			const n = tbody.rows.length;
			count.dataset.count = String(n);
			count.textContent = `${n} run${n === 1 ? '' : 's'}`;
			updateSelection();
		}),
		onEvent('sweep.queued', (d) => {
			if (onLastPage() && (!st.sweep || String(d.id) === st.sweep)) refetch();
		}),
	];

	updateSweepButton();
	updateSelection();
	syncHash();
	await load();

	return () => {
		disposed = true;
		refetch.cancel();
		sweepTyped.cancel();
		textTyped.cancel();
		if (frame) cancelAnimationFrame(frame);
		for (const u of unsub) u();
	};
}
