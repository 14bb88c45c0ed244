// The workspace (inbox, thread, composer) once JavaScript runs: live updates from GET /events,
// read marks, counters and the tab title, notifications, the composer's keys and canned replies,
// typing and presence, keyboard shortcuts. Every page works without it.
//
// Live updates: the stream carries ids only. Each event makes the page fetch the row
// (/conversations/{id}/row) or the message (/conversations/{id}/messages/{mid}) as the server
// draws it, and put it in place by its element id: a row or message is replaced if shown,
// added if not, so an event seen twice (a reconnect's replay) still shows each exactly once.
(function () {
  "use strict";

  const panes = document.getElementById("panes");
  if (!panes) return;
  const me = Number(panes.dataset.operator);
  const names = JSON.parse(panes.dataset.names || "{}");
  const csrf = JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRF-Token"] || "";
  const tabs = new BroadcastChannel("switchboard-inbox");
  const TYPING_SECONDS = 5;

  function openId() {
    const thread = document.getElementById("thread-pane");
    return thread && thread.dataset.conversation ? Number(thread.dataset.conversation) : null;
  }

  function listQuery() {
    const rows = document.getElementById("rows");
    return rows ? rows.dataset.query || "" : "";
  }

  function post(url, fields) {
    const body = new URLSearchParams(fields || {});
    body.set("csrf_token", csrf);
    return fetch(url, { method: "POST", body, credentials: "same-origin", headers: { "HX-Request": "true" } });
  }

  async function fetchHtml(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { "HX-Request": "true" } });
    if (response.status === 204 || response.status === 404) return ""; // not (or no longer) mine to show
    if (!response.ok) return null;
    return response.text();
  }

  function element(html) {
    const template = document.createElement("template");
    template.innerHTML = html.trim();
    return template.content.firstElementChild;
  }

  // -- rows ---------------------------------------------------------------------------------
  async function refreshRow(conversationId) {
    const query = listQuery();
    const selected = conversationId === openId() ? "selected=true" : "";
    const sep = query ? "&" : "?";
    const html = await fetchHtml(`/conversations/${conversationId}/row${query}${selected ? sep + selected : ""}`);
    const shown = document.getElementById(`row-${conversationId}`);
    const rows = document.getElementById("rows");
    if (html === null) return; // a failure: the next event or load draws it
    if (html === "") {
      if (shown) shown.remove();
      return;
    }
    const row = element(html);
    if (shown && shown.dataset.key === row.dataset.key) {
      shown.replaceWith(row);
    } else {
      if (shown) shown.remove();
      const empty = rows.querySelector(".rows-empty");
      if (empty) empty.remove();
      // where the list's next load would draw it, in the list's own sort
      const key = sortKey(row);
      const descending = rows.dataset.order !== "asc";
      const next = [...rows.querySelectorAll(":scope > .row")].find((r) => ranksBefore(key, sortKey(r), descending));
      if (next) rows.insertBefore(row, next);
      else if (rows.querySelector(":scope > .rows-more")) return; // past the pages shown: it loads with them
      else rows.append(row);
    }
    htmx.process(row);
  }

  function sortKey(row) {
    return (row.dataset.key || "").split(" ").filter(Boolean).map(Number);
  }

  function ranksBefore(a, b, descending) {
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      if (a[i] !== b[i]) return descending ? a[i] > b[i] : a[i] < b[i];
    }
    return false;
  }

  // -- messages -----------------------------------------------------------------------------
  async function refreshMessage(conversationId, messageId) {
    const list = document.getElementById("messages");
    if (!list) return;
    const html = await fetchHtml(`/conversations/${openId()}/messages/${messageId}`);
    if (!html) return;
    const message = element(html);
    const shown = document.getElementById(`message-${messageId}`);
    const scroller = document.getElementById("thread-scroll");
    const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
    if (shown) {
      shown.replaceWith(message);
    } else {
      const later = [...list.querySelectorAll(".message")].find((m) => Number(m.dataset.id) > messageId);
      list.insertBefore(message, later || null);
    }
    htmx.process(message);
    if (atBottom) scroller.scrollTop = scroller.scrollHeight;
    markRead();
  }

  let readTimer = null;
  function markRead() {
    const id = openId();
    const list = document.getElementById("messages");
    if (!id || !list || document.hidden || !document.getElementById("composer")) return;
    clearTimeout(readTimer);
    readTimer = setTimeout(async () => {
      const last = [...list.querySelectorAll(".message")].pop();
      if (!last) return;
      await post(`/conversations/${id}/read`, { up_to: last.dataset.id });
      refreshRow(id);
      refreshCounts();
      tabs.postMessage("read");
    }, 300);
  }

  // -- counters, badge, title -------------------------------------------------------------------
  async function refreshCounts() {
    const response = await fetch("/inbox/counts", { credentials: "same-origin" });
    if (!response.ok) return;
    const counts = await response.json();
    for (const tab of ["mine", "unassigned", "all"]) {
      const shown = document.querySelector(`[data-count="${tab}"]`);
      if (shown && counts[tab] !== null) shown.textContent = counts[tab];
    }
    const badge = document.getElementById("nav-unread");
    if (badge) {
      badge.hidden = !counts.unread;
      const number = badge.querySelector("[aria-hidden]");
      if (number) number.textContent = counts.unread;
      else if (counts.unread) badge.innerHTML = `<span aria-hidden="true">${counts.unread}</span>`;
    }
    document.title = (counts.unread ? `(${counts.unread}) ` : "") + panes.dataset.title;
  }
  tabs.onmessage = () => refreshCounts();
  // a change the stream does not show me (a pool conversation taken by someone in another
  // branch's view) still reaches the counters within half a minute
  setInterval(() => !document.hidden && refreshCounts(), 30_000);

  // -- notifications ----------------------------------------------------------------------------
  const sound = new Audio("/static/sounds/notify.wav");
  function notify(text, conversationId) {
    const mode = panes.dataset.notify;
    if (mode === "off") return;
    if (!document.hidden && document.hasFocus() && panes.dataset.notifyFocused !== "true") return;
    if (panes.dataset.notifySound === "true") {
      sound.currentTime = 0;
      sound.play().then(
        () => (panes.dataset.lastSound = String(Date.now())),
        () => {},
      );
    }
    if ("Notification" in window && Notification.permission === "granted") {
      const note = new Notification(text, { tag: `conversation-${conversationId}` });
      note.onclick = () => {
        window.focus();
        location.href = `/conversations/${conversationId}`;
      };
    }
    panes.dataset.notified = String(Number(panes.dataset.notified || 0) + 1);
  }
  document.addEventListener(
    "click",
    () => {
      if ("Notification" in window && Notification.permission === "default" && panes.dataset.notify !== "off") {
        Notification.requestPermission();
      }
    },
    { once: true },
  );

  // -- typing and presence ------------------------------------------------------------------------
  const present = new Set();
  function showPresence() {
    const line = document.getElementById("presence");
    if (!line) return;
    line.textContent = present.size ? `👁 ${[...present].map((id) => names[id] || `#${id}`).join(", ")}` : "";
  }
  let typingTimer = null;
  function showTyping(text) {
    const line = document.getElementById("typing");
    if (!line) return;
    line.textContent = text;
    line.hidden = false;
    clearTimeout(typingTimer);
    typingTimer = setTimeout(() => (line.hidden = true), TYPING_SECONDS * 1000);
  }
  function announce(conversationId, viewing) {
    const body = new URLSearchParams({ viewing: viewing ? "true" : "false", csrf_token: csrf });
    if (viewing) post(`/conversations/${conversationId}/presence`, body);
    else navigator.sendBeacon(`/conversations/${conversationId}/presence`, body);
  }

  // -- the stream -------------------------------------------------------------------------------
  const CONVERSATION_EVENTS = [
    "conversation.created", "conversation.routed", "conversation.assigned", "conversation.escalated",
    "conversation.status_changed", "conversation.updated", "conversation.rated", "contact.updated",
  ];
  const MESSAGE_EVENTS = ["message.created", "message.updated", "message.status_changed"];
  const stream = new EventSource("/events");
  window.switchboardStream = stream; // the browser tests cut it to check the reconnect
  function on(name, handler) {
    stream.addEventListener(name, (event) => handler(JSON.parse(event.data)));
  }
  for (const name of MESSAGE_EVENTS) {
    on(name, (data) => {
      if (data.conversation_id === openId()) refreshMessage(data.conversation_id, data.message_id);
      refreshRow(data.conversation_id);
      refreshCounts();
      const mode = panes.dataset.notify;
      const mine = data.assignee_id === me;
      if (name === "message.created" && data.direction === "in" && (mine || mode === "all")) {
        notify(panes.dataset.newMessage, data.conversation_id);
      }
    });
  }
  for (const name of CONVERSATION_EVENTS) {
    on(name, (data) => {
      refreshRow(data.conversation_id);
      refreshCounts();
      if (name === "conversation.updated" && data.change === "woken" && data.assignee_id === me) {
        notify(panes.dataset.newMessage, data.conversation_id);
      }
      if (name === "conversation.assigned" || name === "conversation.escalated") {
        if (data.assignee_id === me && data.previous_assignee_id !== me) {
          notify(panes.dataset.newConversation, data.conversation_id);
        }
      }
      if (data.conversation_id === openId() && name !== "contact.updated") reloadThread();
    });
  }
  on("contact.typing", (data) => {
    if (data.conversation_id === openId()) showTyping(document.getElementById("typing").dataset.customer);
  });
  on("operator.typing", (data) => {
    if (data.conversation_id !== openId() || data.operator_id === me) return;
    const template = document.getElementById("typing").dataset.operator;
    showTyping(template.replace("{name}", names[data.operator_id] || `#${data.operator_id}`));
  });
  on("operator.presence", (data) => {
    if (data.conversation_id !== openId() || data.operator_id === me) return;
    const arrived = data.viewing && !present.has(data.operator_id);
    if (data.viewing) present.add(data.operator_id);
    else present.delete(data.operator_id);
    showPresence();
    if (arrived) announce(data.conversation_id, true); // so the newcomer knows I am here
  });
  on("conversation.action_failed", (data) => {
    if (data.operator_id === me) document.dispatchEvent(new CustomEvent("toast", { detail: { level: "error", text: data.reason } }));
  });
  stream.addEventListener("resync", () => location.reload());
  stream.addEventListener("open", () => refreshCounts());

  // The thread's head, actions and composer after a change of its state; never under a draft.
  function reloadThread() {
    const text = document.getElementById("composer-text");
    if (text && text.value.trim()) return;
    const id = openId();
    htmx.ajax("GET", `/conversations/${id}${listQuery()}`, { target: "#thread-pane", swap: "outerHTML" });
  }

  // -- opening a conversation ----------------------------------------------------------------------
  let shownId = null;
  function opened() {
    const id = openId();
    if (shownId && shownId !== id) announce(shownId, false);
    if (id && id !== shownId) {
      present.clear();
      announce(id, true);
    }
    shownId = id;
    panes.dataset.pane = id ? (panes.dataset.pane === "aside" ? "aside" : "thread") : "list";
    document.querySelectorAll(".row-link[aria-current]").forEach((link) => link.removeAttribute("aria-current"));
    const row = id && document.querySelector(`#row-${id} .row-link`);
    if (row) row.setAttribute("aria-current", "true");
    const scroller = document.getElementById("thread-scroll");
    if (scroller) scroller.scrollTop = scroller.scrollHeight;
    showPresence();
    refreshCounts();
  }
  // (an outerHTML swap announces itself on the new element: htmx:load)
  document.addEventListener("htmx:load", (event) => {
    if (event.target.id === "thread-pane") opened();
  });
  window.addEventListener("pagehide", () => shownId && announce(shownId, false));
  document.addEventListener("visibilitychange", () => !document.hidden && markRead());
  opened();

  // -- the composer ---------------------------------------------------------------------------------
  let typingSent = 0;
  let cannedFor = null;
  function canned() {
    return document.getElementById("canned");
  }
  function closeCanned() {
    const list = canned();
    if (list) list.hidden = true;
    cannedFor = null;
  }
  async function offerCanned(textarea) {
    const match = /^\/(\S*)$/.exec(textarea.value);
    if (!match) return closeCanned();
    if (cannedFor === match[1]) return;
    cannedFor = match[1];
    const form = textarea.form;
    const html = await fetchHtml(`${form.dataset.canned}?q=${encodeURIComponent(match[1])}`);
    const list = canned();
    if (html === null || !list || cannedFor !== match[1]) return;
    list.innerHTML = html;
    list.hidden = false;
    const first = list.querySelector(".canned-item");
    if (first) first.setAttribute("aria-selected", "true");
  }
  function pickCanned(item) {
    const textarea = document.getElementById("composer-text");
    textarea.value = item.dataset.text;
    closeCanned();
    textarea.focus();
  }
  function moveCanned(step) {
    const items = [...canned().querySelectorAll(".canned-item")];
    if (!items.length) return;
    const at = items.findIndex((item) => item.getAttribute("aria-selected") === "true");
    items.forEach((item) => item.removeAttribute("aria-selected"));
    const next = items[(at + step + items.length) % items.length];
    next.setAttribute("aria-selected", "true");
    next.scrollIntoView({ block: "nearest" });
  }
  document.addEventListener("input", (event) => {
    const textarea = event.target;
    if (textarea.id !== "composer-text") return;
    offerCanned(textarea);
    const note = document.getElementById("note-mode");
    if (Date.now() - typingSent > 3000 && textarea.value.trim()) {
      typingSent = Date.now();
      post(textarea.form.dataset.typing, { note: note && note.checked ? "true" : "false" });
    }
  });
  document.addEventListener("change", (event) => {
    if (event.target.id === "note-mode") event.target.form.classList.toggle("is-note", event.target.checked);
  });
  document.addEventListener("click", (event) => {
    const item = event.target.closest(".canned-item");
    if (item) pickCanned(item);
  });
  document.addEventListener("keydown", (event) => {
    const textarea = event.target;
    if (textarea.id !== "composer-text") return;
    const list = canned();
    if (list && !list.hidden) {
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        moveCanned(event.key === "ArrowDown" ? 1 : -1);
        return;
      }
      const chosen = list.querySelector('.canned-item[aria-selected="true"]');
      if ((event.key === "Enter" || event.key === "Tab") && chosen) {
        event.preventDefault();
        pickCanned(chosen);
        return;
      }
      if (event.key === "Escape") {
        closeCanned();
        return;
      }
    }
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      if (textarea.value.trim() || textarea.form.querySelector("#composer-files")?.files.length) {
        textarea.form.requestSubmit();
      }
    }
  });
  document.addEventListener("htmx:afterSwap", (event) => {
    if (event.target.id !== "composer") return;
    const textarea = document.getElementById("composer-text");
    if (textarea && !document.getElementById("composer-error")) textarea.focus();
  });
  // one send per draft even before the answer: the form is disabled while it is in flight
  document.addEventListener("htmx:beforeRequest", (event) => {
    if (event.target.id === "composer") event.target.querySelector("#send").disabled = true;
  });

  // -- keyboard ---------------------------------------------------------------------------------------
  function typingInField(target) {
    return target.closest("input, textarea, select, [contenteditable]") !== null;
  }
  function step(direction) {
    const links = [...document.querySelectorAll("#rows .row-link")];
    if (!links.length) return;
    const at = links.findIndex((link) => Number(link.closest(".row").dataset.id) === openId());
    const next = links[Math.min(links.length - 1, Math.max(0, at + direction))];
    if (at === -1) links[0].click();
    else if (next !== links[at]) next.click();
  }
  function composerFocus(note) {
    const textarea = document.getElementById("composer-text");
    if (!textarea) return;
    const switcher = document.getElementById("note-mode");
    if (switcher && switcher.checked !== note) {
      switcher.checked = note;
      switcher.dispatchEvent(new Event("change", { bubbles: true }));
    }
    textarea.focus();
  }
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      closeCanned();
      document.querySelectorAll(".workspace details[open]").forEach((menu) => (menu.open = false));
      if (panes.dataset.pane === "aside") panes.dataset.pane = "thread";
      return;
    }
    if (typingInField(event.target) || event.ctrlKey || event.metaKey) return;
    if (event.altKey && (event.key === "ArrowDown" || event.key === "ArrowUp")) {
      event.preventDefault();
      step(event.key === "ArrowDown" ? 1 : -1);
      return;
    }
    if (event.altKey) return;
    const resolve = document.getElementById("action-resolve");
    const actions = {
      j: () => step(1),
      k: () => step(-1),
      r: () => composerFocus(false),
      n: () => composerFocus(true),
      e: () => resolve && resolve.click(),
      E: () => {
        if (resolve) resolve.click();
        step(1);
      },
      t: () => {
        const menu = document.getElementById("transfer-menu");
        if (menu) {
          menu.open = true;
          menu.querySelector("select").focus();
        }
      },
      s: () => {
        const menu = document.getElementById("snooze-menu");
        if (menu) {
          menu.open = true;
          menu.querySelector("button").focus();
        }
      },
      "/": () => document.getElementById("search").focus(),
      "?": () => document.getElementById("shortcuts").showModal(),
    };
    const action = actions[event.key];
    if (action) {
      event.preventDefault();
      action();
    }
  });

  // at phone width: the contact panel and back, without reloading
  document.addEventListener("click", (event) => {
    const aside = event.target.closest("[data-aside]");
    const back = event.target.closest("[data-thread]");
    if (aside || back) {
      event.preventDefault();
      panes.dataset.pane = aside ? "aside" : "thread";
    }
  });
})();
