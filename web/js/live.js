// live.js — the dashboard's one EventSource on /api/v1/events and a tiny pub/sub over it.
//
//   onEvent(kind, fn)  → unsubscribe   kind: 'experiment.progress' | 'experiment.started' |
//                                       'experiment.finished' | 'experiment.queued' |
//                                       'experiment.deleted' | 'sweep.queued' | '*' (every event)
//                      fn(data, {id, kind}) with data the event's parsed JSON object.
//   onStatus(fn)       → unsubscribe   fn(state) now and on every change; state is 'connecting',
//                                       'live', 'reconnecting' or 'unsupported'.
//   lastEvent()        → {id, kind, data, at} of the newest event, or null (debugging).
//   connect()          opens the stream (idempotent; onEvent/onStatus call it too).
//
// Reconnection: the daemon's stream starts with `retry: 3000`; the browser's EventSource honours
// it and, when the stream drops, reconnects by itself sending Last-Event-ID, so no event is lost.
// If the EventSource gives up (readyState CLOSED: an HTTP error, e.g. 503 while the daemon stops)
// we open a new one ourselves with ?after=<last id> (a fresh EventSource cannot set the header),
// waiting the daemon's retry delay, doubled per failed attempt up to 30 s.
//
// Tokens: an EventSource cannot send an Authorization header. With a token saved, connect()
// first trades it for a session cookie (POST /api/v1/session), which the stream's requests carry;
// when the stream fails (an expired session answers 401) the next attempt makes a new session.
// reconnect() starts over after the token changed.

import { API, getToken, openSession, closeSession } from './api.js';

export const KINDS = ['experiment.queued', 'experiment.started', 'experiment.progress',
	'experiment.finished', 'experiment.deleted', 'experiment.health', 'sweep.queued'];

const RETRY_MS = 3000;       // what the daemon sends in `retry:`; our fallback delay
const MAX_RETRY_MS = 30000;

const subs = new Map();      // kind → Set of fn
const statusSubs = new Set();
let es = null;
let timer = null;
let attempts = 0;
let state = 'idle';
let lastId = null;
let last = null;
let opened = false;          // ever been live (first connect says 'connecting', later 'reconnecting')
let sessionToken = null;     // the token the current session cookie was made from
let sessionPending = false;  // a POST /api/v1/session is under way
let wanted = false;          // connect() was called and disconnect() not since

function setState(s) {
	if (s === state) return;
	state = s;
	for (const fn of [...statusSubs]) {
		try { fn(s); } catch (e) { console.error('live status subscriber', e); }
	}
}

function dispatch(ev) {
	let data = null;
	try { data = ev.data ? JSON.parse(ev.data) : null; } catch { data = { raw: ev.data }; }
	if (data === null || typeof data !== 'object') data = { value: data };
	const kind = ev.type === 'message' ? 'message' : ev.type;
	if (ev.lastEventId) lastId = ev.lastEventId;
	last = { id: ev.lastEventId ? Number(ev.lastEventId) : null, kind, data, at: Date.now() };
	const meta = { id: last.id, kind };
	for (const key of [kind, '*']) {
		const set = subs.get(key);
		if (!set) continue;
		for (const fn of [...set]) {
			try { fn(data, meta); } catch (e) { console.error(`live subscriber for ${kind}`, e); }
		}
	}
}

function scheduleReconnect() {
	if (timer) return;
	const delay = Math.min(MAX_RETRY_MS, RETRY_MS * 2 ** Math.min(attempts, 4));
	attempts++;
	setState('reconnecting');
	timer = setTimeout(() => { timer = null; connect(); }, delay);
}

export function connect() {
	wanted = true;
	if (es || timer || sessionPending) return;
	if (typeof EventSource === 'undefined') { setState('unsupported'); return; }
	const t = getToken();
	if (t && sessionToken !== t) {
		sessionPending = true;
		setState(opened ? 'reconnecting' : 'connecting');
		openSession().then((ok) => {
			sessionPending = false;
			sessionToken = ok ? t : null;
			if (!wanted) return;
			// the token changed meanwhile: start over; else open (without a session the stream
			// may still open where reads are open, and if not, it retries)
			if (getToken() !== t) connect();
			else open();
		});
		return;
	}
	open();
}

function open() {
	if (es || timer) return;
	const url = API + '/events' + (lastId !== null ? `?after=${encodeURIComponent(lastId)}` : '');
	const src = new EventSource(url);
	es = src;
	setState(opened ? 'reconnecting' : 'connecting');
	src.onopen = () => {
		if (es !== src) return;
		opened = true;
		attempts = 0;
		setState('live');
	};
	src.onerror = () => {
		if (es !== src) return;
		if (src.readyState === EventSource.CLOSED) {
			// the browser gave up (HTTP error or wrong content type): retry ourselves, with a
			// new session (a 401 here is an expired or withdrawn one)
			es = null;
			sessionToken = null;
			src.close();
			scheduleReconnect();
		} else {
			// CONNECTING: the browser reconnects after the daemon's retry: delay, with Last-Event-ID
			setState('reconnecting');
		}
	};
	for (const k of KINDS) src.addEventListener(k, dispatch);
	src.addEventListener('message', dispatch);   // an event without an `event:` field
}

// Closes the stream (tests, or a page that wants to stop listening); connect() reopens it and
// resumes after the last event seen.
export function disconnect() {
	wanted = false;
	if (timer) { clearTimeout(timer); timer = null; }
	if (es) { es.close(); es = null; }
	setState('idle');
}

// The token changed: drop the old session and stream, open new ones (resuming after the last
// event seen, so nothing visible to both tokens is lost).
export function reconnect() {
	disconnect();
	sessionToken = null;
	attempts = 0;
	if (!getToken()) closeSession();
	connect();
}

export function onEvent(kind, fn) {
	let set = subs.get(kind);
	if (!set) subs.set(kind, (set = new Set()));
	set.add(fn);
	connect();
	return () => { set.delete(fn); };
}

export function onStatus(fn) {
	statusSubs.add(fn);
	connect();
	try { fn(state); } catch (e) { console.error('live status subscriber', e); }
	return () => { statusSubs.delete(fn); };
}

export function connectionState() { return state; }

export function lastEvent() { return last; }

// For poking at from the devtools console.
if (typeof window !== 'undefined')
	window.normlabLive = { lastEvent, connectionState, connect, disconnect, reconnect };
