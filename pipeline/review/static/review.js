// qcode review: keyboard shortcuts and quote selection. No inline script anywhere
// (the Content-Security-Policy forbids it); everything is wired through data- attributes.
(function () {
  "use strict";

  function typing(el) {
    return el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT" || el.isContentEditable);
  }

  // Offsets are counted in Unicode code points, as Python counts them; JavaScript strings count
  // UTF-16 units, so a character outside the BMP (an emoji) would shift every later offset.
  function codePoints(text) {
    return Array.from(text).length;
  }

  function offsetOf(node, offset) {
    var el = node.nodeType === Node.TEXT_NODE ? node.parentElement : node;
    var seg = el && el.closest ? el.closest(".seg") : null;
    if (!seg) return null;
    if (node.nodeType !== Node.TEXT_NODE) {
      // a boundary between child nodes: before or after the whole segment text
      return parseInt(seg.dataset.start, 10) + (offset === 0 ? 0 : codePoints(seg.textContent));
    }
    return parseInt(seg.dataset.start, 10) + codePoints(node.data.slice(0, offset));
  }

  function useSelection() {
    var passage = document.getElementById("passage");
    var selection = window.getSelection();
    if (!passage || !selection || selection.rangeCount === 0 || selection.isCollapsed) {
      flash("Select the words of the quote in the passage first.");
      return;
    }
    var range = selection.getRangeAt(0);
    if (!passage.contains(range.startContainer) || !passage.contains(range.endContainer)) {
      flash("The quote must lie inside the passage.");
      return;
    }
    var start = offsetOf(range.startContainer, range.startOffset);
    var end = offsetOf(range.endContainer, range.endOffset);
    if (start === null || end === null || end <= start) {
      flash("That selection cannot be used as a quote.");
      return;
    }
    document.querySelectorAll("input[name=quote_start]").forEach(function (i) { i.value = String(start); });
    document.querySelectorAll("input[name=quote_end]").forEach(function (i) { i.value = String(end); });
    var preview = document.getElementById("quote-preview");
    if (preview) {
      preview.textContent = selection.toString();
      preview.classList.add("corrected");
      preview.dataset.start = String(start);
      preview.dataset.end = String(end);
    }
  }

  function flash(text) {
    var main = document.querySelector("main");
    var p = document.createElement("p");
    p.className = "flash error";
    p.setAttribute("role", "alert");
    p.textContent = text;
    main.insertBefore(p, main.firstChild);
  }

  function activate(el) {
    if (el.dataset.toggle) { el.checked = !el.checked; return; }
    if (el.dataset.focusOnly) {
      var first = el.form && el.form.querySelector("select, input");
      if (first) first.focus();
      return;
    }
    if (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT") { el.focus(); return; }
    el.click();
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var target = event.target;
    if (typing(target)) {
      if (event.key === "Escape") { target.blur(); event.preventDefault(); return; }
      if (event.key === "Enter" && target.dataset.submit) {
        // Enter in the reason or code field sends that verdict, never another one
        event.preventDefault();
        var button = target.form.querySelector("button[name=verdict][value=" + target.dataset.submit + "]");
        if (button) button.click();
      } else if (event.key === "Enter" && target.form && target.form.id === "add") {
        event.preventDefault();
        document.getElementById("add-button").click();
      }
      return;
    }
    if (event.key === "?") {
      var keys = document.getElementById("keys");
      if (keys) keys.classList.toggle("open");
      event.preventDefault();
      return;
    }
    if (event.key === "Enter" && document.getElementById("next") && target === document.body) {
      document.getElementById("next").click();
      event.preventDefault();
      return;
    }
    var el = document.querySelector('[data-key="' + CSS.escape(event.key) + '"]');
    if (!el) return;
    event.preventDefault();
    if (el.id === "use-selection") { useSelection(); return; }
    activate(el);
  });

  document.addEventListener("DOMContentLoaded", function () {
    var button = document.getElementById("use-selection");
    if (button) {
      // keep the selection when the button is pressed with the mouse
      button.addEventListener("mousedown", function (e) { e.preventDefault(); });
      button.addEventListener("click", useSelection);
    }
  });
})();
