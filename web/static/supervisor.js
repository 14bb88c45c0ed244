// The supervisor's board and lists, live: after an event that can change the page's live part
// (the element with data-live, which names those events; a burst of them fetches it once), the
// page asks its own address again as HTMX and puts the answer in place. The whole part is
// replaced, never added to, so events replayed after a reconnect show each row once. The page
// works without it; it just does not refresh itself.
(function () {
  "use strict";

  const live = document.querySelector("[data-live]");
  if (!live) return;
  const region = live.id;
  const events = live.dataset.live.split(" ");
  let pending = null;

  // Delivery ticks and messages of conversations a list does not show change nothing in it
  // (a new conversation comes with its own conversation.* events).
  function matters(name, data) {
    if (region === "dead-letters") {
      return data.status === "failed" || document.getElementById(`dead-${data.message_id}`) !== null;
    }
    if (region !== "board" && name.startsWith("message.")) {
      return document.getElementById(`row-${data.conversation_id}`) !== null;
    }
    return true;
  }

  async function refresh() {
    pending = null;
    const address = window.location.pathname + window.location.search;
    const response = await fetch(address, { credentials: "same-origin", headers: { "HX-Request": "true" } });
    if (!response.ok) return; // the next event or a reload draws it
    const template = document.createElement("template");
    template.innerHTML = (await response.text()).trim();
    const fresh = template.content.getElementById(region);
    const shown = document.getElementById(region);
    if (fresh && shown) shown.replaceWith(fresh);
  }

  function soon() {
    if (pending === null) pending = setTimeout(refresh, 200);
  }

  const stream = new EventSource("/events");
  window.switchboardStream = stream;
  for (const name of events) {
    stream.addEventListener(name, (event) => {
      if (matters(name, JSON.parse(event.data))) soon();
    });
  }
  stream.addEventListener("resync", soon);
  // (re)connected: whatever happened while it was away
  stream.addEventListener("open", () => { if (pending === null) pending = setTimeout(refresh, 0); });
})();
