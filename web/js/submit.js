// submit.js — the Submit view: edit an experiment spec or a sweep as JSON, dry-run it (the
// canonical hash, or the sweep's expansion count) and submit it with the API token.
//
// Errors: invalid JSON is caught here, before any request, with its line and column. The API's
// problem answers list JSON Pointers; each is listed with its message and the offending key is
// marked in the editor (a highlight layer behind the textarea) and selected on click. A sweep's
// spec errors point into the expanded cells (/cells/3/model/n_head): they are mapped back to the
// request body (/base/model/n_head, or the grid/zip axis "model.n_head").
//
// DOM hooks: #spec-input (textarea), input[name=kind] (#kind-experiment, #kind-sweep),
// #dry-run, #submit-run, #format-json, #reset-example, #template-arch (the example's arch), #submit-result (role=status: outcome),
// #spec-errors (role=alert; li[data-pointer] per problem, data-code on the container),
// mark.err-mark[data-pointer] in #spec-backdrop.

import { post, getToken, ApiError } from './api.js';
import { el, setChildren, fmtBytes, fmtInt, describeError, ARCHES, NORM_TYPES, archInfo } from './util.js';

// One template per arch (the schema's list), and a sweep over every arch × norm type. An arch
// whose data are images has no sequence length to set; its norm type is the one the arch
// defaults to (llama: rmsnorm).
function example(kind, arch) {
	const info = archInfo(arch);
	const text = !info || info.data === 'text';
	const model = { n_layer: 4, d_model: 64, n_head: 4, ...(text ? { seq_len: 64 } : {}) };
	if (kind === 'sweep') {
		return {
			name: 'archs-norms-d4',
			base: { model: { n_layer: 4, d_model: 64, n_head: 4 }, train: { steps: 500, batch_size: 8, lr: 0.001 } },
			grid: { 'model.arch': ARCHES.slice(), 'norm.type': NORM_TYPES.slice() },
			seeds: [1],
		};
	}
	// gpt keeps the example it always had (DyT, the seed paper's norm) while the engine has it
	const def = (info && info.defaults && info.defaults.norm && info.defaults.norm.type) || NORM_TYPES[0];
	const type = arch === 'gpt' && NORM_TYPES.includes('dyt') ? 'dyt' : def;
	return {
		name: `${arch === 'gpt' ? '' : arch + '-'}${type}-pre-d4`,
		model: arch === 'gpt' ? model : { arch, ...model },
		norm: { type, placement: 'pre' },
		train: { steps: 500, batch_size: text ? 8 : 64, lr: 0.001 },
		seed: 1,
	};
}
const exampleText = (kind, arch = 'gpt') => JSON.stringify(example(kind, arch), null, 2);
const DRAFT_KEY = 'normlab.submit.draft';

// ---- a JSON scanner that remembers where every value is ----------------------------------------

