// api.js — the dashboard's only way to the daemon: the JSON API under /api/v1. Every series
// request asks for at most as many buckets as the chart has pixels (the server downsamples, so
// no request fetches more points than it draws).

export const API = '/api/v1';

export class ApiError extends Error {
	constructor(status, problem) {
		super(problem && problem.detail ? problem.detail : `HTTP ${status}`);
		this.status = status;
		this.code = problem && problem.code ? problem.code : 'http_error';
		this.errors = problem && Array.isArray(problem.errors) ? problem.errors : [];
		this.problem = problem || null;
	}
}

const TOKEN_KEY = 'normlab.token';
export function getToken() { return localStorage.getItem(TOKEN_KEY) || ''; }
export function setToken(t) { if (t) localStorage.setItem(TOKEN_KEY, t); else localStorage.removeItem(TOKEN_KEY); }

function url(path, params) {
	const u = new URL(API + path, location.origin);
	for (const [k, v] of Object.entries(params || {}))
		if (v !== undefined && v !== null && v !== '') u.searchParams.set(k, String(v));
	return u.pathname + u.search;
}

// Reads send the token too: a daemon with reads_open = false answers them only with one. A
// token the daemon does not know (a stale one in localStorage) makes a read fail with 401
// invalid_token; the read is then tried once without it, which succeeds where reads are open.
async function request(method, path, { params, body, token } = {}) {
	const t = token === undefined ? getToken() : token;
	let res = await send(method, path, params, body, t);
	let text = await res.text();
	let json = parse(text);
	if (res.status === 401 && method === 'GET' && t && json && json.code === 'invalid_token') {
		res = await send(method, path, params, body, '');
		text = await res.text();
		json = parse(text);
	}
	if (!res.ok) throw new ApiError(res.status, json);
	record(path, params, json);
	return json;
}

function send(method, path, params, body, t) {
	const headers = {};
	if (body !== undefined) headers['Content-Type'] = 'application/json';
	if (t) headers.Authorization = `Bearer ${t}`;
	return fetch(url(path, params), {
		method, headers, body: body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body)),
	});
}

function parse(text) {
	try { return text ? JSON.parse(text) : null; } catch { return null; }
}

// The event stream cannot send the token (EventSource has no headers): the token buys a session
// cookie (HttpOnly, SameSite=Strict, reads only), which the browser then sends by itself.
// Resolves to true when a session was made, false when there is no token or it was refused.
export async function openSession() {
	const t = getToken();
	if (!t) return false;
	try {
		const res = await fetch(API + '/session', { method: 'POST', headers: { Authorization: `Bearer ${t}` } });
		return res.ok;
	} catch { return false; }
}

// Ends the session cookie (the token was cleared or changed).
export async function closeSession() {
	try { await fetch(API + '/session', { method: 'DELETE' }); } catch { /* offline: it expires */ }
}

// Every series answer is logged as {path, asked, points}: `asked` is the bucket count the chart
// requested (its pixel width), `points` what came back. The browser test checks points <= asked.
function record(path, params, json) {
	const log = (window.normlabRequests = window.normlabRequests || []);
	const asked = params && params.buckets ? Number(params.buckets) : null;
	let points = null;
	if (json && Array.isArray(json.step)) points = json.step.length;
	else if (json && Array.isArray(json.steps)) points = json.steps.length;
	log.push({ path, asked, points });
	if (log.length > 5000) log.splice(0, log.length - 5000);
}

export const get = (path, params) => request('GET', path, { params });
export const post = (path, body, params, token) => request('POST', path, { params, body, token });
export const patch = (path, body) => request('PATCH', path, { body });
export const del = (path) => request('DELETE', path);

// Buckets for a chart `px` pixels wide: never more points than pixels.
export function bucketsFor(px) { return Math.max(16, Math.min(4000, Math.floor(px || 600))); }

