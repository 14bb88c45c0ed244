// The composer's files and emoji once JavaScript runs. Files come by the paperclip, a drop on the
// thread or a paste into the text; they are kept here, shown as chips with a remove button and put
// into the form's file input, so the one form post sends them with the reply (the server checks
// them again). The emoji panel inserts at the caret; arrows move, Enter picks, Esc closes.
(function () {
  "use strict";

  const TYPES = new Set(["image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"]);
  const COLUMNS = 8; // .emoji-grid's columns in cabinet.css
  let picked = []; // the draft's files: the input's FileList is rebuilt from these
  let pickedFor = null; // the composer (its conversation's action) they belong to

  const composer = () => document.getElementById("composer");
  const fileInput = () => document.getElementById("composer-files");

  function size(bytes) {
    if (bytes < 1024) return `${bytes} B`;
    if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
    return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
  }

  function refuse(text) {
    const error = document.getElementById("files-error");
    if (!error) return;
    error.textContent = text;
    error.hidden = !text;
  }

  function show() {
    const form = composer();
    const input = fileInput();
    if (!form || !input) return;
    if (form.getAttribute("action") !== pickedFor) {
      // another conversation's composer: files are never carried over to another customer
      picked = [];
      pickedFor = form.getAttribute("action");
    }
    const transfer = new DataTransfer();
    picked.forEach((file) => transfer.items.add(file));
    input.files = transfer.files;
    const chips = document.getElementById("file-chips");
    chips.replaceChildren(
      ...picked.map((file, index) => {
        const chip = document.createElement("li");
        chip.className = "file-chip";
        const name = document.createElement("span");
        name.className = "file-name";
        name.textContent = file.name;
        const bytes = document.createElement("span");
        bytes.className = "muted";
        bytes.textContent = size(file.size);
        const remove = document.createElement("button");
        remove.type = "button";
        remove.className = "file-remove";
        remove.dataset.index = String(index);
        remove.setAttribute("aria-label", form.dataset.remove.replace("{name}", file.name));
        remove.textContent = "×";
        chip.append(name, " ", bytes, " ", remove);
        return chip;
      }),
    );
    chips.hidden = picked.length === 0;
  }

  // Only what the inbox takes is kept; the first refusal is said in place.
  function add(files) {
    const form = composer();
    if (!form || !files.length) return;
    show(); // the files already there, if they are this conversation's
    const maxBytes = Number(form.dataset.maxBytes);
    const maxCount = Number(form.dataset.maxCount);
    let refusal = "";
    for (const file of files) {
      if (picked.length >= maxCount) refusal ||= form.dataset.tooMany;
      else if (!TYPES.has(file.type)) refusal ||= form.dataset.wrongKind.replace("{name}", file.name);
      else if (file.size > maxBytes) refusal ||= form.dataset.tooLarge.replace("{name}", file.name);
      else picked.push(file);
    }
    refuse(refusal);
    show();
  }

  document.addEventListener("change", (event) => {
    if (event.target.id !== "composer-files") return;
    add(Array.from(event.target.files)); // the dialog's choice joins the files already there
  });

  document.addEventListener("click", (event) => {
    const remove = event.target.closest(".file-remove");
    if (!remove) return;
    picked.splice(Number(remove.dataset.index), 1);
    refuse("");
    show();
    (document.querySelector(".file-remove") || document.getElementById("composer-text"))?.focus();
  });

  document.addEventListener("paste", (event) => {
    if (!event.target.closest || !event.target.closest("#composer")) return;
    const files = Array.from(event.clipboardData?.files || []);
    if (!files.length) return; // text pastes as text
    event.preventDefault();
    add(files);
  });

  // A drop anywhere on the thread (or the composer) attaches; the browser must not open the file.
  const dropZone = (target) => target.closest && target.closest(".pane-thread, #composer");
  const carriesFiles = (event) => Array.from(event.dataTransfer?.types || []).includes("Files");
  document.addEventListener("dragover", (event) => {
    if (!carriesFiles(event) || !dropZone(event.target) || !composer()) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
    composer().classList.add("is-drop-target");
  });
  document.addEventListener("dragleave", (event) => {
    if (event.target === composer() || !dropZone(event.relatedTarget || document.body)) {
      composer()?.classList.remove("is-drop-target");
    }
  });
  document.addEventListener("drop", (event) => {
    if (!carriesFiles(event) || !dropZone(event.target) || !composer()) return;
    event.preventDefault();
    composer().classList.remove("is-drop-target");
    add(Array.from(event.dataTransfer.files));
  });

  // The server's refusal of a draft's files (413, 415) is the composer with the reason: show it.
  document.addEventListener("htmx:beforeSwap", (event) => {
    const { target, xhr } = event.detail;
    if (target.id !== "composer" || ![413, 415].includes(xhr.status)) return;
    if (!xhr.responseText.includes('id="composer"')) return;
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  });
  // After a send the draft's files are gone; after a refusal they stay, to be removed or sent
  // again; a composer drawn anew (the thread reloaded, another conversation) gets them back or none.
  document.addEventListener("htmx:afterSwap", (event) => {
    if (!composer()) return;
    if (event.target.id === "composer" && !document.getElementById("composer-error")) picked = [];
    show();
  });

  // -- emoji ----------------------------------------------------------------------------------------
  const panel = () => document.getElementById("emoji-panel");
  const toggle = () => document.getElementById("emoji-toggle");

  function closeEmoji(focusToggle) {
    const open = panel();
    if (!open || open.hidden) return;
    open.hidden = true;
    toggle().setAttribute("aria-expanded", "false");
    if (focusToggle) toggle().focus();
  }

  function openEmoji() {
    panel().hidden = false;
    toggle().setAttribute("aria-expanded", "true");
    panel().querySelector('.emoji[tabindex="0"]').focus();
  }

  function insert(text) {
    const textarea = document.getElementById("composer-text");
    const start = textarea.selectionStart ?? textarea.value.length;
    const end = textarea.selectionEnd ?? start;
    textarea.focus();
    textarea.setRangeText(text, start, end, "end");
    textarea.dispatchEvent(new Event("input", { bubbles: true }));
  }

  document.addEventListener("click", (event) => {
    if (event.target.closest("#emoji-toggle")) {
      if (panel().hidden) openEmoji();
      else closeEmoji(true);
      return;
    }
    const emoji = event.target.closest(".emoji[data-emoji]");
    if (emoji) {
      closeEmoji(false);
      insert(emoji.dataset.emoji);
      return;
    }
    if (!event.target.closest("#emoji-panel")) closeEmoji(false);
  });

  // Tabbing out of the panel closes it, as a click elsewhere does
  document.addEventListener("focusin", (event) => {
    if (!event.target.closest("#emoji-panel, #emoji-toggle")) closeEmoji(false);
  });

  document.addEventListener("keydown", (event) => {
    const open = panel();
    if (!open || open.hidden || !open.contains(event.target)) return;
    const buttons = Array.from(open.querySelectorAll(".emoji"));
    const at = buttons.indexOf(event.target);
    const moves = {
      ArrowRight: at + 1,
      ArrowLeft: at - 1,
      ArrowDown: at + COLUMNS,
      ArrowUp: at - COLUMNS,
      Home: 0,
      End: buttons.length - 1,
    };
    if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      closeEmoji(true);
      return;
    }
    if (!(event.key in moves) || at < 0) return;
    event.preventDefault();
    event.stopPropagation();
    const next = buttons[Math.min(buttons.length - 1, Math.max(0, moves[event.key]))];
    buttons.forEach((button) => button.setAttribute("tabindex", button === next ? "0" : "-1"));
    next.focus();
  }, true);
})();
