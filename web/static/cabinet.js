// Switchboard cabinet: the little the pages need beyond htmx. No build step; pages work
// without it (forms post and reload), this only makes them quicker to use.
(function () {
  "use strict";

  const TOAST_EVENT = "toast"; // web/toasts.py HxEvent.TOAST
  const TOAST_SECONDS = 6;

  function toastRegion() {
    return document.getElementById("toasts");
  }

  function dismissLater(toast) {
    if (toast.dataset.level !== "error") {
      setTimeout(() => toast.remove(), TOAST_SECONDS * 1000);
    }
  }

  function showToast(level, text) {
    const template = document.getElementById("toast-template");
    const region = toastRegion();
    if (!template || !region || !text) return;
    const toast = template.content.firstElementChild.cloneNode(true);
    toast.dataset.level = level || "info";
    toast.querySelector(".toast-text").textContent = text;
    region.append(toast);
    dismissLater(toast);
  }

  // The server's words: HX-Trigger {"toast": {"level": ..., "text": ...}}.
  document.addEventListener(TOAST_EVENT, (event) => showToast(event.detail.level, event.detail.text));

  // A failure the server did not put into words (it always does for its own errors).
  function failed(event, key) {
    const xhr = event.detail.xhr;
    if (xhr && (xhr.getResponseHeader("HX-Trigger") || "").includes(`"${TOAST_EVENT}"`)) return;
    const template = document.getElementById("toast-template");
    showToast("error", template && template.dataset[key]);
  }
  document.addEventListener("htmx:responseError", (event) => failed(event, "failed"));
  document.addEventListener("htmx:sendError", (event) => failed(event, "offline"));

  document.addEventListener("click", (event) => {
    const close = event.target.closest(".toast-close");
    if (close) close.closest(".toast").remove();
    // a click outside an open menu closes it
    document.querySelectorAll("details.menu[open]").forEach((menu) => {
      if (!menu.contains(event.target)) menu.open = false;
    });
  });

  // Esc closes the open menu and gives the focus back to its button.
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    const menu = document.activeElement && document.activeElement.closest("details.menu[open]");
    if (menu) {
      menu.open = false;
      menu.querySelector("summary").focus();
    }
  });

  // One menu open at a time.
  document.addEventListener(
    "toggle",
    (event) => {
      const opened = event.target;
      if (!opened.matches || !opened.matches("details.menu") || !opened.open) return;
      document.querySelectorAll("details.menu[open]").forEach((menu) => {
        if (menu !== opened) menu.open = false;
      });
    },
    true,
  );

  // A menu swapped in after a choice keeps the keyboard where it was.
  document.addEventListener("htmx:afterSettle", (event) => {
    const target = event.target;
    if (target.matches && target.matches("details.menu") && !document.activeElement.closest("details.menu")) {
      target.querySelector("summary").focus();
    }
  });

  document.addEventListener("DOMContentLoaded", () => {
    const region = toastRegion();
    if (region) region.querySelectorAll(".toast").forEach(dismissLater);
  });

  // An open cabinet tab keeps its operator from being set offline (the server counts open
  // streams): a signed-in page whose own script opened none (settings, profile) opens one.
  document.addEventListener("DOMContentLoaded", () => {
    if (!window.switchboardStream && document.querySelector("form[action='/logout']")) {
      window.switchboardStream = new EventSource("/events");
    }
  });

  // Settings: a button with data-copy="<selector>" copies that element's text (a link or password
  // shown once) and says so; selecting the text by hand works without it.
  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-copy]");
    if (!button || !navigator.clipboard) return;
    const source = document.querySelector(button.dataset.copy);
    if (!source) return;
    navigator.clipboard.writeText(source.textContent.trim()).then(() => {
      showToast("success", button.dataset.copied);
    });
  });
})();
