// The supervisor's board, live: after any event that can move a count or a status (a burst of
// them fetches the board once), the page asks the server for the board again and puts it in
// place. The page works without it; it just does not refresh itself.
(function () {
  "use strict";

  const board = document.getElementById("board");
  if (!board) return;
  const EVENTS = [
    "operator.status_changed", "conversation.created", "conversation.routed", "conversation.assigned",
    "conversation.escalated", "conversation.status_changed", "conversation.updated", "message.created",
    "alert.escalation_exhausted", "resync",
  ];
  let pending = null;

  async function refresh() {
    pending = null;
    const response = await fetch("/supervisor", { credentials: "same-origin", headers: { "HX-Request": "true" } });
    if (!response.ok) return; // the next event or a reload draws it
    const template = document.createElement("template");
    template.innerHTML = (await response.text()).trim();
    const fresh = template.content.getElementById("board");
    const shown = document.getElementById("board");
    if (fresh && shown) shown.replaceWith(fresh);
  }

  const stream = new EventSource("/events");
  window.switchboardStream = stream;
  for (const name of EVENTS) {
    stream.addEventListener(name, () => {
      if (pending === null) pending = setTimeout(refresh, 200);
    });
  }
  stream.addEventListener("open", () => { if (pending === null) pending = setTimeout(refresh, 0); });
})();
