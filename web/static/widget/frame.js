/* Switchboard website chat, inside its iframe: the visitor's session (a signed token kept in
   localStorage), their conversation, live replies over SSE resumed with Last-Event-ID (or
   polling with the same ids), sends that a retry never doubles (client message ids), ticks,
   typing, files and the rating. Plain JavaScript, no build step, no inline code. */
(function () {
  "use strict";
  var TEXTS = {
    en: {
      title: "Chat with us", hint: "We usually reply within minutes", placeholder: "Write a message…", send: "Send",
      typing: "Operator is typing…", rate: "How did we do?", rateSend: "Send rating", comment: "Comment (optional)",
      thanks: "Thank you for your rating!", close: "Close chat", attach: "Attach a file", message: "Message",
      log: "Messages", tooMany: "Too many requests: try again in {s} s.", notSent: "Not sent: check your connection.",
      fileType: "This kind of file is not accepted.", fileBig: "This file is too large.", fileCount: "Too many files at once.",
      offline: "We are offline now: leave a message and we will reply as soon as we are back.", failed: "Something went wrong. Reload the page to try again.",
      prechat: "So that we can answer you", name: "Your name", email: "E-mail", phone: "Phone", fill: "Fill in the form above first.",
      reachMe: "Leave your e-mail or phone so that we can answer you.", away: "Nobody is here right now",
      expected: "Expected reply time: {time}"
    },
    ru: {
      title: "Напишите нам", hint: "Обычно отвечаем за несколько минут", placeholder: "Напишите сообщение…", send: "Отправить",
      typing: "Оператор печатает…", rate: "Оцените, как мы помогли", rateSend: "Отправить оценку", comment: "Комментарий (необязательно)",
      thanks: "Спасибо за оценку!", close: "Закрыть чат", attach: "Прикрепить файл", message: "Сообщение",
      log: "Сообщения", tooMany: "Слишком много запросов: попробуйте через {s} с.", notSent: "Не отправлено: проверьте соединение.",
      fileType: "Такие файлы не принимаются.", fileBig: "Файл слишком большой.", fileCount: "Слишком много файлов сразу.",
      offline: "Сейчас мы не в сети: оставьте сообщение, и мы ответим, как только вернёмся.", failed: "Что-то пошло не так. Обновите страницу.",
      prechat: "Чтобы мы могли ответить", name: "Ваше имя", email: "E-mail", phone: "Телефон", fill: "Сначала заполните форму выше.",
      reachMe: "Оставьте e-mail или телефон, чтобы мы могли ответить.", away: "Сейчас нас нет на месте",
      expected: "Ожидаемое время ответа: {time}"
    }
  };
  var params = new URLSearchParams(location.search);
  var inbox = params.get("inbox"), host = params.get("host") || "*";
  var store = "sb:" + inbox, API = "/widget/v1";
  var $ = function (id) { return document.getElementById("sb-" + id); };
  var log = $("log"), text = $("text"), form = $("compose"), errorEl = $("error"), typingEl = $("typing");
  var t = {}, overrides = {}, token = null, config = {}, conv = null, lastMsg = 0, lastEvent = null;
  var source = null, sseFailures = 0, pollTimer = null, isOpen = false, unread = 0, acked = { d: 0, r: 0 };
  var user = null, following = null, pending = {}, shown = {}, typingTimer = null, lastTyping = 0, context = {}, score = null;

  function setLocale(value) {
    var lang = /^ru/i.test(value || "") ? "ru" : "en";
    t = Object.assign({}, TEXTS[lang], overrides[lang] || {});
    document.documentElement.lang = lang;
    document.querySelectorAll("[data-t]").forEach(function (el) { el.textContent = t[el.dataset.t]; });
    document.querySelectorAll("[data-ph]").forEach(function (el) { el.placeholder = t[el.dataset.ph]; });
    document.querySelectorAll("[data-label]").forEach(function (el) { el.setAttribute("aria-label", t[el.dataset.label]); });
  }
  var color = params.get("color") || "";
  if (/^#[0-9a-f]{3,8}$/i.test(color)) document.documentElement.style.setProperty("--accent", color);
  setLocale(params.get("locale") || navigator.language);

  function tell(msg) { if (parent !== window) parent.postMessage(msg, host); }
  function showError(message) { errorEl.textContent = message || ""; errorEl.hidden = !message; }
  function wait(ms) { return new Promise(function (resolve) { setTimeout(resolve, ms); }); }
  function newId() {
    var a = new Uint8Array(16); crypto.getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return (b + 256).toString(16).slice(1); }).join("");
  }

  /* One call of the API; a 401 starts a new session once. Rejects with {status, retry, body}. */
  function call(method, path, raw, retried) {
    var headers = { authorization: "Bearer " + token }, ctl = new AbortController(), body = raw;
    if (raw !== undefined && !(raw instanceof FormData)) { headers["content-type"] = "application/json"; body = JSON.stringify(raw); }
    var timer = setTimeout(function () { ctl.abort(); }, 15000);
    return fetch(API + path, { method: method, headers: headers, body: body, signal: ctl.signal }).then(function (r) {
      clearTimeout(timer);
      if (r.status === 401 && !retried) { token = null; save(""); return start().then(function () { return call(method, path, raw, true); }); }
      if (r.status === 204) return null;
      return r.json().then(function (data) {
        if (r.ok) return data;
        throw { status: r.status, retry: +r.headers.get("retry-after") || 0, body: data };
      });
    }, function () { clearTimeout(timer); throw { status: 0 }; });
  }

  function refusal(err) {
    if (err.status === 429) return t.tooMany.replace("{s}", err.retry || 1);
    if (!err.status) return t.notSent;
    return (err.body && err.body.detail) || t.failed;
  }

  /* The token in our own storage, and a copy in the host page's (through the loader): a browser
     that keeps third-party frames from storage still brings the visitor back. */
  function saved() {
    var found = null;
    try { found = localStorage.getItem(store); } catch (e) { /* storage is off for third-party frames */ }
    return found || location.hash.slice(1) || null;
  }
  function save(value) {
    try { localStorage.setItem(store, value); } catch (e) { /* the host page keeps the copy */ }
    tell({ sb: "token", token: value });
  }

  /* Proof of work (ALTCHA v1): the number whose SHA-256 with the salt is the challenge. */
  function solve(c) {
    var enc = new TextEncoder(), n = 0;
    function next() {
      if (n > c.maxNumber) return Promise.reject({ status: 403 });
      return crypto.subtle.digest("SHA-256", enc.encode(c.salt + n)).then(function (h) {
        var hex = Array.prototype.map.call(new Uint8Array(h), function (b) { return (b + 256).toString(16).slice(1); }).join("");
        if (hex === c.challenge) return btoa(JSON.stringify({ algorithm: c.algorithm, challenge: c.challenge, number: n, salt: c.salt, signature: c.signature }));
        n++; return next();
      });
    }
    return next();
  }

  function start(captcha) {
    return fetch(API + "/inboxes/" + encodeURIComponent(inbox) + "/sessions", {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ token: saved(), captcha: captcha || null, user: user })
    }).then(function (r) {
      return r.json().then(function (data) {
        if (data.challenge && !captcha) return solve(data.challenge).then(start);
        if (!r.ok) throw { status: r.status, retry: +r.headers.get("retry-after") || 0, body: data };
        token = data.token; config = data.config; conv = data.conversation;
        save(token);
        overrides = config.texts || {};
        setLocale(document.documentElement.lang);
        showBanner();
        showPrechat();
      });
    });
  }

  /* Offline: the inbox's text (or ours) and, when the inbox sets it, the expected reply time. */
  function showBanner() {
    var off = config.offline, lines = [];
    if (off) {
      lines.push((overrides[document.documentElement.lang] || {}).offline || off.text || t.offline);
      var n = off.expected_minutes, unit = "minute";
      if (n && n % 1440 === 0) { n /= 1440; unit = "day"; } else if (n && n % 60 === 0) { n /= 60; unit = "hour"; }
      if (n) lines.push(t.expected.replace("{time}", new Intl.NumberFormat(document.documentElement.lang, { style: "unit", unit: unit, unitDisplay: "long" }).format(n)));
      $("status").textContent = t.away;
    }
    $("banner").textContent = lines.join("\n");
    $("banner").hidden = !off;
  }

  function bubble(m) {
    var li = document.createElement("li");
    li.className = "msg" + (m.mine ? " mine" : m.sender === "system" ? " system" : "");
    var body = document.createElement("div");
    body.innerHTML = m.html; // rendered and escaped by the server (channels/text.render_html)
    li.appendChild(body);
    if (m.attachments && m.attachments.length) {
      var files = document.createElement("div"); files.className = "files";
      m.attachments.forEach(function (a) {
        var url = API + "/files/" + a.id + "?token=" + encodeURIComponent(token), el;
        if (/^image\//.test(a.type) && a.ready) { el = document.createElement("img"); el.src = url; el.alt = a.name; }
        else { el = document.createElement("a"); el.href = url; el.textContent = a.name || "file"; el.target = "_blank"; el.rel = "noopener"; }
        files.appendChild(el);
      });
      li.appendChild(files);
    }
    var meta = document.createElement("time"); meta.className = "meta"; meta.dateTime = m.at;
    meta.textContent = new Date(m.at).toLocaleTimeString(document.documentElement.lang, { hour: "2-digit", minute: "2-digit" });
    li.appendChild(meta);
    return li;
  }

  function render(messages) {
    var theirs = 0;
    messages.forEach(function (m) {
      lastMsg = Math.max(lastMsg, m.id);
      var li = bubble(m), again = shown[m.id], old = again || (m.client_id && pending[m.client_id]);
      if (old) log.replaceChild(li, old); else log.appendChild(li);
      if (m.client_id) delete pending[m.client_id];
      shown[m.id] = li;
      if (again) return; // an edit, or its files arrived: shown anew, not counted again
      if (!m.mine) { theirs = Math.max(theirs, m.id); typingEl.hidden = true; tell({ sb: "message", message: { id: m.id, mine: false } }); }
    });
    if (theirs) {
      if (!(isOpen && !document.hidden)) { unread += messages.filter(function (m) { return !m.mine; }).length; tell({ sb: "unread", count: unread }); }
      log.scrollTop = log.scrollHeight;
    }
    tick(theirs);
  }

  function tick(theirs) {
    var seen = isOpen && !document.hidden, body = {};
    if (theirs > acked.d) body.delivered_up_to = acked.d = theirs;
    if (seen && lastMsg > acked.r) { body.read_up_to = acked.r = lastMsg; acked.d = Math.max(acked.d, lastMsg); }
    if (seen && unread) { unread = 0; tell({ sb: "unread", count: 0 }); }
    if (conv && (body.delivered_up_to || body.read_up_to)) call("POST", "/ticks", body).catch(function () {});
  }

  function load(after) {
    after = after === undefined ? lastMsg : after;
    return call("GET", "/chat" + (after ? "?after=" + after : "")).then(function (data) {
      conv = data.conversation;
      render(data.messages);
      showRating();
      showPrechat();
      if (conv && following !== conv.id) { following = conv.id; connect(); }
      if (data.more) return load();
    });
  }

  function onEvent(type, id, data) {
    if (id) lastEvent = Math.max(lastEvent || 0, +id);
    if (type === "resync") { lastMsg = 0; shown = {}; log.textContent = ""; return load(); }
    if (type === "operator.typing") {
      typingEl.hidden = false; clearTimeout(typingTimer);
      typingTimer = setTimeout(function () { typingEl.hidden = true; }, 8000);
      return;
    }
    if (data && conv && data.conversation_id !== conv.id) return;
    if (type === "message.updated") return load(data.message_id - 1).catch(function () {});
    if (/^(message\.|conversation\.)/.test(type)) load().catch(function () {});
  }

  var TYPES = ["message.created", "message.updated", "conversation.status_changed", "conversation.rated", "operator.typing", "resync"];

  /* Live updates: the stream when the inbox allows it and it works, else polling; either way
     from the last event id seen, so nothing is missed and nothing comes twice. */
  function connect() {
    if (source) { source.close(); source = null; }
    clearTimeout(pollTimer);
    if (!conv || !token) return;
    if (config.sse && sseFailures < 3 && window.EventSource) {
      var url = API + "/events?token=" + encodeURIComponent(token) + (lastEvent !== null ? "&last_event_id=" + lastEvent : "");
      var es = source = new EventSource(url);
      es.onopen = function () { sseFailures = 0; };
      es.onerror = function () {
        if (es !== source) return;
        if (++sseFailures >= 3 || es.readyState === 2) { es.close(); source = null; sseFailures = 3; poll(); }
      };
      TYPES.forEach(function (type) {
        es.addEventListener(type, function (e) { onEvent(type, e.lastEventId, e.data ? JSON.parse(e.data) : null); });
      });
    } else poll();
  }

  function poll() {
    clearTimeout(pollTimer);
    call("GET", "/poll" + (lastEvent !== null ? "?after=" + lastEvent : "")).then(function (data) {
      if (data.resync) onEvent("resync");
      data.events.forEach(function (e) { onEvent(e.type, e.id, e.data); });
      lastEvent = data.last_event_id;
      pollTimer = setTimeout(poll, document.hidden ? 15000 : 3000);
    }, function (err) { pollTimer = setTimeout(poll, err.status === 429 ? err.retry * 1000 : 5000); });
  }

  function refresh() {
    if (!token) return;
    if (source || config.sse === false || sseFailures >= 3) { sseFailures = 0; connect(); }
    load().catch(function () {});
  }
  document.addEventListener("visibilitychange", function () { if (!document.hidden) refresh(); });
  addEventListener("online", refresh);

  /* Sending: the client id goes with every try, so a try that timed out and is sent again
     is stored once. */
  function send(cid, body, tries) {
    return call("POST", "/messages", body).then(function () {
      showError("");
      if (pending[cid]) pending[cid].classList.remove("pending");
      var first = !conv;
      return load().then(function () { if (first) sendContext(); });
    }, function (err) {
      if (err.status === 429 || !err.status || err.status >= 500) {
        showError(refusal(err));
        if (tries < 6) return wait(err.status === 429 ? err.retry * 1000 : 1000 * Math.pow(2, tries)).then(function () { return send(cid, body, tries + 1); });
      } else showError(refusal(err));
    });
  }

  /* The pre-chat form, before the first message: the fields the inbox asks for (and, while
     nobody answers, a way to reach the visitor). */
  var FIELDS = ["name", "email", "phone"];
  function showPrechat() {
    var asked = (!conv || conv.status === "closed") && config.prechat || {};
    $("prechat").hidden = !Object.keys(asked).length;
    $("prechat").querySelector("legend").textContent = config.offline ? t.reachMe : t.prechat;
    FIELDS.forEach(function (f) {
      $("prechat").querySelector("[data-field=" + f + "]").hidden = !asked[f];
      $(f).required = asked[f] === "required";
    });
  }
  function details() {
    var given = {}, missing = null;
    if ($("prechat").hidden) return given;
    FIELDS.forEach(function (f) {
      var v = $(f).value.trim();
      if (v) given[f] = v; else if ($(f).required && !missing) missing = $(f);
    });
    if (missing) { showError(t.fill); missing.focus(); return null; }
    return given;
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var value = text.value.trim(), given = details();
    if (!value || !given) return;
    var cid = newId(), li = bubble({ mine: true, html: "", at: new Date().toISOString() });
    li.firstChild.textContent = value; li.classList.add("pending");
    pending[cid] = li; log.appendChild(li); log.scrollTop = log.scrollHeight;
    text.value = "";
    send(cid, Object.assign({ client_id: cid, text: value }, given), 0);
  });
  text.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); form.requestSubmit(); }
  });
  text.addEventListener("input", function () {
    var now = Date.now();
    if (conv && now - lastTyping > 3000) { lastTyping = now; call("POST", "/typing").catch(function () {}); }
  });
  document.addEventListener("keydown", function (e) { if (e.key === "Escape") tell({ sb: "close" }); });
  $("close").addEventListener("click", function () { tell({ sb: "close" }); });

  /* Files: the picker, drag and drop, and pasted screenshots; the server checks what they are. */
  function upload(files) {
    files = Array.prototype.slice.call(files || []);
    if (!files.length) return;
    if (files.length > (config.attachment_max_count || 10)) return showError(t.fileCount);
    if (files.some(function (f) { return f.size > config.attachment_max_bytes; })) return showError(t.fileBig);
    var data = new FormData(), cid = newId();
    data.append("client_id", cid);
    files.forEach(function (f) { data.append("files", f, f.name || "pasted.png"); });
    call("POST", "/uploads", data).then(function () { showError(""); return load(); }, function (err) {
      showError(err.status === 415 ? t.fileType : err.status === 413 ? t.fileBig : refusal(err));
    });
  }
  $("file").addEventListener("change", function () { upload(this.files); this.value = ""; });
  text.addEventListener("paste", function (e) {
    var files = e.clipboardData && e.clipboardData.files;
    if (files && files.length) { e.preventDefault(); upload(files); }
  });
  form.addEventListener("dragover", function (e) { e.preventDefault(); form.classList.add("drop"); });
  form.addEventListener("dragleave", function () { form.classList.remove("drop"); });
  form.addEventListener("drop", function (e) { e.preventDefault(); form.classList.remove("drop"); upload(e.dataTransfer.files); });

  /* The rating, once the conversation is resolved and the inbox asks for one. */
  function showRating() {
    var r = conv && conv.rating, due = r && r.score === null && (conv.status === "resolved" || conv.status === "closed");
    $("rating").hidden = !due;
    if (!due || $("scores").childElementCount) return;
    var stars = r.mode === "stars", low = stars ? 1 : 0, high = stars ? 5 : 10;
    for (var n = low; n <= high; n++) {
      var b = document.createElement("button");
      b.type = "button"; b.value = n; b.textContent = stars ? "★" : n;
      b.setAttribute("role", "radio"); b.setAttribute("aria-checked", "false"); b.setAttribute("aria-label", String(n));
      b.addEventListener("click", function () {
        score = +this.value;
        $("scores").querySelectorAll("button").forEach(function (x) {
          x.setAttribute("aria-checked", String(stars ? +x.value <= score : +x.value === score));
        });
      });
      $("scores").appendChild(b);
    }
  }
  $("rating").addEventListener("submit", function (e) {
    e.preventDefault();
    if (score === null) return;
    call("POST", "/rating", { score: score, comment: $("comment").value.trim() || null }).then(function (data) {
      conv = data.conversation; $("rating").hidden = true;
      log.appendChild(bubble({ sender: "system", html: "", at: new Date().toISOString() })).firstChild.textContent = t.thanks;
    }, function (err) { showError(refusal(err)); });
  });

  /* What the operator sees of the visitor: the page they are on, where they came from. */
  function sendContext() {
    if (!conv) return;
    context.language = navigator.language;
    context.timezone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    context.screen = screen.width + "x" + screen.height;
    call("POST", "/context", context).catch(function () {});
  }

  addEventListener("message", function (e) {
    if (e.source !== parent || !e.data || (host !== "*" && e.origin !== host)) return;
    var m = e.data;
    if (m.sb === "open") { isOpen = true; tick(0); text.focus(); }
    else if (m.sb === "close") isOpen = false;
    else if (m.sb === "locale") { setLocale(m.locale); showBanner(); }
    else if (m.sb === "page") { context.url = m.url; context.title = m.title; context.referrer = context.referrer || m.referrer; sendContext(); }
    else if (m.sb === "user") {
      var u = m.user || {};
      if (u.id && u.hash && (!user || user.id !== String(u.id))) identify({ id: String(u.id), hash: String(u.hash) });
      ["name", "email", "phone"].forEach(function (k) { if (u[k]) context[k] = u[k]; });
      sendContext();
    }
  });

  /* The site's signed-in user (the identity check): their own conversation, in any browser. */
  function identify(signed) {
    user = signed; token = null; conv = null; following = null; lastMsg = 0; lastEvent = null; shown = {};
    if (source) { source.close(); source = null; }
    log.textContent = ""; showError("");
    boot(false);
  }

  function boot(first) {
    start().then(function () {
      if (first) tell({ sb: "ready" });
      if (!conv) return;
      /* the newest event id first: whatever happens after it comes through the stream */
      return call("GET", "/poll").then(function (head) { lastEvent = head.last_event_id; return load(); });
    }).catch(function (err) { showError(refusal(err || {})); if (first) tell({ sb: "ready" }); });
  }
  boot(true);
})();
