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
      // shown as the passage shows it: without the markdown around a speaker's name
      var seen = range.cloneContents();
      seen.querySelectorAll(".markup").forEach(function (m) { m.remove(); });
      preview.textContent = seen.textContent.trim();
      preview.classList.add("corrected");
      preview.dataset.start = String(start);
      preview.dataset.end = String(end);
    }
    showCorrected(passage, start, end);
    var old = document.getElementById("js-flash");
    if (old) old.remove();
  }

  // Choosing the quote from the keyboard: in the passage (p, or Tab), the arrows select the next or
  // the previous word, and with Shift extend the selection word by word; s then uses it.
  var anchor = null, caret = 0;

  function words(passage) {
    // the hidden markdown around a speaker's name counts as blanks: no word starts or ends in it
    var text = Array.prototype.map.call(passage.querySelectorAll(".seg"), function (seg) {
      return seg.classList.contains("markup") ? " ".repeat(seg.textContent.length) : seg.textContent;
    }).join("");
    var found = [], match, pattern = /\S+/g;
    while ((match = pattern.exec(text))) found.push([match.index, match.index + match[0].length]);
    return found;
  }

  // the text node and offset of a position in the passage's text (in UTF-16 units, as the DOM counts)
  function pointAt(passage, index) {
    var walker = document.createTreeWalker(passage, NodeFilter.SHOW_TEXT), node, seen = 0, last = null;
    while ((node = walker.nextNode())) {
      if (seen + node.length >= index) return [node, index - seen];
      seen += node.length;
      last = node;
    }
    return last ? [last, last.length] : [passage, 0];
  }

  function selectSpan(passage, from, to) {
    var range = document.createRange(), a = pointAt(passage, from), b = pointAt(passage, to);
    range.setStart(a[0], a[1]);
    range.setEnd(b[0], b[1]);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function moveByWord(passage, event) {
    var all = words(passage);
    if (!all.length) return;
    var forward = event.key === "ArrowRight", next;
    if (forward) {
      next = all.find(function (w) { return w[1] > caret; }) || all[all.length - 1];
    } else {
      var before = all.filter(function (w) { return w[0] < caret && (anchor === null || w[1] < caret); });
      next = before.length ? before[before.length - 1] : all[0];
    }
    if (event.shiftKey && anchor !== null) {
      caret = forward ? next[1] : next[0];
      if (caret <= anchor[0]) caret = anchor[1];  // never shorter than the word it started from
      selectSpan(passage, anchor[0], Math.max(caret, anchor[1]));
    } else {
      anchor = next;
      caret = next[1];
      selectSpan(passage, next[0], next[1]);
    }
  }

  function showCorrected(passage, start, end) {
    // the corrected quote, highlighted in the passage at once (CSS Custom Highlight API)
    if (!window.CSS || !CSS.highlights || typeof Highlight === "undefined") return;
    var from = parseInt(passage.dataset.start, 10), text = Array.from(passage.textContent);
    var a = text.slice(0, start - from).join("").length, b = text.slice(0, end - from).join("").length;
    var range = document.createRange(), p = pointAt(passage, a), q = pointAt(passage, b);
    range.setStart(p[0], p[1]);
    range.setEnd(q[0], q[1]);
    CSS.highlights.set("corrected-quote", new Highlight(range));
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
    if (target.id === "passage" && (event.key === "ArrowRight" || event.key === "ArrowLeft")) {
      moveByWord(target, event);
      event.preventDefault();
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
    if (el.id === "passage") { el.focus(); return; }
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
