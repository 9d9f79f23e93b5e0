// util.js — small helpers shared by the views: number/duration formatting, HTML escaping, a
// debounce, a safe DOM builder (text always goes in as text nodes, never as HTML) and the alert
// box that shows an API problem. No imports: any module may use it.

// ---- formatting -------------------------------------------------------------------------------

// A number with `digits` significant digits (4 by default); null/undefined → '—'. Very large or
// very small magnitudes switch to exponent form; non-finite values read NaN / ∞ / −∞.
export function fmtNum(x, digits = 4) {
	if (x === null || x === undefined || x === '') return '—';
	const v = Number(x);
	if (Number.isNaN(v)) return 'NaN';
	if (!Number.isFinite(v)) return v > 0 ? '∞' : '−∞';
	if (v === 0) return '0';
	const a = Math.abs(v);
	if (a >= 1e6 || a < 1e-3) return v.toExponential(Math.max(0, digits - 1)).replace('e+', 'e');
	return v.toPrecision(digits);
}

// An integer with thousands separators (steps, counts); null → '—'.
export function fmtInt(x) {
	if (x === null || x === undefined || x === '') return '—';
	const v = Number(x);
	if (!Number.isFinite(v)) return String(x);
	return Math.round(v).toLocaleString('en-US');
}

// A duration in seconds: "850 ms", "12.3 s", "4 min 05 s", "2 h 03 min", "3 d 04 h".
export function fmtDuration(sec) {
	if (sec === null || sec === undefined || !Number.isFinite(Number(sec))) return '—';
	let s = Number(sec);
	const neg = s < 0;
	s = Math.abs(s);
	let out;
	if (s < 1) out = `${Math.round(s * 1000)} ms`;
	else if (s < 60) out = `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
	else if (s < 3600) {
		const m = Math.floor(s / 60), r = Math.floor(s % 60);
		out = `${m} min ${String(r).padStart(2, '0')} s`;
	} else if (s < 86400) {
		const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
		out = `${h} h ${String(m).padStart(2, '0')} min`;
	} else {
		const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600);
		out = `${d} d ${String(h).padStart(2, '0')} h`;
	}
	return neg ? `−${out}` : out;
}

// Bytes with a binary unit: "512 B", "3.2 MiB".
export function fmtBytes(n) {
	if (n === null || n === undefined || !Number.isFinite(Number(n))) return '—';
	let v = Number(n);
	const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
	let i = 0;
	while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
	return i === 0 ? `${v} B` : `${v.toPrecision(3)} ${units[i]}`;
}

// A Unix time in seconds (as the API gives it) as a local date-time string.
export function fmtTime(epochSec) {
	if (epochSec === null || epochSec === undefined || !Number.isFinite(Number(epochSec))) return '—';
	const d = new Date(Number(epochSec) * 1000);
	const p = (x) => String(x).padStart(2, '0');
	return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

// ---- text -------------------------------------------------------------------------------------

const ESC = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
// For the rare place where HTML text is unavoidable; the DOM builder below needs none of it.
export function escapeHtml(s) {
	return String(s === null || s === undefined ? '' : s).replace(/[&<>"']/g, (c) => ESC[c]);
}

// ---- timing -----------------------------------------------------------------------------------

// fn called `ms` after the last call; .cancel() drops a pending call, .flush() runs it now.
export function debounce(fn, ms) {
	let t = null, args = null, self = null;
	function d(...a) {
		args = a;
		self = this;
		if (t) clearTimeout(t);
		t = setTimeout(() => { t = null; fn.apply(self, args); }, ms);
	}
	d.cancel = () => { if (t) clearTimeout(t); t = null; };
	d.flush = () => { if (t) { clearTimeout(t); t = null; fn.apply(self, args); } };
	return d;
}

// ---- DOM --------------------------------------------------------------------------------------

// el('button', {class: 'x', type: 'button', on: {click: f}, 'aria-label': 'y'}, 'text', child…)
// Strings become text nodes; null/false children are skipped; arrays are flattened. Properties
// that are not attributes (value, checked, disabled, hidden, indeterminate…) are set as properties.
const PROPS = new Set(['value', 'checked', 'disabled', 'hidden', 'indeterminate', 'selected', 'readOnly', 'max', 'min']);
export function el(tag, attrs, ...children) {
	const e = document.createElement(tag);
	for (const [k, v] of Object.entries(attrs || {})) {
		if (v === undefined || v === null || v === false) continue;
		if (k === 'on') {
			for (const [ev, fn] of Object.entries(v)) e.addEventListener(ev, fn);
		} else if (k === 'class') {
			e.className = Array.isArray(v) ? v.filter(Boolean).join(' ') : v;
		} else if (k === 'text') {
			e.textContent = String(v);
		} else if (PROPS.has(k)) {
			e[k] = v;
		} else {
			e.setAttribute(k, v === true ? '' : String(v));
		}
	}
	append(e, children);
	return e;
}

function append(parent, children) {
	for (const c of children) {
		if (c === null || c === undefined || c === false) continue;
		if (Array.isArray(c)) append(parent, c);
		else if (c instanceof Node) parent.appendChild(c);
		else parent.appendChild(document.createTextNode(String(c)));
	}
}

// Replaces the children of `parent` with `children` (same rules as el()).
export function setChildren(parent, ...children) {
	parent.replaceChildren();
	append(parent, children);
	return parent;
}

// ---- errors -----------------------------------------------------------------------------------

// One line describing any error: an ApiError's detail with its status and code, a network
// failure, or a plain Error's message.
export function describeError(err) {
	if (!err) return 'Unknown error';
	if (err.name === 'TypeError' && /fetch|network|Failed/i.test(err.message))
		return `Cannot reach normlabd: ${err.message}`;
	if (typeof err.status === 'number' && err.code) return err.message || `HTTP ${err.status}`;
	return err.message || String(err);
}

// The visible alert box (role=alert) for an error: title line "HTTP 400 · invalid_spec", the
// problem's detail, its JSON Pointer list if any, and a Dismiss button.
// data-code carries the problem code for tests.
export function errorAlert(err, { title, dismissible = true } = {}) {
	const isApi = err && typeof err.status === 'number' && err.code;
	const head = title || (isApi ? `Error ${err.status} · ${err.code}` : 'Error');
	const box = el('div', { class: 'alert alert-error', role: 'alert', 'data-code': isApi ? err.code : 'client_error' },
		el('div', { class: 'alert-body' },
			el('strong', { class: 'alert-title' }, head),
			el('p', { class: 'alert-detail' }, describeError(err)),
			isApi && err.errors && err.errors.length
				? el('ul', { class: 'alert-pointers' }, err.errors.slice(0, 50).map((e) =>
					el('li', null, el('code', null, e.pointer || '(body)'), ' ', e.detail || '')))
				: null));
	if (dismissible)
		box.appendChild(el('button', { type: 'button', class: 'alert-close', 'aria-label': 'Dismiss error',
			on: { click: () => box.remove() } }, '×'));
	return box;
}

// ---- the engine's tables ------------------------------------------------------------------------

// What GET /api/v1/schema serves: the engine's own lists (arches with the defaults each resolves
// to, norm types, placements, spec fields with ranges, run statuses). The dashboard keeps no list
// of its own: a norm type added to the engine shows up here without an edit in web/. The arrays
// below are filled in place by loadSchema(), which app.js awaits before the first view renders,
// so modules may import them by name.
export const SCHEMA = { arches: [], norm_types: [], placements: [], fields: [], statuses: [] };
export const STATUSES = [];
export const NORM_TYPES = [];
export const PLACEMENTS = [];
export const ARCHES = [];

let schemaLoad = null;
export function loadSchema() {
	if (!schemaLoad) {
		schemaLoad = fetch('/api/v1/schema', { headers: { Accept: 'application/json' } })
			.then((res) => {
				if (!res.ok) throw new Error(`GET /api/v1/schema: HTTP ${res.status}`);
				return res.json();
			})
			.then((s) => {
				Object.assign(SCHEMA, s);
				const fill = (arr, src) => arr.splice(0, arr.length, ...(src || []));
				fill(STATUSES, s.statuses);
				fill(NORM_TYPES, (s.norm_types || []).map((n) => n.name));
				fill(PLACEMENTS, s.placements);
				fill(ARCHES, (s.arches || []).map((a) => a.name));
				return SCHEMA;
			})
			.catch((e) => { schemaLoad = null; throw e; });
	}
	return schemaLoad;
}

// The schema's entry for an arch ({name, data, metrics, defaults}), or null.
export function archInfo(name) {
	return SCHEMA.arches.find((a) => a.name === name) || null;
}

// Terminal states: a run in one of them will not change again (unless retried).
export function isFinished(status) {
	return status === 'succeeded' || status === 'failed' || status === 'cancelled' || status === 'diverged';
}
