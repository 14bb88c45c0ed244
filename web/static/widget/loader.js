/* Switchboard chat loader: a launcher, and the chat in an iframe of ours made on the first
   click, after data-delay seconds or on the first scroll (data-load). No inline code: styles
   go through the CSSOM, so a strict CSP holds. */
(function () {
  var me = document.currentScript, d = me.dataset, origin = new URL(me.src).origin, W = window;
  var side = d.position === "left" ? "left" : "right", color = d.color || "#2563eb", key = "sb:" + d.inbox;
  var locale = d.locale || document.documentElement.lang || navigator.language, ru = /^ru/i.test(locale);
  var frame, ready, open = false, queue = [], on = {}, narrow = matchMedia("(max-width: 480px)");

  function css(el, r) { for (var k in r) el.style.setProperty(k, r[k], "important"); return el; }
  function emit(n, v) { (on[n] || []).forEach(function (f) { f(v); }); }
  function post(m) { ready ? frame.contentWindow.postMessage(m, origin) : queue.push(m); }
  function keep(t) { try { localStorage.setItem(key, t); } catch (e) {} }
  function kept() { try { return localStorage.getItem(key) || ""; } catch (e) { return ""; } }
  function el(tag, r) { return css(document.createElement(tag), r); }

  var button = el("button", {
    position: "fixed", bottom: "20px", [side]: "20px", "z-index": "2147483646", height: "56px", padding: "0 20px",
    border: "0", "border-radius": "28px", background: color, color: "#fff", font: "600 15px/1 system-ui,sans-serif",
    cursor: "pointer", "box-shadow": "0 4px 14px rgba(0,0,0,.25)"
  });
  var badge = el("span", {
    display: "none", position: "absolute", top: "-4px", [side]: "-4px", "min-width": "20px", "border-radius": "10px",
    background: "#dc2626", font: "700 12px/20px system-ui,sans-serif"
  });
  button.type = "button";
  button.textContent = d.label || (ru ? "Чат" : "Chat");
  button.setAttribute("aria-expanded", "false");
  button.appendChild(badge);

  function place() {
    if (!frame) return;
    css(frame, narrow.matches ? { top: "0", left: "0", width: "100%", height: "100%", "border-radius": "0" }
      : { top: "auto", bottom: "88px", [side]: "20px", width: "380px", height: "min(600px, calc(100% - 108px))", "border-radius": "12px" });
    css(frame, { display: open ? "block" : "none" });
    css(button, { display: open && narrow.matches ? "none" : "block" });
  }
  function load() {
    if (frame) return;
    frame = el("iframe", { position: "fixed", border: "0", "z-index": "2147483647", "box-shadow": "0 8px 30px rgba(0,0,0,.3)" });
    frame.title = ru ? "Чат с поддержкой" : "Chat with support";
    frame.src = origin + "/widget/frame?inbox=" + encodeURIComponent(d.inbox) + "&locale=" + encodeURIComponent(locale) +
      "&color=" + encodeURIComponent(color) + "&host=" + encodeURIComponent(location.origin) + "#" + kept();
    document.body.appendChild(frame);
    place();
  }
  function page() { post({ sb: "page", url: location.href, title: document.title, referrer: document.referrer }); }
  function show(v) { open = v; load(); place(); post({ sb: v ? "open" : "close" }); button.setAttribute("aria-expanded", v); emit(v ? "opened" : "closed"); }

  var api = W.Switchboard = {
    open: function () { show(true); }, close: function () { show(false); button.focus(); },
    toggle: function () { show(!open); },
    setUser: function (u) { load(); post({ sb: "user", user: u }); },
    setLocale: function (l) { post({ sb: "locale", locale: l }); },
    on: function (n, f) { (on[n] = on[n] || []).push(f); }
  };
  W.addEventListener("message", function (e) {
    var m = e.data || {};
    if (e.origin !== origin || !frame || e.source !== frame.contentWindow) return;
    if (m.sb === "ready") { ready = 1; page(); queue.splice(0).forEach(post); }
    else if (m.sb === "token") keep(m.token);
    else if (m.sb === "close") api.close();
    else if (m.sb === "unread") { badge.textContent = m.count; css(badge, { display: m.count ? "block" : "none" }); emit("unread", m.count); }
    else if (m.sb === "message") emit("message", m.message);
  });
  button.addEventListener("click", api.toggle);
  narrow.addEventListener("change", place);
  var seen = location.href;
  setInterval(function () { if (location.href !== seen) { seen = location.href; page(); } }, 1500);

  function start() {
    document.body.appendChild(button);
    if (d.load === "scroll") W.addEventListener("scroll", load, { once: true, passive: true });
    else if (d.load !== "click") setTimeout(load, 1000 * (+d.delay || 3));
  }
  document.body ? start() : W.addEventListener("DOMContentLoaded", start);
})();
