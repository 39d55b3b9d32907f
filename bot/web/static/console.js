// Counsellor console for Đồng Hành: login, the queue, live events over a WebSocket and
// several open conversations at once. Everything that comes from the API is rendered
// with textContent (never as HTML); no inline scripts or styles (strict CSP).
(function () {
  "use strict";

  const API = "/api/v1";
  const STAFF_ROLES = ["counsellor", "supervisor"];
  const BASE_TITLE = document.title;
  const URGENT_PREFIX = "(!) Khẩn cấp – ";
  const MAX_TEXT = 2000;
  const PING_MS = 20000;
  const STALE_MS = 50000;
  const QUEUE_POLL_MS = 30000;
  const OPTIONS_POLL_MS = 60000;
  const WAIT_TICK_MS = 10000;

  const ROLES = { counsellor: "Tư vấn viên", supervisor: "Giám sát viên", admin: "Quản trị", editor: "Biên tập" };
  const CHANNELS = { webchat: "Trò chuyện web", rest: "API", callback: "Yêu cầu gọi lại", telegram: "Telegram", facebook: "Facebook Messenger", zalo: "Zalo" };
  const CONSENT = { full: "Cho xem lịch sử", from_now: "Chỉ từ lúc chuyển" };
  const PRIORITIES = ["danger", "many_signs", "normal"];
  const ENDED_BY_STATE = {
    closed: "Cuộc trò chuyện đã kết thúc.",
    erased: "Người dùng đã yêu cầu xóa dữ liệu.",
    bot: "Người dùng đã quay lại trò chuyện với trợ lý tự động.",
    waiting: "Cuộc trò chuyện đã trở lại hàng chờ.",
  };
  const TAB_STATE = { closed: "đã kết thúc", erased: "đã xóa", bot: "về trợ lý", waiting: "về hàng chờ" };
  const TEXT = {
    danger: "Người dùng có thể đang gặp nguy hiểm. Trợ lý đã gửi số 113 và 111.",
    offline: "Không kết nối được với máy chủ. Vui lòng kiểm tra mạng và thử lại.",
    unexpected: "Đã có lỗi không mong muốn. Nếu lỗi lặp lại, vui lòng tải lại trang.",
    expired: "Phiên đăng nhập đã hết hạn. Vui lòng đăng nhập lại.",
    connecting: "Đang kết nối…",
    connected: "Đã kết nối",
    lost: "Mất kết nối, đang kết nối lại…",
    erasedNote: "Nội dung đã được xóa theo yêu cầu của người dùng.",
    windowClosed: "Hiện không thể gửi trả lời cho người dùng.",
  };

  const $ = (id) => document.getElementById(id);
  const el = {
    boot: $("boot-status"), loginView: $("login-view"), loginForm: $("login-form"),
    loginUser: $("login-username"), loginPass: $("login-password"), loginSubmit: $("login-submit"),
    loginError: $("login-error"), workspace: $("workspace"), me: $("me"), meRole: $("me-role"),
    availability: $("availability"), availabilityWrap: $("availability-wrap"), conn: $("connection-status"),
    logout: $("logout"), apiError: $("api-error"), apiErrorDismiss: $("api-error-dismiss"),
    roleDenied: $("role-denied"), main: $("console-main"), queuePanel: $("queue-panel"),
    queueSummary: $("queue-summary"), othersGroup: $("others-group"), tabs: $("tabs"),
    noConversation: $("no-conversation"), conversations: $("conversations"), tpl: $("tpl-conversation"),
  };
  const LISTS = ["waiting", "mine", "others"].map((kind) => ({
    kind, list: $("queue-" + kind), empty: $("empty-" + kind), count: $("count-" + kind),
  }));

  // Everything that belongs to one login; null when logged out.
  let session = null;
  let errorSource = null;
  let audioCtx = null;

  // ---------- small helpers ----------

  function h(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function pad(n) { return String(n).padStart(2, "0"); }

  function formatTime(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return "";
    const hm = pad(d.getHours()) + ":" + pad(d.getMinutes());
    return d.toDateString() === new Date().toDateString() ? hm : pad(d.getDate()) + "/" + pad(d.getMonth() + 1) + " " + hm;
  }

  function timeNode(iso) {
    const t = h("time", "time", formatTime(iso));
    if (typeof iso === "string") t.dateTime = iso;
    return t;
  }

  function waitLabel(seconds) {
    const minutes = Math.floor(Math.max(0, seconds) / 60);
    if (minutes < 1) return "Chờ dưới 1 phút";
    if (minutes < 60) return "Chờ " + minutes + " phút";
    return "Chờ " + Math.floor(minutes / 60) + " giờ " + (minutes % 60) + " phút";
  }

  function channelLabel(code) { return CHANNELS[code] || String(code || ""); }
  function priorityClass(p) { return "priority-" + (PRIORITIES.includes(p) ? p : "normal"); }
  function personName(value) { return value && typeof value === "object" ? String(value.username || "") : String(value || ""); }
  function isStaff() { return !!session && STAFF_ROLES.includes(session.me.role); }
  function isSupervisor() { return !!session && session.me.role === "supervisor"; }

  // ---------- API and errors ----------

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    const init = { method, credentials: "same-origin", headers };
    if (method !== "GET" && session && session.csrf) headers["X-CSRF-Token"] = session.csrf;
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try { response = await fetch(API + path, init); } catch (e) { throw new ApiError(0, TEXT.offline); }
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (response.ok) return data || {};
    let message = data && typeof data.error === "string" && data.error ? data.error : "";
    if (!message) {
      message = response.status === 429 ? "Bạn thử quá nhiều lần. Vui lòng đợi một lát rồi thử lại."
        : "Có lỗi xảy ra (mã " + response.status + "). Vui lòng thử lại.";
    }
    if (response.status === 401 && path !== "/auth/login") onUnauthorized();
    throw new ApiError(response.status, message);
  }

  // source: "action" for things the user did, or the name of a background refresh, so a
  // later background success clears only its own stale error.
  function showError(err, source) {
    if (err instanceof ApiError && err.status === 401) return; // back at the login form
    if (!(err instanceof ApiError)) console.error(err);
    el.apiError.textContent = err instanceof ApiError ? err.message : TEXT.unexpected;
    el.apiErrorDismiss.hidden = false;
    errorSource = source || "action";
  }

  function clearError(source) {
    if (source && errorSource !== source) return;
    el.apiError.textContent = "";
    el.apiErrorDismiss.hidden = true;
    errorSource = null;
  }

  // Runs something the user asked for: on success clears an earlier action error and
  // returns the result; on failure shows the error and returns undefined (never throws).
  async function act(request) {
    try {
      const result = await request();
      clearError("action");
      return result;
    } catch (e) {
      showError(e, "action");
      return undefined;
    }
  }

  // ---------- login, logout, session ----------

  async function boot() {
    bindStaticHandlers();
    try {
      const me = await api("GET", "/me");
      const csrf = await api("GET", "/auth/csrf");
      startSession(me, csrf.csrf_token);
    } catch (e) {
      showLogin(e instanceof ApiError && e.status === 401 ? "" : (e.message || TEXT.unexpected));
    } finally {
      el.boot.hidden = true;
    }
  }

  function showLogin(message) {
    el.workspace.hidden = true;
    el.loginView.hidden = false;
    el.loginError.textContent = message || "";
    (el.loginUser.value ? el.loginPass : el.loginUser).focus();
  }

  function onUnauthorized() {
    if (!session) { // already logged out (several requests may fail at once)
      if (el.loginView.hidden) showLogin("");
      return;
    }
    endSession();
    showLogin(TEXT.expired);
  }

  async function onLoginSubmit(event) {
    event.preventDefault();
    const username = el.loginUser.value.trim();
    const password = el.loginPass.value;
    if (!username || !password) {
      el.loginError.textContent = "Vui lòng nhập tên đăng nhập và mật khẩu.";
      return;
    }
    el.loginSubmit.disabled = true;
    el.loginError.textContent = "";
    try {
      const result = await api("POST", "/auth/login", { username, password });
      el.loginPass.value = "";
      startSession(Object.assign({ available: false }, result.user), result.csrf_token);
      refreshMe();
    } catch (e) {
      el.loginError.textContent = e.message || TEXT.unexpected;
      el.loginPass.focus();
    } finally {
      el.loginSubmit.disabled = false;
    }
  }

  async function refreshMe() {
    const s = session;
    try {
      const me = await api("GET", "/me");
      if (s === session) { s.me = Object.assign(s.me, me); el.availability.checked = !!me.available; }
    } catch (e) { showError(e, "me"); }
  }

  async function onLogout() {
    try {
      await api("POST", "/auth/logout");
    } catch (e) {
      if (e.status !== 401) { showError(e, "action"); return; }
    }
    endSession();
    showLogin("");
  }

  function startSession(me, csrf) {
    endSession();
    session = {
      csrf, me, options: { outcomes: [], referrals: [], canned_replies: [], staff: [] },
      queue: null, queueAt: 0, queueBusy: false, queueAgain: false,
      convs: new Map(), activeId: null, timers: [], ws: null, wsRetry: 1000, reconnectTimer: 0,
      lastFrameAt: 0, knownDanger: null, urgent: new Set(), unread: new Set(), alerts: new Set(),
      lastBeep: 0, availabilityRequest: 0,
    };
    el.loginView.hidden = true;
    el.workspace.hidden = false;
    el.me.textContent = me.username || "";
    el.meRole.textContent = ROLES[me.role] ? "(" + ROLES[me.role] + ")" : "";
    el.availability.checked = !!me.available;
    const allowed = isStaff();
    el.roleDenied.hidden = allowed;
    el.main.hidden = !allowed;
    el.availabilityWrap.hidden = !allowed;
    el.conn.hidden = !allowed;
    if (!allowed) return;
    el.othersGroup.hidden = !isSupervisor();
    loadOptions();
    refreshQueue();
    connectEvents();
    session.timers.push(
      setInterval(refreshQueue, QUEUE_POLL_MS), setInterval(updateWaitTimes, WAIT_TICK_MS),
      setInterval(loadOptions, OPTIONS_POLL_MS), setInterval(pingEvents, PING_MS));
  }

  function endSession() {
    const s = session;
    if (!s) return;
    session = null;
    s.timers.forEach(clearInterval);
    clearTimeout(s.reconnectTimer);
    if (s.ws) { try { s.ws.close(1000); } catch (e) { /* already closed */ } }
    s.convs.forEach((conv) => conv.destroy());
    LISTS.forEach(({ list, count }) => { list.textContent = ""; count.textContent = ""; });
    el.queueSummary.textContent = "";
    el.noConversation.hidden = false;
    el.conn.textContent = "";
    clearError();
    document.title = BASE_TITLE;
  }

  async function onAvailabilityChange() {
    const s = session;
    const wanted = el.availability.checked;
    const request = ++s.availabilityRequest;
    try {
      const result = await api("POST", "/me/availability", { available: wanted });
      if (s === session && request === s.availabilityRequest) el.availability.checked = !!result.available;
      clearError("action");
    } catch (e) {
      if (s === session && request === s.availabilityRequest) el.availability.checked = !wanted;
      showError(e, "action");
    }
  }

  async function loadOptions() {
    const s = session;
    if (!s) return;
    try {
      const o = await api("GET", "/console/options");
      if (s !== session) return;
      s.options = {
        outcomes: o.outcomes || [], referrals: o.referrals || [],
        canned_replies: o.canned_replies || [], staff: o.staff || [],
      };
      s.convs.forEach((conv) => conv.fillOptions());
      clearError("options");
    } catch (e) { showError(e, "options"); }
  }

  // ---------- urgency: title and sound ----------

  function updateTitle() {
    document.title = (session && session.urgent.size ? URGENT_PREFIX : "") + BASE_TITLE;
  }

  function addUrgent(key) {
    if (!session) return;
    session.urgent.add(key);
    updateTitle();
  }

  function removeUrgent(key) {
    if (!session) return;
    session.urgent.delete(key);
    updateTitle();
  }

  function getAudio() {
    if (!audioCtx) {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) return null;
      audioCtx = new Ctx();
    }
    return audioCtx;
  }

  function unlockAudio() {
    try {
      const ctx = getAudio();
      if (ctx && ctx.state === "suspended") ctx.resume().catch(() => {});
    } catch (e) { /* audio unavailable */ }
  }

  function beep() {
    if (session) {
      if (Date.now() - session.lastBeep < 1500) return;
      session.lastBeep = Date.now();
    }
    try {
      const ctx = getAudio();
      if (!ctx) return;
      if (ctx.state === "suspended") ctx.resume().catch(() => {});
      const start = ctx.currentTime;
      [0, 0.3].forEach((offset) => {
        const osc = ctx.createOscillator();
        const gain = ctx.createGain();
        osc.type = "sine";
        osc.frequency.value = 880;
        gain.gain.setValueAtTime(0.0001, start + offset);
        gain.gain.exponentialRampToValueAtTime(0.25, start + offset + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, start + offset + 0.2);
        osc.connect(gain);
        gain.connect(ctx.destination);
        osc.start(start + offset);
        osc.stop(start + offset + 0.22);
      });
    } catch (e) { /* browsers may block audio before a user gesture */ }
  }

  // ---------- queue ----------

  async function refreshQueue() {
    const s = session;
    if (!s || !isStaff()) return;
    if (s.queueBusy) { s.queueAgain = true; return; }
    s.queueBusy = true;
    try {
      do {
        s.queueAgain = false;
        const queue = await api("GET", "/queue");
        if (s !== session) return;
        s.queue = queue;
        s.queueAt = Date.now();
        renderQueue();
        checkDanger(queue);
        clearError("queue");
      } while (s.queueAgain);
    } catch (e) {
      showError(e, "queue");
    } finally {
      s.queueBusy = false;
    }
  }

  function inMine(id) {
    return !!(session && session.queue && (session.queue.mine || []).some((item) => item.id === id));
  }

  function checkDanger(queue) {
    const s = session;
    const dangerIds = (list) => (list || []).filter((i) => i.priority === "danger").map((i) => i.id);
    const present = new Set(dangerIds(queue.waiting).concat(dangerIds(queue.mine)));
    // on the first load only people still waiting count as new; later, any danger item
    // that was not there before (a new arrival, or one transferred to me)
    const fresh = s.knownDanger ? [...present].filter((id) => !s.knownDanger.has(id)) : dangerIds(queue.waiting);
    s.knownDanger = present;
    s.urgent.delete("queue-event"); // from here on each danger item keeps its own flag
    s.urgent.forEach((key) => {
      if (key.startsWith("queue:") && !present.has(Number(key.slice(6)))) s.urgent.delete(key);
    });
    fresh.filter((id) => !s.convs.has(id)).forEach((id) => s.urgent.add("queue:" + id));
    updateTitle();
    if (fresh.length) beep();
  }

  function renderQueue() {
    const s = session;
    const queue = s.queue || {};
    const focus = rememberQueueFocus();
    LISTS.forEach(({ kind, list, empty, count }) => {
      const items = Array.isArray(queue[kind]) ? queue[kind] : [];
      list.textContent = "";
      items.forEach((item) => list.append(queueItem(item, kind)));
      empty.hidden = items.length > 0;
      count.textContent = items.length ? "(" + items.length + ")" : "";
    });
    const parts = [];
    if (typeof queue.counsellors_available === "number") parts.push("Tư vấn viên đang sẵn sàng: " + queue.counsellors_available);
    if (queue.in_hours === false) parts.push("Ngoài giờ làm việc");
    el.queueSummary.textContent = parts.join(" · ");
    restoreQueueFocus(focus);
  }

  function queueItem(item, kind) {
    const s = session;
    const li = h("li", "queue-item " + priorityClass(item.priority));
    li.dataset.conversationId = String(item.id);
    li.dataset.priority = String(item.priority || "normal");
    const head = h("p", "qi-head");
    head.append(h("span", "qi-priority", item.priority_title || item.priority),
      h("span", "qi-channel", "#" + item.id + " · " + channelLabel(item.channel)));
    li.append(head);
    if (item.screening && item.screening.title) li.append(h("p", "qi-line", "Sàng lọc: " + item.screening.title));
    else if (item.risk_level) li.append(h("p", "qi-line", "Mức rủi ro: " + item.risk_level));
    li.append(h("p", "qi-line", CONSENT[item.consent] || String(item.consent || "")));
    if (kind === "waiting") {
      const wait = h("p", "qi-line qi-wait", waitLabel(item.waiting_seconds || 0));
      wait.dataset.base = String(item.waiting_seconds || 0);
      li.append(wait);
    } else if (item.queued_at) {
      li.append(h("p", "qi-line", "Vào hàng chờ lúc " + formatTime(item.queued_at)));
    }
    if (kind === "others" && item.assigned_to) li.append(h("p", "qi-line", "Tư vấn viên: " + personName(item.assigned_to)));
    const badges = h("p", "qi-badges");
    if (item.callback_requested) badges.append(h("span", "badge badge-callback", "Xin gọi lại"));
    if (s.alerts.has(item.id)) badges.append(h("span", "badge badge-danger", "Cảnh báo nguy hiểm"));
    if (s.unread.has(item.id)) badges.append(h("span", "badge badge-unread", "Tin nhắn mới"));
    if (badges.childElementCount) li.append(badges);
    const accept = kind === "waiting";
    const button = h("button", "btn " + (accept ? "btn-primary accept" : "open"), accept ? "Nhận" : "Mở");
    button.type = "button";
    button.setAttribute("aria-label", (accept ? "Nhận cuộc trò chuyện #" : "Mở cuộc trò chuyện #") + item.id);
    button.addEventListener("click", () => (accept ? acceptConversation(item.id) : openConversation(item.id, { focus: true })));
    li.append(button);
    return li;
  }

  function rememberQueueFocus() {
    const active = document.activeElement;
    if (!active || !el.queuePanel.contains(active)) return null;
    const li = active.closest(".queue-item");
    return li ? { id: li.dataset.conversationId, cls: active.classList.contains("accept") ? "accept" : "open" } : null;
  }

  function restoreQueueFocus(focus) {
    if (!focus) return;
    const button = el.queuePanel.querySelector(
      '.queue-item[data-conversation-id="' + CSS.escape(focus.id) + '"] button.' + focus.cls);
    if (button) button.focus();
  }

  function updateWaitTimes() {
    if (!session || !session.queueAt) return;
    const extra = (Date.now() - session.queueAt) / 1000;
    el.queuePanel.querySelectorAll(".qi-wait").forEach((node) => {
      node.textContent = waitLabel(Number(node.dataset.base) + extra);
    });
  }

  async function acceptConversation(id) {
    const s = session;
    const data = await act(() => api("POST", "/conversations/" + id + "/accept"));
    if (data && s === session) openConversation(id, { data, focus: true });
    refreshQueue();
  }

  // ---------- live events ----------

  function setConn(text, kind) {
    el.conn.textContent = text;
    el.conn.className = "conn conn-" + kind;
  }

  function connectEvents() {
    const s = session;
    if (!s) return;
    setConn(TEXT.connecting, "connecting");
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    let ws;
    try { ws = new WebSocket(scheme + "://" + location.host + "/api/v1/events"); } catch (e) { scheduleReconnect(s); return; }
    s.ws = ws;
    s.lastFrameAt = Date.now();
    const current = () => s === session && s.ws === ws;
    ws.addEventListener("open", () => {
      if (!current()) return;
      s.wsRetry = 1000;
      setConn(TEXT.connected, "ok");
      catchUp(); // events may have been missed while disconnected
    });
    ws.addEventListener("message", (event) => {
      if (!current()) return;
      s.lastFrameAt = Date.now();
      try { onEvent(event.data); } catch (e) { showError(e, "action"); }
    });
    ws.addEventListener("close", (event) => {
      if (!current()) return;
      s.ws = null;
      if (event.code === 4401) { onUnauthorized(); return; }
      scheduleReconnect(s);
    });
  }

  function scheduleReconnect(s) {
    setConn(TEXT.lost, "lost");
    const delay = s.wsRetry * (0.5 + Math.random() * 0.5);
    s.wsRetry = Math.min(s.wsRetry * 2, 30000);
    clearTimeout(s.reconnectTimer);
    s.reconnectTimer = setTimeout(() => { if (s === session) connectEvents(); }, delay);
  }

  function pingEvents() {
    const s = session;
    if (!s || !s.ws || s.ws.readyState !== WebSocket.OPEN) return;
    if (Date.now() - s.lastFrameAt > STALE_MS) { // no pong for too long: the link is dead
      const dead = s.ws;
      s.ws = null;
      try { dead.close(); } catch (e) { /* ignore */ }
      scheduleReconnect(s);
      return;
    }
    try { s.ws.send(JSON.stringify({ type: "ping" })); } catch (e) { /* close event follows */ }
  }

  function catchUp() {
    refreshQueue();
    if (session) session.convs.forEach((conv) => conv.reload());
  }

  function onEvent(raw) {
    let event;
    try { event = JSON.parse(raw); } catch (e) { return; }
    if (!event || typeof event !== "object") return;
    if (event.type === "queue") {
      if (event.urgent) { addUrgent("queue-event"); beep(); }
      refreshQueue();
    } else if (event.type === "message") {
      onMessageEvent(event);
    } else if (event.type === "alert") {
      onAlertEvent(event);
    } else if (event.type === "conversation") {
      const conv = session.convs.get(event.conversation_id);
      if (conv) conv.applyEvent(event);
      if (event.state === "erased" || event.state === "closed") {
        session.unread.delete(event.conversation_id);
        session.alerts.delete(event.conversation_id);
        removeUrgent("alert:" + event.conversation_id);
      }
      refreshQueue();
    }
  }

  function onMessageEvent(event) {
    const s = session;
    const conv = s.convs.get(event.conversation_id);
    if (conv) { conv.addMessage(event.message, true); return; }
    if (event.message && event.message.author === "user" && inMine(event.conversation_id)) {
      s.unread.add(event.conversation_id);
      renderQueue();
    }
  }

  function onAlertEvent(event) {
    if (event.kind !== "danger") return;
    const s = session;
    const id = event.conversation_id;
    s.alerts.add(id);
    addUrgent("alert:" + id);
    beep();
    let conv = s.convs.get(id);
    if (!conv && inMine(id)) conv = openConversation(id, { activate: !s.activeId });
    if (conv) conv.showAlert();
    if (s.queue) renderQueue();
  }

  // ---------- open conversations (tabs) ----------

  function openConversation(id, opts) {
    const s = session;
    const options = opts || {};
    let conv = s.convs.get(id);
    if (conv) {
      if (options.data) { conv.applyData(options.data); conv.reload(); }
    } else {
      conv = new Conversation(s, id);
      s.convs.set(id, conv);
      conv.load(options.data);
    }
    s.unread.delete(id);
    removeUrgent("queue:" + id);
    if (options.activate !== false) activate(id);
    if (options.focus) conv.q(".conv-title").focus();
    if (s.queue) renderQueue();
    return conv;
  }

  function activate(id) {
    const s = session;
    s.activeId = id;
    s.convs.forEach((conv) => conv.setActive(conv.id === id));
    el.noConversation.hidden = s.convs.size > 0;
  }

  function closeTab(id) {
    const s = session;
    const conv = s.convs.get(id);
    if (!conv) return;
    conv.destroy();
    s.convs.delete(id);
    if (s.activeId === id) {
      const rest = [...s.convs.keys()];
      s.activeId = null;
      if (rest.length) {
        activate(rest[rest.length - 1]);
        s.convs.get(s.activeId).tab.focus();
        return;
      }
    }
    el.noConversation.hidden = s.convs.size > 0;
  }

  function fillSelect(select, placeholder, entries) {
    const signature = JSON.stringify([placeholder, entries]);
    if (select.dataset.signature === signature) return; // unchanged: keep an open list open
    select.dataset.signature = signature;
    const previous = select.value;
    select.textContent = "";
    const first = h("option", "", placeholder);
    first.value = "";
    select.append(first);
    entries.forEach(([value, label]) => {
      const option = h("option", "", label);
      option.value = String(value);
      select.append(option);
    });
    select.value = entries.some(([value]) => String(value) === previous) ? previous : "";
  }

  // Checks a required <select> in a form with novalidate; the message is shown next to it.
  function checkChoice(select, message) {
    const error = select.closest("form").querySelector(".field-error");
    const missing = !select.value;
    error.textContent = missing ? message : "";
    select.setAttribute("aria-invalid", missing ? "true" : "false");
    if (missing) select.focus();
    return !missing;
  }

  function renderNote(note) {
    const li = h("li", "note");
    const meta = h("p", "note-meta");
    meta.append(h("span", "note-author", personName(note.author)), document.createTextNode(" · "), timeNode(note.at));
    li.append(meta, h("p", "note-body", note.text));
    return li;
  }

  function authorLabel(message, me) {
    if (message.author === "user") return "Người dùng";
    if (message.author === "bot") return "Trợ lý tự động";
    if (message.author === "counsellor") {
      const name = String(message.counsellor || "");
      return ("Tư vấn viên " + name).trim() + (name && name === me.username ? " (bạn)" : "");
    }
    return String(message.author || "");
  }

  // One open conversation: its tab, its panel and what it knows.
  class Conversation {
    constructor(s, id) {
      this.s = s;
      this.id = id;
      this.data = null;
      this.ids = new Set();
      this.lastId = 0;
      this.fromHandoff = false;
      this.wasMine = false;
      this.mine = false;
      this.endedReason = null;
      this.sending = false;
      this.noteBusy = false;
      this.erased = false;
      this.destroyed = false;
      this.root = el.tpl.content.firstElementChild.cloneNode(true);
      this.root.id = "conversation-" + id;
      this.root.dataset.conversationId = String(id);
      this.q(".conv-title").id = this.root.id + "-title";
      this.root.setAttribute("aria-labelledby", this.root.id + "-title");
      this.q(".conv-title").textContent = "Cuộc trò chuyện #" + id;
      this.q(".reply-window").id = this.root.id + "-window";
      this.q(".reply-text").setAttribute("aria-describedby", this.root.id + "-window");
      this.tab = this.buildTab();
      this.fillOptions();
      this.bind();
      el.conversations.append(this.root);
      el.tabs.append(this.tab);
      this.render();
    }

    q(selector) { return this.root.querySelector(selector); }

    buildTab() {
      const tab = h("button", "tab");
      tab.type = "button";
      tab.dataset.conversationId = String(this.id);
      tab.setAttribute("aria-controls", this.root.id);
      this.tabLabel = h("span", "tab-label", "#" + this.id);
      this.tabState = h("span", "tab-state");
      const dot = h("span", "tab-unread");
      dot.append(h("span", "dot", "●"), h("span", "sr-only", " (có tin mới)"));
      dot.firstChild.setAttribute("aria-hidden", "true");
      dot.hidden = true;
      this.tabDot = dot;
      tab.append(this.tabLabel, this.tabState, dot);
      tab.addEventListener("click", () => activate(this.id));
      return tab;
    }

    bind() {
      const text = this.q(".reply-text");
      this.q(".close-tab").addEventListener("click", () => closeTab(this.id));
      this.q(".reload").addEventListener("click", () => this.reload());
      this.q(".reply-form").addEventListener("submit", (e) => { e.preventDefault(); this.sendReply(); });
      text.addEventListener("keydown", (e) => {
        if (e.key !== "Enter" || e.isComposing || e.keyCode === 229) return; // IME (Telex) still composing
        if (e.ctrlKey || e.metaKey || !e.shiftKey) { e.preventDefault(); this.sendReply(); }
      });
      text.addEventListener("input", () => this.updateCounter());
      this.q(".canned").addEventListener("change", () => this.insertCanned());
      this.q(".note-form").addEventListener("submit", (e) => { e.preventDefault(); this.addNote(); });
      this.q(".note-text").addEventListener("keydown", (e) => {
        if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); this.addNote(); }
      });
      this.q(".transfer-form").addEventListener("submit", (e) => { e.preventDefault(); this.transfer(); });
      this.q(".close-form").addEventListener("submit", (e) => { e.preventDefault(); this.close(); });
      [".transfer-to", ".outcome"].forEach((sel) => this.q(sel).addEventListener("change", (e) => {
        if (e.target.value) checkChoice(e.target, "");
      }));
      this.q(".alert-ack").addEventListener("click", () => this.acknowledgeAlert());
      const audit = this.q(".audit-toggle");
      audit.hidden = this.s.me.role !== "supervisor";
      audit.addEventListener("click", () => this.toggleAudit());
    }

    fillOptions() {
      const o = this.s.options;
      const me = this.s.me;
      fillSelect(this.q(".canned"), "Chọn câu trả lời mẫu…", o.canned_replies.map((c) => [c.id, c.title]));
      fillSelect(this.q(".outcome"), "Chọn kết quả…", o.outcomes.map((c) => [c.code, c.title]));
      const staff = o.staff.filter((m) => m.id !== me.id && m.username !== me.username)
        .sort((a, b) => Number(!!b.available) - Number(!!a.available));
      fillSelect(this.q(".transfer-to"), "Chọn tư vấn viên…", staff.map((m) => [m.username,
        m.username + (m.role === "supervisor" ? " (giám sát viên)" : "") + (m.available ? " – sẵn sàng" : " – không sẵn sàng")]));
      const box = this.q(".refer-buttons");
      const signature = JSON.stringify(o.referrals.map((r) => [r.code, r.title]));
      if (box.dataset.signature !== signature) this.fillReferrals(box, signature);
      this.render();
    }

    fillReferrals(box, signature) {
      const o = this.s.options;
      box.dataset.signature = signature;
      box.textContent = "";
      o.referrals.forEach((r) => {
        const button = h("button", "btn btn-warn refer", "Chuyển tuyến " + r.title);
        button.type = "button";
        button.dataset.to = String(r.code);
        button.addEventListener("click", () => this.refer(r));
        box.append(button);
      });
    }

    async load(prefetched) {
      this.setBusy(true);
      try {
        const data = prefetched || await api("GET", "/conversations/" + this.id);
        if (this.destroyed) return;
        this.applyData(data);
        if (data.state !== "erased") await Promise.all([this.loadMessages(), this.loadNotes()]);
      } catch (e) {
        showError(e, "action");
        if (!this.data) this.setReadonly("Không tải được cuộc trò chuyện này. Bấm “Tải lại” để thử lại.");
      } finally {
        this.setBusy(false);
      }
    }

    async reload() {
      if (this.destroyed || this.erased) return;
      if (!this.data) { await this.load(); return; }
      try {
        const data = await api("GET", "/conversations/" + this.id);
        if (this.destroyed) return;
        this.applyData(data);
        if (data.state !== "erased") await Promise.all([this.loadMessages(), this.loadNotes()]);
      } catch (e) { showError(e, "action"); }
    }

    setBusy(busy) { this.q(".messages").setAttribute("aria-busy", busy ? "true" : "false"); }

    messagePath(fromHandoff) {
      const params = [];
      if (fromHandoff) params.push("from=handoff");
      if (this.lastId) params.push("after=" + encodeURIComponent(this.lastId));
      return "/conversations/" + this.id + "/messages" + (params.length ? "?" + params.join("&") : "");
    }

    async loadMessages() {
      let data = null;
      if (!this.fromHandoff) {
        try {
          data = await api("GET", this.messagePath(false));
        } catch (e) {
          if (e.status !== 403) throw e;
          this.fromHandoff = true; // the person did not agree to share the earlier history
        }
      }
      if (this.fromHandoff) data = await api("GET", this.messagePath(true));
      if (this.destroyed) return;
      this.q(".history-note").hidden = !this.fromHandoff;
      (data.messages || []).forEach((m) => this.addMessage(m, false));
    }

    addMessage(message, live) {
      if (!message || message.id === undefined || message.id === null || this.ids.has(message.id)) return;
      if (this.data && this.data.state === "erased") return;
      this.ids.add(message.id);
      this.lastId = Math.max(this.lastId, Number(message.id) || 0);
      const list = this.q(".messages");
      const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 120;
      let before = null;
      for (let node = list.lastElementChild; node; node = node.previousElementSibling) {
        if (Number(node.dataset.messageId) > Number(message.id)) before = node; else break;
      }
      list.insertBefore(this.renderMessage(message), before);
      if (nearBottom || !live) list.scrollTop = list.scrollHeight;
      const mineToo = message.author === "counsellor" && message.counsellor === this.s.me.username;
      if (live && !mineToo && this.s.activeId !== this.id) this.setUnread(true);
      if (live && message.author === "user" && this.data && this.data.reply_window && !this.data.reply_window.open) {
        this.reload(); // a new message from the person may reopen the reply window
      }
    }

    renderMessage(message) {
      const known = ["user", "bot", "counsellor"].includes(message.author) ? message.author : "other";
      const li = h("li", "message message-" + known);
      li.dataset.author = String(message.author || "");
      li.dataset.messageId = String(message.id);
      const meta = h("p", "message-meta");
      meta.append(h("span", "message-author", authorLabel(message, this.s.me)), document.createTextNode(" · "), timeNode(message.at));
      li.append(meta, h("p", "message-text", message.text));
      return li;
    }

    async loadNotes() {
      const data = await api("GET", "/conversations/" + this.id + "/notes");
      if (this.destroyed) return;
      const list = this.q(".notes-list");
      list.textContent = "";
      (data.notes || []).forEach((note) => list.append(renderNote(note)));
      this.q(".notes-empty").hidden = list.childElementCount > 0;
    }

    applyData(data) {
      if (!data || typeof data !== "object") return;
      if (!this.data) this.fromHandoff = !data.history_allowed;
      this.data = Object.assign({}, this.data || {}, data);
      this.evaluate();
    }

    applyEvent(event) {
      if (!this.data) return;
      this.data = Object.assign({}, this.data, { state: event.state, assigned_to: event.assigned_to || null });
      this.evaluate();
    }

    evaluate() {
      const d = this.data;
      const holder = d.assigned_to;
      this.mine = d.state === "counsellor" && !!holder && holder.id === this.s.me.id;
      if (this.mine) this.wasMine = true;
      if (ENDED_BY_STATE[d.state]) this.endedReason = ENDED_BY_STATE[d.state];
      else if (!this.mine && this.wasMine && holder) this.endedReason = "Đã chuyển cho " + personName(holder) + ".";
      else this.endedReason = null;
      if (d.state === "erased" && !this.erased) this.erase();
      if (d.state === "closed" || d.state === "erased") this.acknowledgeAlert();
      this.render();
    }

    erase() {
      this.erased = true;
      ["messages", "notes-list", "cues"].forEach((cls) => { this.q("." + cls).textContent = ""; });
      this.q(".messages").append(h("li", "message-erased muted", TEXT.erasedNote));
      this.data = Object.assign({}, this.data, { screening: null, cues: [], callback: null });
      this.q(".notes-empty").hidden = true;
    }

    setReadonly(text) {
      const note = this.q(".readonly-note");
      note.textContent = text || "";
      note.hidden = !text;
    }

    render() {
      const d = this.data;
      if (!d) { this.setControls(false, false, false); return; }
      this.renderHeader(d);
      this.renderInfo(d);
      const ended = !!this.endedReason;
      const ending = this.q(".ended");
      ending.textContent = this.endedReason || "";
      ending.hidden = !ended;
      this.setReadonly(!ended && !this.mine && d.assigned_to
        ? "Cuộc trò chuyện đang do " + personName(d.assigned_to) + " phụ trách. Bạn chỉ xem, không trả lời được." : "");
      this.root.classList.toggle("is-ended", ended);
      this.tab.classList.toggle("ended", ended);
      this.tabState.textContent = ended ? " · " + (TAB_STATE[d.state] || "đã chuyển") : "";
      const canAct = this.mine && !ended;
      const windowOpen = !d.reply_window || d.reply_window.open !== false;
      const note = this.q(".reply-window");
      note.hidden = !(canAct && !windowOpen);
      note.textContent = canAct && !windowOpen ? (d.reply_window.reason || TEXT.windowClosed) : "";
      this.setControls(canAct && windowOpen, canAct, d.state !== "erased");
    }

    setControls(canReply, canAct, canNote) {
      [".reply-text", ".reply-send", ".canned"].forEach((s) => { this.q(s).disabled = !canReply; });
      [".transfer-to", ".transfer", ".outcome", ".close-conversation"].forEach((s) => { this.q(s).disabled = !canAct; });
      this.root.querySelectorAll(".refer").forEach((b) => { b.disabled = !canAct; });
      [".note-text", ".note-add"].forEach((s) => { this.q(s).disabled = !canNote; });
    }

    renderHeader(d) {
      const meta = this.q(".conv-meta");
      meta.textContent = "";
      const priority = h("span", "badge " + priorityClass(d.priority), d.priority_title || d.priority || "");
      const parts = [channelLabel(d.channel), CONSENT[d.consent] || ""];
      if (d.risk_level && !(d.screening && d.screening.title)) parts.push("Mức rủi ro: " + d.risk_level);
      if (d.assigned_to) parts.push("Phụ trách: " + personName(d.assigned_to));
      meta.append(priority, document.createTextNode(" " + parts.filter(Boolean).join(" · ")));
      this.tabLabel.textContent = "#" + this.id + " · " + channelLabel(d.channel);
      this.tab.classList.toggle("danger", d.priority === "danger");
    }

    renderInfo(d) {
      const screening = this.q(".screening");
      screening.hidden = !(d.screening && d.screening.title);
      this.q(".screening-title").textContent = d.screening && d.screening.title ? d.screening.title : "";
      const cues = Array.isArray(d.cues) ? d.cues : [];
      const list = this.q(".cues");
      list.textContent = "";
      cues.forEach((cue) => list.append(h("li", "", cue)));
      this.q(".cues-box").hidden = cues.length === 0;
      const callback = this.q(".callback");
      callback.hidden = !d.callback;
      callback.textContent = d.callback
        ? "Xin gọi lại: số " + (d.callback.phone || "—") + (d.callback.when ? " · thời gian: " + d.callback.when : "") : "";
    }

    setActive(active) {
      this.root.hidden = !active;
      this.tab.classList.toggle("active", active);
      if (active) this.tab.setAttribute("aria-current", "true"); else this.tab.removeAttribute("aria-current");
      if (active) {
        this.setUnread(false);
        const list = this.q(".messages");
        list.scrollTop = list.scrollHeight;
      }
    }

    setUnread(unread) {
      this.tab.classList.toggle("unread", unread);
      this.tabDot.hidden = !unread;
    }

    updateCounter() {
      this.q(".counter").textContent = this.q(".reply-text").value.length + "/" + MAX_TEXT;
    }

    insertCanned() {
      const select = this.q(".canned");
      const chosen = this.s.options.canned_replies.find((c) => String(c.id) === select.value);
      select.value = "";
      const text = this.q(".reply-text");
      if (!chosen || text.disabled) return;
      const start = text.selectionStart ?? text.value.length;
      const end = text.selectionEnd ?? start;
      text.setRangeText(String(chosen.text || ""), start, end, "end");
      if (text.value.length > MAX_TEXT) text.value = text.value.slice(0, MAX_TEXT);
      this.updateCounter();
      text.focus();
    }

    async sendReply() {
      const box = this.q(".reply-text");
      const text = box.value.trim();
      if (this.sending || box.disabled || !text) return;
      if (text.length > MAX_TEXT) { showError(new ApiError(0, "Tin nhắn dài quá " + MAX_TEXT + " ký tự."), "action"); return; }
      this.sending = true;
      try {
        const result = await this.post("/messages", { text });
        clearError("action");
        if (box.value.trim() === text) box.value = "";
        this.updateCounter();
        if (result.message) this.addMessage(result.message, false);
      } catch (e) {
        showError(e, "action");
        if (e.status === 409) this.reload();
      } finally {
        this.sending = false;
      }
    }

    post(suffix, body) { return api("POST", "/conversations/" + this.id + suffix, body); }

    async addNote() {
      const box = this.q(".note-text");
      const text = box.value.trim();
      if (this.noteBusy || box.disabled || !text) return;
      this.noteBusy = true;
      const result = await act(() => this.post("/notes", { text }));
      this.noteBusy = false;
      if (!result || this.destroyed) return;
      box.value = "";
      if (result.note) { this.q(".notes-list").append(renderNote(result.note)); this.q(".notes-empty").hidden = true; }
    }

    async transfer() {
      const select = this.q(".transfer-to");
      if (!checkChoice(select, "Vui lòng chọn tư vấn viên nhận.")) return;
      const to = select.value;
      const data = await act(() => this.post("/transfer", { to }));
      if (data && !this.destroyed) this.applyData(Object.assign({ state: "counsellor", assigned_to: { id: null, username: to } }, data));
      refreshQueue();
    }

    async refer(referral) {
      const question = "Chuyển tuyến " + referral.title + ": gửi cho người dùng số điện thoại và lời hướng dẫn. Thao tác này sẽ được ghi lại. Tiếp tục?";
      if (!window.confirm(question)) return;
      const result = await act(() => this.post("/refer", { to: referral.code }));
      if (result && result.message) this.addMessage(result.message, false);
    }

    async close() {
      const select = this.q(".outcome");
      if (!checkChoice(select, "Vui lòng chọn kết quả trước khi kết thúc.")) return;
      const outcome = select.value;
      const result = await act(() => this.post("/close", { outcome }));
      if (result && !this.destroyed) this.applyEvent({ state: "closed", assigned_to: this.data.assigned_to });
      refreshQueue();
    }

    showAlert() {
      const banner = this.q(".alert-banner");
      this.q(".alert-text").textContent = TEXT.danger;
      banner.hidden = false;
      this.tab.classList.add("alert");
      if (this.s.activeId !== this.id) this.setUnread(true);
    }

    acknowledgeAlert() {
      this.q(".alert-banner").hidden = true;
      this.tab.classList.remove("alert");
      this.s.alerts.delete(this.id);
      if (this.s === session) removeUrgent("alert:" + this.id);
    }

    async toggleAudit() {
      const button = this.q(".audit-toggle");
      const box = this.q(".audit");
      if (!box.hidden) { box.hidden = true; button.setAttribute("aria-expanded", "false"); return; }
      const data = await act(() => api("GET", "/audit?conversation_id=" + encodeURIComponent(this.id)));
      if (!data || this.destroyed) return;
      box.textContent = "";
      box.append(this.auditTable(data.entries || []));
      box.hidden = false;
      button.setAttribute("aria-expanded", "true");
    }

    auditTable(entries) {
      if (!entries.length) return h("p", "muted", "Chưa có mục nào trong nhật ký.");
      const table = h("table", "audit-table");
      table.append(h("caption", "", "Nhật ký truy cập cuộc trò chuyện #" + this.id));
      const headRow = h("tr");
      ["Thời gian", "Người thực hiện", "Hành động", "Đối tượng", "Chi tiết"].forEach((t) => {
        const th = h("th", "", t);
        th.scope = "col";
        headRow.append(th);
      });
      const head = h("thead");
      head.append(headRow);
      table.append(head);
      const body = h("tbody");
      entries.forEach((entry) => {
        const detail = entry.detail && typeof entry.detail === "object" ? JSON.stringify(entry.detail) : entry.detail;
        const row = h("tr");
        const when = h("td");
        when.append(timeNode(entry.at));
        row.append(when, h("td", "", personName(entry.actor)), h("td", "", entry.action),
          h("td", "", [entry.target_type, entry.target_id].filter((x) => x !== null && x !== undefined).join(" #")),
          h("td", "detail", detail === undefined ? "" : detail));
        body.append(row);
      });
      table.append(body);
      const wrap = h("div", "audit-wrap");
      wrap.append(table);
      return wrap;
    }

    destroy() {
      this.destroyed = true;
      this.root.remove();
      this.tab.remove();
    }
  }

  // ---------- wiring ----------

  function bindStaticHandlers() {
    el.loginForm.addEventListener("submit", onLoginSubmit);
    el.logout.addEventListener("click", onLogout);
    el.availability.addEventListener("change", onAvailabilityChange);
    el.apiErrorDismiss.addEventListener("click", () => clearError());
    window.addEventListener("focus", () => {
      if (session) { session.urgent.clear(); updateTitle(); }
    });
    document.addEventListener("pointerdown", unlockAudio, { passive: true });
    document.addEventListener("keydown", unlockAudio);
    window.addEventListener("unhandledrejection", (event) => { event.preventDefault(); showError(event.reason, "action"); });
  }

  boot();
})();
