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

  // Where a boundary of the selection lies, in code points from the transcript's beginning:
  // the passage's own start plus the text between the passage's beginning and the boundary.
  // The passage's text is exactly its segments' text, so this holds wherever the boundary is
  // (inside a segment's text, between segments, or on the passage element itself).
  function offsetOf(passage, node, offset) {
    var before = document.createRange();
    before.selectNodeContents(passage);
    before.setEnd(node, offset);
    return parseInt(passage.dataset.start, 10) + codePoints(before.toString());
  }

  function useSelection() {
    var passage = document.getElementById("passage");
    var selection = window.getSelection();
    if (!passage || !selection || selection.rangeCount === 0 || selection.isCollapsed) {
      flash("Select the words of the quote in the passage first.");
      return;
    }
    var range = selection.getRangeAt(0).cloneRange();
    if (!range.intersectsNode(passage)) {
      flash("The quote must lie inside the passage.");
      return;
    }
    // a selection that runs past the passage (a triple click on its last line ends at the
    // start of the next block) keeps only its part inside the passage
    var whole = document.createRange();
    whole.selectNodeContents(passage);
    if (range.compareBoundaryPoints(Range.START_TO_START, whole) < 0) range.setStart(whole.startContainer, whole.startOffset);
    if (range.compareBoundaryPoints(Range.END_TO_END, whole) > 0) range.setEnd(whole.endContainer, whole.endOffset);
    var text = range.toString();
    var quote = text.trim();
    if (!quote) {
      flash("That selection cannot be used as a quote.");
      return;
    }
    // white space at the edges (the line break a triple click takes along) is not part of the quote
    var start = offsetOf(passage, range.startContainer, range.startOffset) + codePoints(text) - codePoints(text.replace(/^\s+/, ""));
    var end = start + codePoints(quote);
    document.querySelectorAll("input[name=quote_start]").forEach(function (i) { i.value = String(start); });
    document.querySelectorAll("input[name=quote_end]").forEach(function (i) { i.value = String(end); });
    var preview = document.getElementById("quote-preview");
    if (preview) {
      preview.textContent = quote;
      preview.classList.add("corrected");
      preview.dataset.start = String(start);
      preview.dataset.end = String(end);
    }
    var old = document.getElementById("js-flash");
    if (old) old.remove();
  }

  function flash(text) {
    var main = document.querySelector("main");
    var old = document.getElementById("js-flash");
    if (old) old.remove();
    var p = document.createElement("p");
    p.id = "js-flash";
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