// Returns Map(pointer → {keyStart, keyEnd, valStart, valEnd}) for every object member and array
// element; throws an Error with .pos (offset) and a message on malformed JSON.
export function locateJson(text) {
	const map = new Map();
	let i = 0;
	const n = text.length;
	const fail = (msg) => { const e = new Error(msg); e.pos = Math.min(i, n); throw e; };
	const ws = () => { while (i < n && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++; };
	const esc = (k) => k.replace(/~/g, '~0').replace(/\//g, '~1');
	function str() {
		const s = i++;
		while (i < n) {
			const c = text[i];
			if (c === '"') {
				i++;
				try { return { start: s, end: i, value: JSON.parse(text.slice(s, i)) }; } catch { i = s; fail('bad escape in string'); }
			}
			if (c === '\\') { i += 2; continue; }
			if (c < ' ') fail('control character inside a string (a string cannot span lines)');
			i++;
		}
		i = s;
		fail('unterminated string');
	}
	const NUM = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
	function value(ptr, depth) {
		if (depth > 512) fail('nested too deeply');
		ws();
		const start = i;
		if (i >= n) fail('unexpected end of input (a value is missing)');
		const c = text[i];
		if (c === '{') {
			i++; ws();
			if (text[i] === '}') { i++; return [start, i]; }
			for (;;) {
				ws();
				if (text[i] !== '"') fail(i >= n ? "unexpected end of input (missing '}')" : 'expected a "key" in double quotes');
				const k = str();
				ws();
				if (text[i] !== ':') fail(`expected ':' after the key ${JSON.stringify(k.value)}`);
				i++;
				const p = `${ptr}/${esc(k.value)}`;
				const [vs, ve] = value(p, depth + 1);
				map.set(p, { keyStart: k.start, keyEnd: k.end, valStart: vs, valEnd: ve });
				ws();
				if (text[i] === ',') { i++; ws(); if (text[i] === '}') fail("trailing comma before '}'"); continue; }
				if (text[i] === '}') { i++; return [start, i]; }
				fail(i >= n ? "unexpected end of input (missing '}')" : "expected ',' or '}' after a member");
			}
		}
		if (c === '[') {
			i++; ws();
			if (text[i] === ']') { i++; return [start, i]; }
			for (let k = 0; ; k++) {
				const p = `${ptr}/${k}`;
				const [vs, ve] = value(p, depth + 1);
				map.set(p, { keyStart: vs, keyEnd: ve, valStart: vs, valEnd: ve });
				ws();
				if (text[i] === ',') { i++; ws(); if (text[i] === ']') fail("trailing comma before ']'"); continue; }
				if (text[i] === ']') { i++; return [start, i]; }
				fail(i >= n ? "unexpected end of input (missing ']')" : "expected ',' or ']' after an element");
			}
		}
		if (c === '"') { const s = str(); return [s.start, s.end]; }
		NUM.lastIndex = i;
		const m = NUM.exec(text);
		if (m && m[0].length && m[0] !== '-') { i += m[0].length; return [start, i]; }
		for (const lit of ['true', 'false', 'null']) {
			if (text.startsWith(lit, i)) { i += lit.length; return [start, i]; }
		}
		fail(c === "'" ? 'strings need double quotes' : `unexpected character ${JSON.stringify(c)}`);
	}
	value('', 0);
	ws();
	if (i < n) fail('unexpected text after the end of the JSON value');
	return map;
}

// 1-based line and column of an offset.
function lineCol(text, pos) {
	let line = 1, last = -1;
	for (let k = 0; k < pos && k < text.length; k++) if (text[k] === '\n') { line++; last = k; }
	return { line, col: pos - last };
}

const unesc = (s) => s.replace(/~1/g, '/').replace(/~0/g, '~');
const escSeg = (s) => s.replace(/~/g, '~0').replace(/\//g, '~1');

// Where in `text` (located by `map`) the API's pointer `ptr` is: {start, end, exact} or null.
function findPointer(text, map, ptr) {
	if (typeof ptr !== 'string') return null;
	const cands = [ptr];
	const cell = /^\/cells\/\d+(\/.*)?$/.exec(ptr);
	if (cell) {
		const rest = cell[1] || '';
		cands.push('/base' + rest);
		const segs = rest.split('/').slice(1).map(unesc);
		for (let j = segs.length; j >= 1; j--) {
			const dotted = escSeg(segs.slice(0, j).join('.'));
			cands.push('/grid/' + dotted, '/zip/' + dotted);
		}
		if (segs[0] === 'seed') cands.push('/seeds');
	}
	const range = (loc, exact) => {
		// the key and a short value; only the key of a long or multi-line value
		const whole = loc.valEnd - loc.keyStart < 160 && !text.slice(loc.keyStart, loc.valEnd).includes('\n');
		return { start: loc.keyStart, end: whole ? loc.valEnd : loc.keyEnd, exact };
	};
	for (const c of cands) if (map.has(c)) return range(map.get(c), true);
	// the key itself is missing (e.g. a required member): the nearest parent that exists
	for (const c of cands) {
		let p = c;
		while (p.lastIndexOf('/') > 0) {
			p = p.slice(0, p.lastIndexOf('/'));
			if (map.has(p)) return { ...range(map.get(p), false), end: map.get(p).keyEnd };
		}
	}
	// last resort: the last segment as a key anywhere in the text
	const last = unesc(ptr.split('/').pop() || '');
	if (last) {
		const k = text.indexOf(JSON.stringify(last));
		if (k >= 0) return { start: k, end: k + JSON.stringify(last).length, exact: false };
	}
	return null;
}

// ---- the view ---------------------------------------------------------------------------------

export function renderSubmit(root) {
	let draft = null;
	try { draft = JSON.parse(sessionStorage.getItem(DRAFT_KEY) || 'null'); } catch { draft = null; }
	let kind = draft && (draft.kind === 'sweep' || draft.kind === 'experiment') ? draft.kind : 'experiment';
	const initial = draft && typeof draft.text === 'string' && draft.text.trim() ? draft.text : exampleText(kind);

	let marks = [];          // [{start, end, pointer}] shown in the backdrop
	let lastProblems = [];   // the API's errors shown, re-marked as the text is edited
	let busy = false;

	const radio = (k, label) => el('label', { class: 'radio' },
		el('input', { type: 'radio', name: 'kind', id: `kind-${k}`, value: k, checked: kind === k }), ' ', label);
	const kindSet = el('fieldset', { class: 'kind' }, el('legend', null, 'Submit as'),
		radio('experiment', 'one experiment (spec)'), radio('sweep', 'a sweep (base + grid/zip/seeds)'));

	const ta = el('textarea', { id: 'spec-input', class: 'editor-input', wrap: 'off', spellcheck: 'false',
		autocapitalize: 'off', autocomplete: 'off', rows: '22', 'aria-describedby': 'spec-help spec-errors' });
	ta.value = initial;
	const backdrop = el('pre', { id: 'spec-backdrop', class: 'editor-backdrop', 'aria-hidden': 'true' });
	const editor = el('div', { class: 'editor' }, backdrop, ta);
	const help = el('p', { id: 'spec-help', class: 'muted small' },
		'Every field has a default, so {} is a valid spec; unknown fields are errors. Ctrl+Enter runs a dry run.');

	const dryBtn = el('button', { type: 'button', id: 'dry-run' }, 'Dry run');
	const submitBtn = el('button', { type: 'button', id: 'submit-run', class: 'btn-primary' }, 'Submit');
	const formatBtn = el('button', { type: 'button', id: 'format-json', class: 'btn-quiet' }, 'Format JSON');
	const resetBtn = el('button', { type: 'button', id: 'reset-example', class: 'btn-quiet' }, 'Reset to example');
	let arch = ARCHES.includes('gpt') ? 'gpt' : ARCHES[0];
	const archSel = el('select', { id: 'template-arch', 'aria-label': 'Example for arch' },
		ARCHES.map((a) => el('option', { value: a, selected: a === arch }, a)));
	const errors = el('div', { id: 'spec-errors', class: 'spec-errors' });
	const result = el('div', { id: 'submit-result', class: 'submit-result', role: 'status', 'aria-live': 'polite' });

	setChildren(root,
		el('div', { class: 'view-head' }, el('h1', null, 'Submit')),
		el('form', { class: 'submit-form', id: 'submit-form', on: { submit: (e) => e.preventDefault() } },
			kindSet,
			el('div', { class: 'field field-editor' },
				el('label', { for: 'spec-input' }, 'Spec or sweep JSON'), editor, help),
			el('div', { class: 'toolbar' }, dryBtn, submitBtn, el('span', { class: 'spacer' }), formatBtn,
				el('label', { for: 'template-arch', class: 'muted small' }, 'example for'), archSel, resetBtn)),
		errors, result);

	// ---- editor highlight layer ----------------------------------------------------------------
	function paintBackdrop() {
		const text = ta.value;
		const frag = document.createDocumentFragment();
		let at = 0;
		const sorted = marks.slice().sort((a, b) => a.start - b.start);
		for (const m of sorted) {
			if (m.start < at) continue;            // overlapping: the earlier mark wins
			frag.appendChild(document.createTextNode(text.slice(at, m.start)));
			const end = Math.max(m.end, m.start + 1);
			frag.appendChild(el('mark', { class: 'err-mark', 'data-pointer': m.pointer }, text.slice(m.start, end) || ' '));
			at = end;
		}
		frag.appendChild(document.createTextNode(text.slice(at) + '\n '));
		backdrop.replaceChildren(frag);
		syncScroll();
	}
	function syncScroll() { backdrop.scrollTop = ta.scrollTop; backdrop.scrollLeft = ta.scrollLeft; }
	ta.addEventListener('scroll', syncScroll);

	function select(start, end, focus = true) {
		if (focus) ta.focus({ preventScroll: true });
		ta.setSelectionRange(start, end);
		// bring the line into view (setSelectionRange alone does not always scroll)
		const { line } = lineCol(ta.value, start);
		const lh = parseFloat(getComputedStyle(ta).lineHeight) || 20;
		const top = (line - 1) * lh;
		if (top < ta.scrollTop || top > ta.scrollTop + ta.clientHeight - 2 * lh)
			ta.scrollTop = Math.max(0, top - ta.clientHeight / 3);
		syncScroll();
	}

	// ---- outcome areas ------------------------------------------------------------------------
	function clearOutcome() {
		errors.replaceChildren();
		errors.removeAttribute('role');
		errors.removeAttribute('data-code');
		result.replaceChildren();
		ta.removeAttribute('aria-invalid');
		marks = [];
		lastProblems = [];
		paintBackdrop();
	}

	function showErrors(title, code, items, extra) {
		// items: [{pointer, detail, start, end, also}] (start null when not located)
		errors.setAttribute('role', 'alert');
		errors.dataset.code = code;
		ta.setAttribute('aria-invalid', 'true');
		const list = el('ul', { class: 'problem-list' }, items.map((it) => {
			const where = it.start !== null && it.start !== undefined ? lineCol(ta.value, it.start) : null;
			return el('li', { 'data-pointer': it.pointer },
				where
					? el('button', { type: 'button', class: 'pointer-btn', 'aria-label': `Show ${it.pointer || 'the error'} in the editor (line ${where.line})`,
						on: { click: () => select(it.start, it.end) } },
					it.pointer ? [el('code', null, it.pointer), ` line ${where.line}`] : 'Show position')
					: el('code', null, it.pointer || '(document)'),
				' ', el('span', { class: 'problem-detail' }, it.detail || ''),
				it.also ? el('span', { class: 'muted' }, ` (${it.also})`) : null);
		}));
		setChildren(errors, el('div', { class: 'alert alert-error' },
			el('div', { class: 'alert-body' }, el('strong', { class: 'alert-title' }, title), list, extra || null)));
		marks = items.filter((it) => it.start !== null && it.start !== undefined)
			.map((it) => ({ start: it.start, end: it.end, pointer: it.pointer }));
		paintBackdrop();
		const first = items.find((it) => it.start !== null && it.start !== undefined);
		// select the first offending key and scroll to it, leaving focus on the button pressed
		// (each listed problem's button moves focus there)
		if (first) select(first.start, first.end, false);
	}

	// The API's pointers, located in the current text; sweep cells' repeats collapsed into one.
	function problemItems(problems) {
		const text = ta.value;
		let map = null;
		try { map = locateJson(text); } catch { map = null; }
		const groups = new Map();
		for (const p of problems) {
			const ptr = typeof p.pointer === 'string' ? p.pointer : '';
			const generic = ptr.replace(/^\/cells\/\d+/, '/cells/*');
			const key = generic + '\u0000' + (p.detail || '');
			const cell = /^\/cells\/(\d+)/.exec(ptr);
			if (groups.has(key)) {
				if (cell) groups.get(key).cells.push(cell[1]);
				continue;
			}
			const loc = map ? findPointer(text, map, ptr) : null;
			groups.set(key, { pointer: ptr, detail: p.detail || '', start: loc ? loc.start : null, end: loc ? loc.end : null,
				cells: cell ? [cell[1]] : [] });
		}
		return [...groups.values()].map((g) => ({ ...g,
			also: g.cells.length > 1 ? `cells ${g.cells.slice(0, 12).join(', ')}${g.cells.length > 12 ? ', …' : ''}` : '' }));
	}

	// Parses the editor's text; on malformed JSON shows where and returns null.
	function parseLocal() {
		const text = ta.value;
		try {
			locateJson(text);
			const v = JSON.parse(text);
			if (v === null || typeof v !== 'object' || Array.isArray(v)) {
				showErrors('Not a JSON object', 'not_an_object',
					[{ pointer: '', detail: `the ${kind === 'sweep' ? 'sweep' : 'spec'} must be a JSON object {…}`, start: null }]);
				return null;
			}
			return v;
		} catch (e) {
			const pos = typeof e.pos === 'number' ? e.pos : 0;
			const { line, col } = lineCol(text, pos);
			const end = Math.min(text.length, pos + 1);
			showErrors('Invalid JSON', 'invalid_json_client',
				[{ pointer: '', detail: `line ${line}, column ${col}: ${e.message}`, start: Math.min(pos, Math.max(0, text.length - 1)), end: Math.max(end, pos + 1) }]);
			errors.querySelector('li').dataset.position = String(pos);
			return null;
		}
	}

	function kindHint(v) {
		if (kind === 'experiment' && v && ('base' in v || 'grid' in v || 'zip' in v || 'seeds' in v))
			return el('p', { class: 'hint' }, 'This looks like a sweep (it has base/grid/zip/seeds): choose “a sweep” above.');
		if (kind === 'sweep' && v && !('base' in v) && ('model' in v || 'norm' in v || 'train' in v))
			return el('p', { class: 'hint' }, 'This looks like a single spec (model/norm/train at the top): choose “one experiment” above, or put it under "base".');
		return null;
	}

	function needToken() {
		if (getToken()) return false;
		errors.setAttribute('role', 'alert');
		errors.dataset.code = 'token_needed';
		const tokenInput = document.getElementById('token-input');
		setChildren(errors, el('div', { class: 'alert alert-error', id: 'token-needed' },
			el('div', { class: 'alert-body' },
				el('strong', { class: 'alert-title' }, 'API token needed'),
				el('p', null, 'Dry runs and submissions are writes: enter your API token in the “API token” field at the top of the page, then try again.'),
				tokenInput ? el('button', { type: 'button', on: { click: () => tokenInput.focus() } }, 'Go to the token field') : null)));
		return true;
	}

	function showApiError(err, v) {
		if (err instanceof ApiError && err.errors.length) {
			lastProblems = err.errors;
			showErrors(`${err.status} · ${err.code}: ${err.errors.length} problem${err.errors.length === 1 ? '' : 's'}`,
				err.code, problemItems(err.errors), kindHint(v));
		} else if (err instanceof ApiError && err.code === 'invalid_json') {
			showErrors(`${err.status} · invalid_json`, err.code, [{ pointer: '', detail: err.message, start: null }]);
		} else {
			const isApi = err instanceof ApiError;
			showErrors(isApi ? `${err.status} · ${err.code}` : 'Request failed', isApi ? err.code : 'client_error',
				[{ pointer: '', detail: describeError(err), start: null }], kindHint(v));
			if (isApi && (err.status === 401 || err.status === 403)) {
				errors.querySelector('.alert-body').appendChild(el('p', { class: 'hint' },
					err.status === 401 ? 'Check the API token at the top of the page.' : 'Your token may not submit this.'));
			}
		}
	}

	async function send(dryRun) {
		if (busy) return;
		clearOutcome();
		const v = parseLocal();
		if (!v) return;
		if (needToken()) return;
		busy = true;
		// aria-disabled, not disabled: disabling the focused button would drop focus to <body>
		dryBtn.setAttribute('aria-disabled', 'true');
		submitBtn.setAttribute('aria-disabled', 'true');
		result.textContent = dryRun ? 'Checking…' : 'Submitting…';
		const path = kind === 'sweep' ? '/sweeps' : '/experiments';
		try {
			const ans = await post(path, ta.value, dryRun ? { dry_run: 1 } : undefined);
			result.replaceChildren();
			if (dryRun) showDry(ans);
			else showSubmitted(ans);
		} catch (err) {
			result.replaceChildren();
			showApiError(err, v);
		} finally {
			busy = false;
			dryBtn.removeAttribute('aria-disabled');
			submitBtn.removeAttribute('aria-disabled');
		}
	}

	function showDry(ans) {
		if (kind === 'sweep') {
			const cells = Array.isArray(ans && ans.cells) ? ans.cells : [];
			const shown = cells.slice(0, 100);
			const fmtOv = (o) => Object.entries(o || {}).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ') || '(base)';
			setChildren(result, el('div', { class: 'ok-box', 'data-kind': 'sweep', 'data-count': String(ans.count) },
				el('p', null, el('strong', null, 'Valid sweep. '), 'Expands to ',
					el('strong', { id: 'dry-count' }, fmtInt(ans.count)), ` run${ans.count === 1 ? '' : 's'}.`),
				shown.length ? el('details', null,
					el('summary', null, `Cells${cells.length > shown.length ? ` (first ${shown.length})` : ''}`),
					el('div', { class: 'table-wrap small-table' }, el('table', { class: 'cells-table' },
						el('thead', null, el('tr', null, el('th', { scope: 'col' }, 'Cell'), el('th', { scope: 'col' }, 'Overrides'),
							el('th', { scope: 'col' }, 'Hash'))),
						el('tbody', null, shown.map((c) => el('tr', null, el('td', { class: 'num' }, String(c.cell)),
							el('td', null, fmtOv(c.overrides)), el('td', null, el('code', null, String(c.hash || '').slice(0, 12))))))))) : null));
		} else {
			setChildren(result, el('div', { class: 'ok-box', 'data-kind': 'experiment', 'data-hash': ans.hash || '' },
				el('p', null, el('strong', null, 'Valid spec. '), 'Canonical hash ',
					el('code', { id: 'dry-hash', class: 'hash' }, ans.hash || '?'),
					ans.memory_bytes ? `; needs about ${fmtBytes(ans.memory_bytes)} of memory.` : '.'),
				ans.spec ? el('details', null, el('summary', null, 'Canonical spec (defaults filled)'),
					el('pre', { class: 'json' }, JSON.stringify(ans.spec, null, 2))) : null));
		}
	}

	function showSubmitted(ans) {
		if (kind === 'sweep') {
			const id = ans.id;
			setChildren(result, el('div', { class: 'ok-box', 'data-kind': 'sweep', 'data-id': String(id) },
				el('p', null, el('strong', null, `Sweep ${id} submitted: `),
					`${fmtInt(ans.count)} cell${ans.count === 1 ? '' : 's'}, ${fmtInt(ans.queued)} queued` +
					(ans.skipped ? `, ${fmtInt(ans.skipped)} skipped (identical runs already succeeded)` : '') + '.'),
				el('p', null, el('a', { href: `#/runs?sweep=${encodeURIComponent(id)}`, id: 'submitted-link' }, `Show sweep ${id}'s runs`),
					' · ', el('a', { href: `#/compare?sweep=${encodeURIComponent(id)}` }, 'Compare the sweep'))));
		} else {
			const id = ans.id;
			const dup = ans.skipped || ans.duplicate_of;
			setChildren(result, el('div', { class: 'ok-box', 'data-kind': 'experiment', 'data-id': String(id) },
				el('p', null, dup
					? [el('strong', null, 'Not queued: '), `an identical spec already succeeded as run ${ans.duplicate_of || id}. Add "on_duplicate": "run" to train it again.`]
					: [el('strong', null, `Experiment ${id} queued`), ans.name ? ` (${ans.name}).` : '.']),
				el('p', null, el('a', { href: `#/run/${encodeURIComponent(id)}`, id: 'submitted-link' }, `Open run ${id}`))));
		}
	}

	// ---- wiring ---------------------------------------------------------------------------------
	const saveDraft = () => {
		try { sessionStorage.setItem(DRAFT_KEY, JSON.stringify({ kind, text: ta.value })); } catch { /* private mode */ }
	};
	let remarkTimer = 0;
	ta.addEventListener('input', () => {
		saveDraft();
		// offsets changed: re-locate the API's pointers in the new text (or drop the marks)
		clearTimeout(remarkTimer);
		marks = [];
		paintBackdrop();
		if (lastProblems.length) {
			remarkTimer = setTimeout(() => {
				const items = problemItems(lastProblems).filter((it) => it.start !== null);
				marks = items.map((it) => ({ start: it.start, end: it.end, pointer: it.pointer }));
				paintBackdrop();
			}, 150);
		}
	});
	ta.addEventListener('keydown', (e) => {
		if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); send(true); }
	});
	for (const r of kindSet.querySelectorAll('input[name=kind]')) {
		r.addEventListener('change', () => {
			if (!r.checked) return;
			const prev = kind;
			kind = r.value;
			// swap in the other example when the editor still holds the untouched one
			if (!ta.value.trim() || ta.value === exampleText(prev, arch)) ta.value = exampleText(kind, arch);
			clearOutcome();
			saveDraft();
		});
	}
	dryBtn.addEventListener('click', () => send(true));
	submitBtn.addEventListener('click', () => send(false));
	formatBtn.addEventListener('click', () => {
		clearOutcome();
		const v = parseLocal();
		if (v === null) return;
		ta.value = JSON.stringify(v, null, 2);
		paintBackdrop();
		saveDraft();
	});
	archSel.addEventListener('change', () => {
		const prev = exampleText(kind, arch);
		arch = archSel.value;
		// a new arch swaps the template in unless the editor holds the user's own text
		if (!ta.value.trim() || ta.value === prev) {
			ta.value = exampleText(kind, arch);
			clearOutcome();
			paintBackdrop();
			saveDraft();
		}
	});
	resetBtn.addEventListener('click', () => {
		ta.value = exampleText(kind, arch);
		clearOutcome();
		saveDraft();
		ta.focus();
	});

	paintBackdrop();
	return () => { clearTimeout(remarkTimer); };
}
