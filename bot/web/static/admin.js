// Admin pages for Đồng Hành: FAQ topics and directory services (draft -> review ->
// publish, versions, rollback), the missed-messages queue, the numbers and the model.
// Everything from the API is rendered with textContent, charts are parsed as SVG
// documents (never as HTML); no inline scripts or styles (strict CSP).
(function () {
  "use strict";

  const API = "/api/v1";
  const EDITOR_ROLES = ["admin", "editor"];
  const STATS_ROLES = ["admin", "editor", "supervisor"];
  const ROLES = { counsellor: "Tư vấn viên", supervisor: "Giám sát viên", admin: "Quản trị", editor: "Biên tập" };
  const STATE = { published: "Đã xuất bản", draft: "Bản nháp mới", retired: "Ngừng dùng", superseded: "Phiên bản cũ" };
  const REASONS = { fallback: "Bot không hiểu", low_confidence: "Bot đoán, chưa chắc", correction: "Người dùng nói bot trả lời sai" };
  const KINDS = { hotline: "Đường dây nóng", police: "Công an", health: "Y tế", shelter: "Nơi tạm lánh", legal_aid: "Trợ giúp pháp lý", social_support: "Hỗ trợ xã hội", labour: "Lao động", consular: "Lãnh sự", ngo: "Tổ chức xã hội" };
  const TRAINING = { running: "Đang huấn luyện", installed: "Đã dùng mô hình mới", refused: "Không dùng mô hình mới", failed: "Huấn luyện thất bại" };
  const ANSWER_MAX = 600;

  const $ = (id) => document.getElementById(id);
  let me = null;
  let csrf = "";
  let intents = [];
  let serviceChoices = { units: [], kinds: [] };
  const open = { faq: null, service: null };  // the topic detail shown in each editor
  let trainingTimer = null;

  // ---------- helpers ----------

  function h(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function formatTime(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return "";
    const p = (n) => String(n).padStart(2, "0");
    return p(d.getDate()) + "/" + p(d.getMonth() + 1) + "/" + d.getFullYear() + " " + p(d.getHours()) + ":" + p(d.getMinutes());
  }

  function lines(text) { return String(text || "").split("\n").map((s) => s.trim()).filter(Boolean); }

  class ApiError extends Error {
    constructor(status, message, problems) { super(message); this.status = status; this.problems = problems || []; }
  }

  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    const init = { method, credentials: "same-origin", headers };
    if (method !== "GET" && csrf) headers["X-CSRF-Token"] = csrf;
    if (body !== undefined) { headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
    let response;
    try { response = await fetch(API + path, init); } catch (e) { throw new ApiError(0, "Không kết nối được với máy chủ. Vui lòng thử lại."); }
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (response.ok) return data || {};
    if (response.status === 401 && me) { showLogin("Phiên đăng nhập đã hết hạn. Vui lòng đăng nhập lại."); }
    const message = data && data.error ? data.error : "Có lỗi xảy ra (mã " + response.status + ").";
    throw new ApiError(response.status, message, data && data.problems);
  }

  function say(text) { $("notice").textContent = text || ""; $("api-error").textContent = ""; }
  function fail(err) { $("notice").textContent = ""; $("api-error").textContent = err && err.message ? err.message : String(err); }

  function showProblems(list, problems) {
    list.replaceChildren(...(problems || []).map((p) => h("li", null, p)));
  }

  // ---------- login ----------

  function showLogin(message) {
    me = null; csrf = "";
    $("workspace").hidden = true; $("login-view").hidden = false; $("boot-status").hidden = true;
    $("login-error").textContent = message || "";
  }

  async function boot() {
    try {
      const who = await api("GET", "/me");
      const token = await api("GET", "/auth/csrf");
      start(who, token.csrf_token);
    } catch (e) {
      showLogin("");
    }
  }

  async function onLogin(event) {
    event.preventDefault();
    $("login-error").textContent = "";
    try {
      const data = await api("POST", "/auth/login", { username: $("login-username").value.trim(), password: $("login-password").value });
      $("login-password").value = "";
      start(data.user, data.csrf_token);
    } catch (e) { $("login-error").textContent = e.message; }
  }

  async function onLogout() {
    try { await api("POST", "/auth/logout"); } catch (e) { /* the session ends anyway */ }
    showLogin("Bạn đã đăng xuất.");
  }

  function start(user, token) {
    me = user; csrf = token;
    $("boot-status").hidden = true; $("login-view").hidden = true; $("workspace").hidden = false;
    $("me").textContent = user.username; $("me-role").textContent = "(" + (ROLES[user.role] || user.role) + (user.may_publish ? ", được duyệt" : "") + ")";
    const editor = EDITOR_ROLES.includes(user.role);
    const readsStats = STATS_ROLES.includes(user.role);
    document.querySelectorAll(".tab-btn").forEach((b) => { b.hidden = !(editor || (readsStats && b.dataset.view === "stats")); });
    $("role-denied").hidden = editor || STATS_ROLES.includes(user.role);
    if (!STATS_ROLES.includes(user.role)) return;
    show(editor ? (location.hash.slice(1) || "faq") : "stats");
  }

  // ---------- views ----------

  function show(view) {
    if (!$("view-" + view)) view = "faq";
    document.querySelectorAll(".view").forEach((v) => { v.hidden = v.id !== "view-" + view; });
    document.querySelectorAll(".tab-btn").forEach((b) => { b.setAttribute("aria-current", b.dataset.view === view ? "page" : "false"); });
    if (location.hash.slice(1) !== view) history.replaceState(null, "", "#" + view);
    const loaders = { faq: loadFaqList, services: loadServiceList, missed: loadMissed, stats: loadStats, training: loadTraining };
    loaders[view]().catch(fail);
  }

  // ---------- FAQ topics ----------

  function keyPath(kind, key) { return (kind === "faq" ? "/faq/" : "/services/") + encodeURIComponent(key); }

  function itemNode(item, onOpen) {
    const li = h("li", "item");
    const b = h("button", "item-btn", item.title);
    b.type = "button";
    b.addEventListener("click", () => onOpen(item.key));
    li.append(b);
    const tags = h("span", "tags");
    tags.append(h("span", "tag tag-" + item.state, STATE[item.state] || item.state));
    if (item.has_draft && item.state !== "draft") tags.append(h("span", "tag tag-draft", "Có bản nháp"));
    if (item.needs_review) tags.append(h("span", "tag tag-stale", "Cần rà soát lại"));
    li.append(tags);
    return li;
  }

  async function loadFaqList() {
    const q = $("faq-q").value.trim();
    const data = await api("GET", "/faq" + (q ? "?q=" + encodeURIComponent(q) : ""));
    $("faq-list").replaceChildren(...data.items.map((item) => itemNode(item, openFaq)));
    if (!data.items.length) $("faq-list").append(h("li", "muted", "Không có chủ đề nào."));
  }

  function fillFaqForm(data) {
    $("faq-title").value = data.title || "";
    $("faq-answer").value = data.answer || "";
    $("faq-more").value = data.more || "";
    $("faq-sources").value = (data.sources || []).join("\n");
    $("faq-reviewed").value = data.reviewed || new Date().toISOString().slice(0, 10);
    $("faq-buttons").value = (data.buttons || []).map((b) => b.title + " | " + b.payload).join("\n");
    $("faq-examples").value = (data.examples || []).join("\n");
    countFaq();
  }

  function faqFormData() {
    return {
      title: $("faq-title").value.trim(),
      answer: $("faq-answer").value.trim(),
      more: $("faq-more").value.trim(),
      sources: lines($("faq-sources").value),
      reviewed: $("faq-reviewed").value,
      buttons: lines($("faq-buttons").value).map((line) => {
        const at = line.lastIndexOf("|");
        return at < 0 ? { title: line, payload: "" } : { title: line.slice(0, at).trim(), payload: line.slice(at + 1).trim() };
      }),
      examples: lines($("faq-examples").value),
    };
  }

  function countFaq() {
    const n = $("faq-answer").value.trim().length;
    $("faq-answer-count").textContent = "(" + n + "/" + ANSWER_MAX + " ký tự)";
    $("faq-answer-count").classList.toggle("over", n > ANSWER_MAX);
    $("faq-examples-count").textContent = "(" + lines($("faq-examples").value).length + " câu)";
  }

  function statusLine(detail) {
    const parts = [];
    if (detail.published) parts.push("Đang dùng: phiên bản " + detail.published.version + (detail.published.published_by ? ", duyệt bởi " + detail.published.published_by : "") + (detail.published.published_at ? " lúc " + formatTime(detail.published.published_at) : ""));
    if (detail.draft) parts.push("Bản nháp sửa bởi " + (detail.draft.edited_by || "?") + " lúc " + formatTime(detail.draft.updated_at));
    if (detail.state === "retired") parts.push("Chủ đề đã ngừng dùng.");
    if (detail.needs_review) parts.push("Cần rà soát lại (đã lâu chưa kiểm tra).");
    return parts.join(" · ");
  }

  function renderEditorButtons(prefix, detail) {
    const draft = detail.draft;
    const mayPublish = !!me.may_publish;
    $(prefix + "-publish").hidden = !mayPublish;
    $(prefix + "-publish").disabled = !draft || (draft.edited_by === me.username);
    $(prefix + "-publish").title = draft && draft.edited_by === me.username ? "Cần một người duyệt khác với người sửa cuối cùng." : "";
    $(prefix + "-discard").hidden = !draft;
    $(prefix + "-retire").hidden = !mayPublish || !detail.published || detail.state === "retired";
  }

  async function openFaq(key) {
    const detail = await api("GET", keyPath("faq", key));
    showFaq(detail);
  }

  function showFaq(detail) {
    open.faq = detail;
    $("faq-editor").hidden = false;
    $("faq-key-wrap").hidden = true;
    $("faq-editor-title").textContent = (detail.title || detail.key) + " (" + detail.key + ")";
    $("faq-status").textContent = statusLine(detail);
    fillFaqForm((detail.draft || detail.published || {}).data || {});
    showProblems($("faq-problems"), detail.problems);
    renderEditorButtons("faq", detail);
    loadVersions("faq", detail.key).catch(fail);
  }

  function newFaq() {
    open.faq = null;
    $("faq-editor").hidden = false;
    $("faq-key-wrap").hidden = false;
    $("faq-key").value = "";
    $("faq-editor-title").textContent = "Chủ đề mới";
    $("faq-status").textContent = "Lưu bản nháp, rồi một người có quyền duyệt sẽ xuất bản.";
    fillFaqForm({});
    showProblems($("faq-problems"), []);
    ["faq-publish", "faq-discard", "faq-retire"].forEach((id) => { $(id).hidden = true; });
    $("faq-versions").replaceChildren();
    $("faq-key").focus();
  }

  async function saveFaq(event) {
    event.preventDefault();
    try {
      const data = faqFormData();
      let detail;
      if (open.faq) {
        if (open.faq.draft) data.draft_updated_at = open.faq.draft.updated_at;
        detail = await api("PUT", keyPath("faq", open.faq.key), data);
      } else {
        detail = await api("POST", "/faq", Object.assign({ key: $("faq-key").value.trim() }, data));
      }
      showFaq(detail);
      say(detail.problems.length ? "Đã lưu bản nháp. Cần sửa các điểm dưới đây trước khi xuất bản." : "Đã lưu bản nháp. Người có quyền duyệt có thể xuất bản.");
      loadFaqList().catch(fail);
    } catch (e) { fail(e); showProblems($("faq-problems"), e.problems); }
  }

  async function publish(kind) {
    const detail = open[kind];
    if (!detail) return;
    const prefix = kind === "faq" ? "faq" : "svc";
    try {
      const body = detail.draft ? { draft_updated_at: detail.draft.updated_at } : {};
      const version = await api("POST", keyPath(kind, detail.key) + "/publish", body);
      say("Đã xuất bản phiên bản " + version.version + ". Bot dùng nội dung mới ngay.");
      await (kind === "faq" ? openFaq(detail.key) : openService(detail.key));
      (kind === "faq" ? loadFaqList : loadServiceList)().catch(fail);
    } catch (e) { fail(e); showProblems($(prefix + "-problems"), e.problems); }
  }

  async function discard(kind) {
    const detail = open[kind];
    if (!detail || !window.confirm("Bỏ bản nháp này? Nội dung đang dùng không thay đổi.")) return;
    try {
      await api("DELETE", keyPath(kind, detail.key) + "/draft");
      say("Đã bỏ bản nháp.");
      await (kind === "faq" ? openFaq(detail.key) : openService(detail.key));
    } catch (e) { fail(e); }
  }

  async function retire(kind) {
    const detail = open[kind];
    if (!detail || !window.confirm("Ngừng dùng mục này? Bot sẽ không trả lời bằng nó nữa (có thể khôi phục từ phiên bản cũ).")) return;
    try {
      await api("POST", keyPath(kind, detail.key) + "/retire");
      say("Đã ngừng dùng.");
      await (kind === "faq" ? openFaq(detail.key) : openService(detail.key));
      (kind === "faq" ? loadFaqList : loadServiceList)().catch(fail);
    } catch (e) { fail(e); showProblems($((kind === "faq" ? "faq" : "svc") + "-problems"), e.problems); }
  }

  async function loadVersions(kind, key) {
    const list = $(kind === "faq" ? "faq-versions" : "svc-versions");
    const data = await api("GET", keyPath(kind, key) + "/versions");
    list.replaceChildren(...data.versions.map((v) => versionNode(kind, key, v, data.versions)));
  }

  function versionNode(kind, key, version, all) {
    const li = h("li", "version");
    const who = version.state === "draft" ? "sửa bởi " + (version.edited_by || "?") : "sửa bởi " + (version.edited_by || "hệ thống") + ", duyệt bởi " + (version.published_by || "hệ thống");
    li.append(h("span", null, "Phiên bản " + version.version + " – " + (STATE[version.state] || version.state) + " – " + who + " – " + formatTime(version.published_at || version.updated_at) + (version.note ? " (" + version.note + ")" : "")));
    const current = all.find((v) => v.state === "published");
    if (current && current.version !== version.version) {
      const compare = h("button", "btn btn-quiet btn-small", "So sánh với bản đang dùng");
      compare.type = "button";
      compare.addEventListener("click", () => showCompare(kind, version, current));
      li.append(compare);
    }
    if (me.may_publish && version.state === "superseded") {
      const back = h("button", "btn btn-small", "Khôi phục phiên bản này");
      back.type = "button";
      back.addEventListener("click", () => rollback(kind, key, version.version));
      li.append(back);
    }
    return li;
  }

  function showCompare(kind, older, current) {
    const box = $(kind === "faq" ? "faq-compare" : "svc-compare");
    box.hidden = false;
    const table = h("table", "compare-table");
    const head = h("tr");
    head.append(h("th", null, "Mục"), h("th", null, "Phiên bản " + older.version), h("th", null, "Đang dùng (phiên bản " + current.version + ")"));
    table.append(head);
    const fields = Array.from(new Set(Object.keys(older.data).concat(Object.keys(current.data))));
    let differences = 0;
    fields.forEach((field) => {
      const a = JSON.stringify(older.data[field] === undefined ? "" : older.data[field]);
      const b = JSON.stringify(current.data[field] === undefined ? "" : current.data[field]);
      if (a === b) return;
      differences += 1;
      const row = h("tr", "changed");
      row.append(h("th", null, field), h("td", null, display(older.data[field])), h("td", null, display(current.data[field])));
      table.append(row);
    });
    box.replaceChildren(h("h4", null, differences ? differences + " mục khác nhau" : "Hai phiên bản giống nhau"), table);
  }

  function display(value) {
    if (value === undefined || value === null) return "";
    if (Array.isArray(value)) return value.map((v) => (typeof v === "object" ? v.title + " | " + v.payload : v)).join("\n");
    return String(value);
  }

  async function rollback(kind, key, number) {
    if (!window.confirm("Khôi phục phiên bản " + number + " và dùng ngay?")) return;
    try {
      const version = await api("POST", keyPath(kind, key) + "/rollback", { version: number });
      say("Đã khôi phục: phiên bản " + version.version + " có nội dung của phiên bản " + number + ".");
      await (kind === "faq" ? openFaq(key) : openService(key));
    } catch (e) { fail(e); }
  }

  // ---------- services ----------

  async function loadServiceList() {
    const q = $("svc-q").value.trim();
    const data = await api("GET", "/services" + (q ? "?q=" + encodeURIComponent(q) : ""));
    serviceChoices = { units: data.units || [], kinds: data.kinds || [] };
    $("svc-list").replaceChildren(...data.items.map((item) => itemNode(item, openService)));
  }

  function fillServiceChoices() {
    const kind = $("svc-kind");
    kind.replaceChildren(...serviceChoices.kinds.map((k) => { const o = h("option", null, KINDS[k] || k); o.value = k; return o; }));
    const province = $("svc-province");
    const all = h("option", null, "Toàn quốc"); all.value = "all";
    province.replaceChildren(all, ...serviceChoices.units.map((u) => { const o = h("option", null, u); o.value = u; return o; }));
  }

  function fillServiceForm(data) {
    fillServiceChoices();
    $("svc-name").value = data.name || "";
    $("svc-kind").value = data.kind || "social_support";
    $("svc-province").value = (data.provinces || ["all"])[0];
    $("svc-helps").value = data.helps_with || "";
    $("svc-phone").value = data.phone || "";
    $("svc-website").value = data.website || "";
    $("svc-hours").value = data.hours || "";
    $("svc-source").value = data.source || "";
    $("svc-verified").value = data.verified_at || "";
    $("svc-rank").value = data.rank || 100;
  }

  function serviceFormData() {
    // fields the form does not show (free, languages, address, admin notes) are kept
    const shown = open.service ? (open.service.draft || open.service.published || {}).data || {} : {};
    const kept = Object.assign({}, shown);
    ["id", "name", "kind", "provinces", "helps_with", "phone", "website", "hours", "source", "verified_at", "rank"].forEach((k) => { delete kept[k]; });
    const data = {
      name: $("svc-name").value.trim(), kind: $("svc-kind").value, provinces: [$("svc-province").value],
      helps_with: $("svc-helps").value.trim(), phone: $("svc-phone").value.trim(), website: $("svc-website").value.trim(),
      hours: $("svc-hours").value.trim(), source: $("svc-source").value.trim(), verified_at: $("svc-verified").value,
      rank: parseInt($("svc-rank").value, 10) || 100,
    };
    Object.keys(data).forEach((k) => { if (data[k] === "") delete data[k]; });
    return Object.assign(kept, data);
  }

  async function openService(key) {
    const detail = await api("GET", keyPath("service", key));
    showService(detail);
  }

  function showService(detail) {
    open.service = detail;
    $("svc-editor").hidden = false;
    $("svc-key-wrap").hidden = true;
    $("svc-editor-title").textContent = detail.title + " (" + detail.key + ")";
    $("svc-status").textContent = statusLine(detail).replace("Cần rà soát lại (đã lâu chưa kiểm tra).", "Cần xác minh lại (đã lâu chưa kiểm tra).");
    fillServiceForm((detail.draft || detail.published || {}).data || {});
    showProblems($("svc-problems"), detail.problems);
    renderEditorButtons("svc", detail);
    loadVersions("service", detail.key).catch(fail);
  }

  function newService() {
    open.service = null;
    $("svc-editor").hidden = false;
    $("svc-key-wrap").hidden = false;
    $("svc-key").value = "";
    $("svc-editor-title").textContent = "Dịch vụ mới";
    $("svc-status").textContent = "";
    fillServiceForm({});
    ["svc-publish", "svc-discard", "svc-retire"].forEach((id) => { $(id).hidden = true; });
    $("svc-versions").replaceChildren();
  }

  async function saveService(event) {
    event.preventDefault();
    try {
      const data = serviceFormData();
      let detail;
      if (open.service) {
        if (open.service.draft) data.draft_updated_at = open.service.draft.updated_at;
        detail = await api("PUT", keyPath("service", open.service.key), data);
      } else {
        detail = await api("POST", "/services", Object.assign({ key: $("svc-key").value.trim() }, data));
      }
      showService(detail);
      say("Đã lưu bản nháp.");
      loadServiceList().catch(fail);
    } catch (e) { fail(e); showProblems($("svc-problems"), e.problems); }
  }

  // ---------- missed messages ----------

  async function loadMissed() {
    const [data, known] = await Promise.all([api("GET", "/missed"), api("GET", "/intents")]);
    intents = known.items;
    $("missed-list").replaceChildren(...data.items.map(missedNode));
    $("missed-empty").hidden = data.items.length > 0;
  }

  function missedNode(item) {
    const li = h("li", "missed card");
    li.dataset.id = String(item.id);
    li.append(h("p", "missed-text", item.text));
    const guessed = item.guessed_intent && item.guessed_intent !== "nlu_fallback";
    li.append(h("p", "muted", (REASONS[item.reason] || item.reason) + (guessed ? " · bot đoán: " + titleOf(item.guessed_intent) + " (" + Math.round(item.confidence * 100) + "%)" : "") + " · " + formatTime(item.created_at)));
    const row = h("div", "actions");
    const label = h("label", "sr-only", "Chủ đề để gán");
    const select = h("select", "missed-intent");
    select.id = "missed-intent-" + item.id;
    label.htmlFor = select.id;
    const first = h("option", null, "— Chọn chủ đề —"); first.value = "";
    select.append(first, ...intents.map((i) => { const o = h("option", null, i.title + " (" + i.intent + ")"); o.value = i.intent; return o; }));
    if (item.guessed_intent && intents.some((i) => i.intent === item.guessed_intent)) select.value = item.guessed_intent;
    const assign = h("button", "btn btn-primary", "Gán vào chủ đề");
    assign.type = "button";
    assign.addEventListener("click", () => missedAction(item.id, "assign", { intent: select.value }));
    const topic = h("button", "btn", "Tạo chủ đề mới");
    topic.type = "button";
    topic.addEventListener("click", () => newTopicFromMissed(item.id));
    const dismiss = h("button", "btn btn-quiet", "Bỏ qua");
    dismiss.type = "button";
    dismiss.addEventListener("click", () => missedAction(item.id, "dismiss", {}));
    row.append(label, select, assign, topic, dismiss);
    li.append(row);
    return li;
  }

  function titleOf(intent) {
    const found = intents.find((i) => i.intent === intent);
    return found ? found.title : intent;
  }

  async function missedAction(id, action, body) {
    if (action === "assign" && !body.intent) { fail("Hãy chọn một chủ đề."); return; }
    try {
      await api("POST", "/missed/" + id + "/" + action, body);
      say(action === "assign" ? "Đã gán. Bot sẽ học câu này khi huấn luyện lại xong (xem mục Mô hình ngôn ngữ)." : "Đã bỏ qua.");
      await loadMissed();
    } catch (e) { fail(e); }
  }

  async function newTopicFromMissed(id) {
    const key = window.prompt("Mã chủ đề mới (chữ thường không dấu, số, dấu _):");
    if (!key) return;
    const title = window.prompt("Tên chủ đề:");
    if (!title) return;
    try {
      await api("POST", "/missed/" + id + "/new-topic", { key: key.trim(), title: title.trim() });
      say("Đã tạo bản nháp chủ đề mới với câu này làm câu hỏi mẫu. Hãy viết câu trả lời, thêm nguồn và câu mẫu.");
      show("faq");
      await openFaq(key.trim());
    } catch (e) { fail(e); }
  }

  // ---------- numbers ----------

  function statsQuery() {
    const params = new URLSearchParams();
    if ($("stats-from").value) params.set("from", $("stats-from").value);
    if ($("stats-to").value) params.set("to", $("stats-to").value);
    if ($("stats-channel").value) params.set("channel", $("stats-channel").value);
    return params.toString();
  }

  async function loadStats() {
    const query = statsQuery();
    $("stats-csv").href = API + "/stats.csv" + (query ? "?" + query : "");
    const report = await api("GET", "/stats" + (query ? "?" + query : ""));
    if (!$("stats-from").value) $("stats-from").value = report.period.from;
    if (!$("stats-to").value) $("stats-to").value = report.period.to;
    $("stats-suppression").textContent = report.suppression ? report.suppression.explanation : "";
    $("stats-measures").replaceChildren(...Object.values(report.measures || {}).map(measureNode));
    $("stats-charts").replaceChildren(...Object.entries(report.charts || {}).map(([name, svg]) => chartNode(name, svg)).filter(Boolean));
    $("stats-tables").replaceChildren(...Object.entries(report.tables || {}).map(([name, table]) => tableNode(name, table)));
  }

  function measureNode(m) {
    const box = h("div", "measure card");
    box.append(h("p", "measure-label", m.label));
    box.append(h("p", "measure-value", m.value === null || m.value === undefined ? (m.reason || "—") : m.value + " " + (m.unit || "")));
    return box;
  }

  function chartNode(name, svgText) {
    const doc = new DOMParser().parseFromString(svgText, "image/svg+xml");
    const svg = doc.documentElement;
    if (!svg || svg.nodeName.toLowerCase() !== "svg") return null;
    svg.querySelectorAll("script,foreignObject").forEach((n) => n.remove());
    const figure = h("figure", "chart");
    figure.dataset.chart = name;
    figure.append(document.importNode(svg, true));
    return figure;
  }

  function tableNode(name, table) {
    const wrap = h("div", "stats-table card");
    wrap.dataset.table = name;
    const t = h("table");
    t.append(h("caption", null, table.title));
    const head = h("tr");
    head.append(h("th", null, ""), ...table.columns.map((c) => h("th", null, c.label)));
    t.append(head);
    table.rows.forEach((row) => {
      const tr = h("tr");
      const th = h("th", null, row.label); th.scope = "row";
      tr.append(th, ...table.columns.map((c) => h("td", null, row.values[c.key])));
      t.append(tr);
    });
    if (table.total) {
      const tr = h("tr", "total");
      const th = h("th", null, table.total.label); th.scope = "row";
      tr.append(th, ...table.columns.map((c) => h("td", null, table.total.values[c.key])));
      t.append(tr);
    }
    wrap.append(t);
    if (table.note) wrap.append(h("p", "muted", table.note));
    return wrap;
  }

  // ---------- the model ----------

  async function loadTraining() {
    const status = await api("GET", "/training/status");
    const model = status.model;
    $("training-model").textContent = model.current
      ? "Mô hình đang dùng đã khớp với nội dung mới nhất."
      : "Mô hình đang dùng chưa học nội dung mới nhất" + (status.training ? " (đang huấn luyện)." : ".");
    const last = status.last;
    $("training-progress-wrap").hidden = !status.training;
    if (status.training && (status.waiting || !last || last.state !== "running")) {
      $("training-progress").value = 0;
      $("training-stage").textContent = "Sắp huấn luyện lại: chờ vài giây để gộp các thay đổi liền nhau…";
    } else if (last && status.training) {
      $("training-progress").value = last.progress;
      $("training-stage").textContent = "Đang huấn luyện: " + last.progress + "%";
    }
    if (last && !status.training) {
      const result = last.result || {};
      const score = result.candidate && result.candidate.as_written !== undefined
        ? " Độ chính xác trên dữ liệu kiểm tra: " + Math.round(result.candidate.as_written * 1000) / 10 + "%" + (result.current && result.current.as_written !== undefined ? " (mô hình trước: " + Math.round(result.current.as_written * 1000) / 10 + "%)" : "") + "."
        : "";
      $("training-last").textContent = "Lần gần nhất: " + (TRAINING[last.state] || last.state) + " lúc " + formatTime(last.finished_at || last.started_at) + "." + score + (last.reason ? " Lý do: " + last.reason : "");
    } else if (!last) {
      $("training-last").textContent = "Chưa huấn luyện lại lần nào.";
    }
    $("training-run").hidden = !(me.role === "admin" && !model.current && !status.training);
    clearTimeout(trainingTimer);
    if (status.training && !$("view-training").hidden) trainingTimer = setTimeout(() => loadTraining().catch(fail), 2000);
  }

  async function runTraining() {
    try { await api("POST", "/training"); say("Đã bắt đầu huấn luyện lại."); await loadTraining(); } catch (e) { fail(e); }
  }

  // ---------- wiring ----------

  function bind() {
    $("login-form").addEventListener("submit", onLogin);
    $("logout").addEventListener("click", onLogout);
    document.querySelectorAll(".tab-btn").forEach((b) => b.addEventListener("click", () => { say(""); show(b.dataset.view); }));
    $("faq-search").addEventListener("submit", (e) => { e.preventDefault(); loadFaqList().catch(fail); });
    $("faq-new").addEventListener("click", newFaq);
    $("faq-form").addEventListener("submit", saveFaq);
    $("faq-publish").addEventListener("click", () => publish("faq"));
    $("faq-discard").addEventListener("click", () => discard("faq"));
    $("faq-retire").addEventListener("click", () => retire("faq"));
    $("faq-answer").addEventListener("input", countFaq);
    $("faq-examples").addEventListener("input", countFaq);
    $("svc-search").addEventListener("submit", (e) => { e.preventDefault(); loadServiceList().catch(fail); });
    $("svc-new").addEventListener("click", newService);
    $("svc-form").addEventListener("submit", saveService);
    $("svc-publish").addEventListener("click", () => publish("service"));
    $("svc-discard").addEventListener("click", () => discard("service"));
    $("svc-retire").addEventListener("click", () => retire("service"));
    $("stats-form").addEventListener("submit", (e) => { e.preventDefault(); loadStats().catch(fail); });
    $("training-run").addEventListener("click", runTraining);
  }

  bind();
  boot();
})();
