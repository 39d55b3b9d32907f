// Web chat client: one WebSocket, messages kept until the server acknowledges them,
// all text rendered with textContent (never as HTML), and a quick exit that leaves
// nothing behind in this tab.
(function () {
  "use strict";
  var SESSION_KEY = "dh_session";
  var NEUTRAL_SITE = "https://www.google.com/search?q=th%E1%BB%9Di+ti%E1%BA%BFt";
  var log = document.getElementById("log");
  var statusLine = document.getElementById("status");
  var form = document.getElementById("composer");
  var input = document.getElementById("text");
  var socket = null;
  var unacked = [];
  var retryDelay = 1000;
  var escPresses = [];

  function randomId() {
    var bytes = new Uint8Array(18);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function sessionId() {
    var id = window.sessionStorage.getItem(SESSION_KEY);
    if (!id) { id = randomId(); window.sessionStorage.setItem(SESSION_KEY, id); }
    return id;
  }

  function scrollDown() { log.scrollTop = log.scrollHeight; }

  function addBubble(text, who) {
    var el = document.createElement("div");
    el.className = "msg " + who;
    el.textContent = text;
    log.appendChild(el);
    scrollDown();
    return el;
  }

  function addChips(buttons) {
    if (!buttons || !buttons.length) { return; }
    var box = document.createElement("div");
    box.className = "chips";
    buttons.forEach(function (b) {
      var chip = document.createElement("button");
      chip.type = "button";
      chip.className = "chip";
      chip.textContent = b.title;
      chip.addEventListener("click", function () {
        Array.prototype.forEach.call(box.querySelectorAll("button"), function (c) { c.disabled = true; });
        send(b.payload, b.title);
      });
      box.appendChild(chip);
    });
    log.appendChild(box);
    scrollDown();
  }

  function transmit(item) {
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ type: "message", id: item.id, text: item.text }));
    }
  }

  function send(text, shown) {
    if (!text.trim()) { return; }
    var item = { id: randomId(), text: text, bubble: addBubble(shown || text, "user pending") };
    unacked.push(item);
    transmit(item);
  }

  function onFrame(event) {
    var frame;
    try { frame = JSON.parse(event.data); } catch (e) { return; }
    if (frame.type === "reply") {
      addBubble(frame.text, "bot");
      addChips(frame.buttons);
    } else if (frame.type === "ack") {
      unacked = unacked.filter(function (item) {
        if (item.id === frame.id) { item.bubble.classList.remove("pending"); return false; }
        return true;
      });
    } else if (frame.type === "ready") {
      statusLine.textContent = "";
      retryDelay = 1000;
      unacked.forEach(transmit);
    } else if (frame.type === "error") {
      unacked = unacked.filter(function (item) {
        if (item.id === frame.id) { item.bubble.classList.add("failed"); return false; }
        return true;
      });
      statusLine.textContent = "Tin nhắn chưa gửi được. Bạn thử lại nhé.";
    }
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + window.location.host + "/webhooks/webchat/ws");
    socket.addEventListener("open", function () {
      socket.send(JSON.stringify({ type: "hello", session: sessionId() }));
    });
    socket.addEventListener("message", onFrame);
    socket.addEventListener("close", function () {
      statusLine.textContent = "Mất kết nối, đang thử lại…";
      window.setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 30000);
    });
  }

  function quickExit() {
    try { window.sessionStorage.clear(); window.localStorage.clear(); } catch (e) { /* ignore */ }
    if (socket) { try { socket.close(); } catch (e) { /* ignore */ } }
    log.textContent = "";
    document.title = "Thời tiết";
    window.location.replace(NEUTRAL_SITE);
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    send(input.value);
    input.value = "";
    input.focus();
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); form.requestSubmit(); }
  });
  document.getElementById("quick-exit").addEventListener("click", quickExit);
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") { return; }
    var now = Date.now();
    escPresses = escPresses.filter(function (t) { return now - t < 1500; }).concat([now]);
    if (escPresses.length >= 3) { quickExit(); }
  });
  window.DongHanhChat = { quickExit: quickExit, sessionKey: SESSION_KEY };
  connect();
})();
